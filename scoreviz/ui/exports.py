"""The Export menu beside a figure: PNG at 1920x1080, standalone HTML, GIF (animations), CSV
(samples). The formats themselves are `scoreviz.exports` (pure, no Streamlit).

    export_menu(fig, "sampling", samples=points, animated=True)

Nothing is built on a rerun. Each format shows a "Build" button; a click builds its bytes through
a bounded st.cache_data keyed by the format and a digest of the figure JSON (two students who
export the same figure share one build; PNG and GIF also wait for one of the server's heavy
slots, `limits.heavy`, as this student's "export" work), then a Download button replaces it. While
a build waits for a slot, the wait shows under the menu's button (`limits.waits_shown_in`): the
popover may close on the rerun, and an export that only waited inside it looked like nothing.
Later reruns offer that download only while the figure is unchanged: the digest is recomputed
only for a menu that has built something. File names are sanitised (`exports.safe_file_name`);
errors show as st.error (`friendly_errors`), never a traceback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from scoreviz import exports
from scoreviz.ui import keys
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.limits import heavy, waits_shown_in

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


def _builders(fig, samples, animated: bool) -> dict[str, Callable[[str], bytes]]:
    """The formats this menu offers, each a function of the figure digest returning bytes."""
    out = {"png": lambda d: _png(d, fig), "html": lambda d: _html(d, fig)}
    if animated:
        out["gif"] = lambda d: _gif(d, fig)
    if samples is not None:
        out["csv"] = lambda d: _csv(np.asarray(samples, dtype=np.float64))
    return out


def export_menu(
    fig: go.Figure, name: str, *, samples: np.ndarray | None = None, animated: bool = False,
    key: str | None = None,
) -> None:  # fmt: skip
    """A compact "Export" popover for `fig`: PNG and HTML always, GIF if `animated`, CSV of
    `samples` (N, 2) if given. Files are named "<name>.<ext>" (name sanitised); `key` (default
    the name) keeps two menus on one page apart."""
    key = keys.export_files(key or name)
    built: dict[str, str] = st.session_state.setdefault(key, {})
    digest = figure_digest(fig) if built else None
    if digest is not None and digest not in built.values():
        built.clear()  # the figure changed: its old files are gone, and so is the hashing
    menu, wait_box = st.container(), st.empty()  # the wait for a slot shows under the menu
    with menu.popover("⬇ Export"), waits_shown_in(wait_box):
        for fmt, build in _builders(fig, samples, animated).items():
            digest = _format_row(fig, name, key, fmt, build, built, digest)
        st.caption("PNG: the last frame of an animation. HTML keeps zoom, hover and ▶ Play.")


def _format_row(fig, name, key, fmt, build, built, digest):
    """One format: its Build button, replaced in place by its Download button once built for
    this figure. Returns the figure digest (computed on the first click)."""
    label, ext, mime = FORMATS[fmt]
    slot = st.empty()
    data = None
    if digest is not None and built.get(fmt) == digest:
        with friendly_errors("The export"):
            data = build(digest)  # a cache hit (rebuilt only if the cache dropped it)
    elif slot.button(f"Build {label}", key=f"{key}-{fmt}-build"):
        digest = digest or figure_digest(fig)
        with friendly_errors("The export"), st.spinner(f"Building {label}…"):
            data = build(digest)
    if data is None:
        built.pop(fmt, None)
        return digest
    built[fmt] = digest
    slot.download_button(
        f"Download {label}", data=data, file_name=exports.safe_file_name(name, ext),
        mime=mime, key=f"{key}-{fmt}-get", on_click="ignore", type="primary",
    )  # fmt: skip
    return digest
