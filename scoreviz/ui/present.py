"""Presentation mode: a toggle (and `?present=1`) that turns a page into a projector slide.

On: prose, captions and notices are hidden (CSS); the sidebar starts collapsed; Streamlit's
toolbar and decoration are hidden; every figure drawn through `show_chart` gets projector fonts
and thicker marks (`figures.style.for_projector`) and fills the screen's height. Off: nothing
changes. The state is the session key "present" (a widget, and a URL parameter: scoreviz.ui.links).
"""

from __future__ import annotations

import time

import plotly.graph_objects as go
import streamlit as st

from scoreviz.figures.style import for_projector
from scoreviz.ui.cache import frozen

KEY = "present"
# In presentation mode the main figure is as tall as the screen minus what sits above it (the
# header, the title, one row of controls): CSS height calc(100vh - MAIN_OFFSET px) on its
# container, and the figure autosizes to it, so 720p and 1080p both fit without scrolling.
MAIN_OFFSET = 250

# Hidden in presentation mode: captions, prose paragraphs, info/notice boxes, the toolbar. Titles,
# widgets, tables and figures stay. Widget labels use their own test ids, so they are kept.
_CSS = """
<style>
[data-testid="stCaptionContainer"], [data-testid="stMain"] [data-testid="stMarkdown"],
[data-testid="stMain"] [data-testid="stAlert"], [data-testid="stToolbar"],
[data-testid="stDecoration"], [data-testid="stMainMenu"] { display: none !important; }
.st-key-scene_card [data-testid="stMarkdown"] { display: block !important; }
[data-testid="stMain"] h1 { font-size: 2.2rem !important; padding-top: 0 !important; }
[data-testid="stMainBlockContainer"] { padding-top: 3.6rem !important; }
div.stVerticalBlock.st-key-main_figure, .st-key-main_figure [data-testid="stPlotlyChart"] {
  height: calc(100vh - MAIN_OFFSETpx) !important; min-height: 340px; }
[data-testid="stWidgetLabel"] p { font-size: 1.15rem !important; }
[data-testid="stSliderThumbValue"], [data-testid="stSliderTickBarMin"],
[data-testid="stSliderTickBarMax"] { font-size: 1.05rem !important; }
</style>
"""


def is_on() -> bool:
    return bool(st.session_state.get(KEY, False))


def page_config() -> dict:
    """Extra st.set_page_config arguments: the sidebar starts collapsed in presentation mode."""
    return {"initial_sidebar_state": "collapsed"} if is_on() else {}


def toggle() -> None:
    """The sidebar's toggle (key "present")."""
    st.toggle(
        "Presentation mode",
        key=KEY,
        help="For a projector: hides prose and captions, large fonts, thick arrows. "
        "Link: add ?present=1.",
    )


def apply_page_style() -> None:
    """Hide prose and chrome when presentation mode is on (call once per run)."""
    if is_on():
        st.html(_CSS.replace("MAIN_OFFSET", str(MAIN_OFFSET)))


MAIN_KEY = "main_figure"  # the main figure's container: CSS class "st-key-main_figure"
# Whatever follows the main chart in the same run (its export menu, the metrics, the chart under
# it) waits until the main chart has had this long (s) in the browser. Streamlit renders the
# deltas that have arrived in one go, and draws the charts among them before anything is shown,
# so the main chart of a slider step waited for the chart under it (~100 ms more in Chromium,
# where Streamlit shows a new chart 100-170 ms after it arrives) and for every element sent with
# it (~20 ms more for the export menu and metrics: benchmarks/bench.py --only redraw). The wait
# is a sleep in the session's own thread: it costs the server no CPU and delays only what is
# below the main chart.
HEAD_START = 0.1
_MAIN_SENT = "_main_chart_sent_at"


def _head_start() -> None:
    """Sleep what is left of HEAD_START since this session last sent a main chart."""
    sent = st.session_state.get(_MAIN_SENT)
    if sent is not None:
        left = HEAD_START - (time.monotonic() - sent)
        if 0 < left <= HEAD_START:
            time.sleep(left)


def show_chart(
    fig: go.Figure, main: bool = True, export: str | None = None, samples=None, **kwargs
) -> None:
    """st.plotly_chart, restyled for the projector in presentation mode.

    main: the page's main figure, drawn in a container keyed MAIN_KEY (the browser layout test
    finds it there; one per page), in presentation mode as tall as the screen allows (the
    container's CSS height, the figure autosized to it). A main figure gets
    an Export menu below it (`ui.exports.export_menu`: PNG, HTML, a GIF of an animation, and
    `samples` (N, 2) as CSV), named `export` (default: the chart's key)."""
    if is_on():
        fig = for_projector(fig)
        if main:
            fig.update_layout(height=None, autosize=True)
            kwargs["height"] = "stretch"
    kwargs.setdefault("width", "stretch")
    fig = frozen(fig)  # not changed after this: its dict is built once, not on every rerun
    if not main:
        _head_start()
        st.plotly_chart(fig, **kwargs)
        return
    from scoreviz.ui.exports import export_menu

    with st.container(key=MAIN_KEY):
        st.plotly_chart(fig, **kwargs)
    st.session_state[_MAIN_SENT] = time.monotonic()
    _head_start()  # the main chart is drawn alone: what follows comes HEAD_START later
    name = export or str(kwargs.get("key") or "figure")
    export_menu(fig, name, samples=samples, animated=bool(fig.frames), key=name)
