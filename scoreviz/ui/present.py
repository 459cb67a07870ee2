"""Presentation mode: a toggle (and `?present=1`) that turns a page into a projector slide.

On: prose, captions and notices are hidden (CSS); the sidebar starts collapsed; Streamlit's
toolbar and decoration are hidden; every figure drawn through `charts.draw_figure` gets
projector fonts and thicker marks (`figures.style.for_projector`) and the main one fills the
screen's height. Off: nothing changes. The state is the session key `keys.PRESENT` (a widget, and
a URL parameter: scoreviz.ui.links).
"""

from __future__ import annotations

import streamlit as st

from scoreviz.ui import keys

KEY = keys.PRESENT
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
