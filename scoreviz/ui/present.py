"""Presentation mode: a toggle (and `?present=1`) that turns a page into a projector slide.

On: prose, captions and notices are hidden (CSS); the sidebar starts collapsed; Streamlit's
toolbar and decoration are hidden; every figure drawn through `charts.draw_figure` gets
projector fonts and thicker marks (`figures.style.for_projector`) and the main one fills the
screen's height. Off: nothing changes. The state is the session key `keys.PRESENT` (a widget, and
a URL parameter: scoreviz.ui.links).

With the toolbar goes Streamlit's "expand sidebar" control, so presentation mode draws its own
way around (`bar`): a compact bar fixed at the top of the screen with a link per page, the
Scenes menu and "Leave", all reachable with Tab, plus keys for a presenter's clicker:
PageDown / → next page, PageUp / ← previous page (ignored while a widget has the focus).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from scoreviz.ui import keys, pages

KEY = keys.PRESENT
# The toggle's value is lost when a scene switches page (st.switch_page: the collapsed sidebar
# reports no value and the toggle falls back to off): a plain key keeps it, and the toggle is set
# from it before it is drawn.
SHADOW = keys.PRESENT_KEPT
# In presentation mode the main figure is as tall as the screen minus what sits above it (the
# header, the title, one row of controls): CSS height calc(100vh - MAIN_OFFSET px) on its
# container, and the figure autosizes to it, so 720p and 1080p both fit without scrolling.
MAIN_OFFSET = 265
BAR_KEY = "present_bar"  # the bar's container: CSS class "st-key-present_bar"

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
.st-key-present_bar { position: fixed; top: 0; left: 0; right: 0; z-index: 999995;
  background: var(--st-background-color, #fff); padding: 0.3rem 1rem; gap: 0.25rem;
  border-bottom: 1px solid rgba(49, 51, 63, 0.15); align-items: center; }
.st-key-present_bar [data-testid="stPageLink"] p { font-size: 0.95rem; }
.st-key-present_bar [data-testid="stMarkdown"] { display: block !important; }
.st-key-title_slide [data-testid="stMarkdown"] { display: block !important; }
</style>
"""

# Next / previous page from the keyboard (a presenter's clicker sends PageDown / PageUp). st.html
# runs it in the page itself (no iframe); the flag keeps one listener across reruns. The order is
# the bar's links; the current page is the link whose path is the address's (Home: "/").
_KEYS_JS = r"""
<script>
if (!window.__scorevizKeys) {
  window.__scorevizKeys = true;
  document.addEventListener("keydown", (e) => {
    const step = {PageDown: 1, ArrowRight: 1, PageUp: -1, ArrowLeft: -1}[e.key];
    const t = e.target;
    if (!step || e.altKey || e.ctrlKey || e.metaKey || (t && t.closest &&
        t.closest("input, textarea, select, [role=slider], [contenteditable], .js-plotly-plot")))
      return;
    const name = (href) => new URL(href, window.location.href).pathname
      .replace(/\/+$/, "").split("/").pop();
    const links = [];  // one per page (Streamlit nests its link elements)
    for (const a of document.querySelectorAll(".st-key-present_bar a[href]"))
      if (!links.some((b) => name(b.href) === name(a.href))) links.push(a);
    if (!links.length) return;
    let i = links.findIndex((a) => name(a.href) === name(window.location.href));
    if (i < 0) i = 0;
    const next = links[i + step];
    if (next) { e.preventDefault(); next.click(); }
  });
}
</script>
"""


def is_on() -> bool:
    ss = st.session_state
    return bool(ss[SHADOW] if SHADOW in ss else ss.get(KEY, False))


def _keep() -> None:
    st.session_state[SHADOW] = bool(st.session_state.get(KEY, False))


def page_config() -> dict:
    """Extra st.set_page_config arguments: the sidebar starts collapsed in presentation mode."""
    return {"initial_sidebar_state": "collapsed"} if is_on() else {}


def toggle() -> None:
    """The sidebar's toggle (key "present")."""
    ss = st.session_state
    if SHADOW in ss:
        ss[KEY] = ss[SHADOW]  # the toggle's own changes reach SHADOW first (on_change)
    else:
        _keep()  # the session's first run: the default, or the link's value
    st.toggle(
        "Presentation mode",
        key=KEY,
        on_change=_keep,
        help="For a projector: hides prose and captions, large fonts, thick arrows. "
        "Link: add ?present=1.",
    )


def leave() -> None:
    """The bar's "Leave" button (a callback: it runs before the sidebar's toggle is drawn)."""
    st.session_state[KEY] = st.session_state[SHADOW] = False


def bar(page_file: str, scenes_menu: Callable[[str], None]) -> None:
    """Presentation mode's way around (nothing when off): page links, the Scenes menu
    (`scenes_menu(where)`, `scenes.picker`) and "Leave presentation mode", in one row fixed at
    the top of the screen, and the next/previous-page keys."""
    if not is_on():
        return
    with st.container(key=BAR_KEY, horizontal=True, vertical_alignment="center"):
        for page in pages.PAGES:
            label = page.short_title
            label = f"**{label}**" if page.file == page_file else label
            st.page_link(page.file, label=label, icon=page.icon, help=page.title)
        scenes_menu("bar")
        st.button(
            "Leave presentation mode", icon=":material/close_fullscreen:", key="present_leave",
            on_click=leave, type="tertiary",
        )  # fmt: skip
    st.html(_KEYS_JS, unsafe_allow_javascript=True)


def reserve(px: int) -> None:
    """In presentation mode, make the main figure `px` shorter: something (the scene card) sits
    above it on this page. Call after `apply_page_style`."""
    if is_on():
        css = (
            "<style>div.stVerticalBlock.st-key-main_figure, .st-key-main_figure "
            '[data-testid="stPlotlyChart"] { height: calc(100vh - '
            f"{MAIN_OFFSET + px}px) !important; }}</style>"
        )
        st.html(css)


def apply_page_style() -> None:
    """Hide prose and chrome when presentation mode is on (call once per run)."""
    if is_on():
        st.html(_CSS.replace("MAIN_OFFSET", str(MAIN_OFFSET)))
