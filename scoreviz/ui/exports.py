"""The Export menu beside a figure: PNG at 1920x1080, standalone HTML, GIF (animations), CSV
(samples). The formats themselves are `scoreviz.exports` (pure, no Streamlit).

    export_menu(fig, "sampling", samples=points, animated=True)

Nothing is built on a rerun. Each format is one Download button whose data is a callable
(Streamlit 1.67's deferred download): the click builds the bytes, in Streamlit's own thread,
through a bounded st.cache_data keyed by the format and a digest of the figure JSON (two
students who export the same figure share one build; PNG and GIF also wait for one of the
server's heavy slots, `limits.heavy`, as this student's work), and the browser saves them.
The click's build has no page to write on, so the menu says before it when the server's slots
are busy (`limits.busy_text`). File names are sanitised
(`exports.safe_file_name`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from scoreviz import exports
from scoreviz.ui import keys
from scoreviz.ui.limits import acting_for, busy_text, current_owner, heavy

GIF_FPS = 8
GIF_FRAMES = 30  # a ~4 s loop; each frame is one browser render
GIF_WIDTH = 960
GIF_POINTS = 80_000  # points over all frames: the 2-row sampling animation gets 12 (~25 s busy)


@st.cache_data(max_entries=16, show_spinner=False)
@heavy(kind="export")
def _png(fig_digest: str, _fig: go.Figure) -> bytes:
    return exports.figure_png(_fig)


@st.cache_data(max_entries=6, show_spinner=False)
@heavy(kind="export")
def _gif(fig_digest: str, _fig: go.Figure) -> bytes:
    return exports.animation_gif(
        _fig, fps=GIF_FPS, max_frames=GIF_FRAMES, width=GIF_WIDTH, max_points=GIF_POINTS
    )


@st.cache_data(max_entries=4, show_spinner=False)  # ~5-12 MB each (plotly.js inlined)
def _html(fig_digest: str, _fig: go.Figure) -> bytes:
    return exports.figure_html(_fig)


@st.cache_data(max_entries=8, show_spinner=False)
def _csv(points: np.ndarray) -> bytes:
    return exports.samples_csv(points)


# format -> (button label, file extension, MIME type)
FORMATS = {
    "png": ("PNG 1920×1080", "png", "image/png"),
    "html": ("HTML (interactive, offline)", "html", "text/html"),
    "gif": ("GIF (animation)", "gif", "image/gif"),
    "csv": ("CSV (samples)", "csv", "text/csv"),
}


def figure_digest(fig: go.Figure) -> str:
    """A short hex digest of the figure's JSON (data, layout, frames): the cache key."""
    return hashlib.sha256(fig.to_json().encode("utf-8")).hexdigest()[:24]


def builders(fig, samples, animated: bool) -> dict[str, Callable[[], bytes]]:
    """The formats this menu offers, each a function of no argument returning the file's bytes.

    Streamlit calls it when the Download button is clicked, in a thread of its own with no
    script run (st.session_state unavailable): each builds from the figure (or samples) held by
    its closure, hashing the figure only then (never on a rerun). The work is this student's
    (`current_owner`, taken now, in the script run) for the server's fair share of slots."""
    owner = current_owner()

    def mine(build: Callable[[], bytes]) -> Callable[[], bytes]:
        def run() -> bytes:
            with acting_for(owner):
                return build()

        return run

    out = {
        "png": lambda: _png(figure_digest(fig), fig),
        "html": lambda: _html(figure_digest(fig), fig),
    }
    if animated:
        out["gif"] = lambda: _gif(figure_digest(fig), fig)
    if samples is not None:
        points = np.asarray(samples, dtype=np.float64)
        out["csv"] = lambda: _csv(points)
    return {fmt: mine(build) for fmt, build in out.items()}


def export_menu(
    fig: go.Figure, name: str, *, samples: np.ndarray | None = None, animated: bool = False,
    key: str | None = None,
) -> None:  # fmt: skip
    """A compact "Export" popover for `fig`: PNG and HTML always, GIF if `animated`, CSV of
    `samples` (N, 2) if given; one click per format downloads it (built on that click, not on a
    rerun). Files are named "<name>.<ext>" (name sanitised); `key` (default the name) keeps two
    menus on one page apart."""
    key = keys.export_files(key or name)
    drawn = exports.CHROMIUM.exists()  # PNG and GIF are drawn by kaleido with Chromium
    with st.popover("⬇ Export"):
        if not drawn:
            st.caption("PNG and GIF need Chromium on the server (`apt-get install chromium`).")
        elif (busy := busy_text()) is not None:
            st.caption(f"⏳ {busy}")  # the wait itself happens after the click, off the page
        for fmt, build in builders(fig, samples, animated).items():
            if fmt in ("png", "gif") and not drawn:
                continue  # a deferred download has no place to say why it failed
            label, ext, mime = FORMATS[fmt]
            st.download_button(
                label, data=build, file_name=exports.safe_file_name(name, ext), mime=mime,
                key=f"{key}-{fmt}", on_click="ignore", icon=":material/download:",
                width="stretch",
            )  # fmt: skip
        st.caption("PNG: the last frame of an animation. HTML keeps zoom, hover and ▶ Play.")
