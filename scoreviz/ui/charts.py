"""Every page's figures go on screen through `draw_figure`: presentation-mode styling, the main
figure's container (tall as the screen in presentation mode, found by the browser layout test),
its Export menu, and a head start for the main chart before whatever follows it.
"""

from __future__ import annotations

import time

import plotly.graph_objects as go
import streamlit as st

from scoreviz.figures.style import fill_aspect, for_projector
from scoreviz.ui import keys, present
from scoreviz.ui.cache import frozen
from scoreviz.ui.exports import export_menu

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
# Normal mode: a main figure with equal-aspect panels takes the page's width at its data's aspect
# ratio, at most the screen's height less what sits above it (title, caption, one row of
# controls: NORMAL_OFFSET px), at least MIN_HEIGHT px. 1280x720: 400 px, as before; 1920x1080:
# up to 760 px instead of a fixed 400.
NORMAL_OFFSET = 320
MIN_HEIGHT = 380


def _head_start() -> None:
    """Sleep what is left of HEAD_START since this session last sent a main chart."""
    sent = st.session_state.get(keys.MAIN_SENT)
    if sent is not None:
        left = HEAD_START - (time.monotonic() - sent)
        if 0 < left <= HEAD_START:
            time.sleep(left)


def _fitted_css(aspect: float) -> str:
    """The main figure's box in normal mode: the data's aspect ratio within the screen."""
    box = f"div.stVerticalBlock.st-key-{MAIN_KEY}"
    return (
        f"<style>{box} {{ aspect-ratio: {aspect:.4f}; height: auto; "
        f"max-height: calc(100vh - {NORMAL_OFFSET}px); min-height: {MIN_HEIGHT}px; }} "
        f'{box} [data-testid="stPlotlyChart"] {{ height: 100% !important; }}</style>'
    )


def draw_figure(
    fig: go.Figure, main: bool = True, export: str | None = None, samples=None, **kwargs
) -> None:
    """Draw a Plotly figure on the page (st.plotly_chart), restyled for the projector in
    presentation mode; the page's main figure with its Export menu.

    main: the page's main figure, drawn in a container keyed MAIN_KEY (the browser layout test
    finds it there; one per page), in presentation mode as tall as the screen allows (the
    container's CSS height, the figure autosized to it). A main figure gets
    an Export menu below it (`ui.exports.export_menu`: PNG, HTML, a GIF of an animation, and
    `samples` (N, 2) as CSV), named `export` (default: the chart's key)."""
    aspect = None
    if present.is_on():
        fig = for_projector(fig)
        if main:
            fig.update_layout(height=None, autosize=True)
            kwargs["height"] = "stretch"
    elif main and (aspect := fill_aspect(fig)) is not None:
        fig.update_layout(height=None, autosize=True)
        kwargs["height"] = "stretch"
    kwargs.setdefault("width", "stretch")
    fig = frozen(fig)  # not changed after this: its dict is built once, not on every rerun
    if not main:
        _head_start()
        st.plotly_chart(fig, **kwargs)
        return
    with st.container(key=MAIN_KEY):
        if aspect is not None:
            st.html(_fitted_css(aspect))
        st.plotly_chart(fig, **kwargs)
    st.session_state[keys.MAIN_SENT] = time.monotonic()
    _head_start()  # the main chart is drawn alone: what follows comes HEAD_START later
    name = export or str(kwargs.get("key") or "figure")
    export_menu(fig, name, samples=samples, animated=bool(fig.frames), key=name)
