"""Data you draw or type, on the Train page: a canvas and a text box become a distribution.

    draw_block(st_canvas)   # the canvas (streamlit-drawable-canvas, passed in by the page: it
                            # registers its component at import, which only a running app allows)
    word_block()            # a word rendered to points (`scoreviz.sketch.from_word`)

Both preview the exact (smoothed) density of their points before anything is trained, and
"Use ..." makes them the sidebar's data: `keys.DRAWING` / `keys.WORD` hold the code / word (which
links carry), `models.sketch_data` builds the points and mixture once per server. Clear and Undo
remount the canvas (a new key) from the strokes it should start with (`keys.CANVAS_START`).
Nothing here raises on bad input: `DataError`s become a message under the input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

from scoreviz import sketch
from scoreviz.errors import DataError
from scoreviz.figures.forward import data_figure
from scoreviz.problem import Problem
from scoreviz.text import escape
from scoreviz.ui import cache, keys
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.models import SketchData, current_selection, sketch_data
from scoreviz.ui.training_runner import is_training
from scoreviz.ui.widgets import train_default_button

CANVAS_PX = 340  # square: the app's data frame has equal axes
PEN_PX = 6
PEN_COLOUR = "#1f4e79"
PREVIEW_PX = 400


def draw_block(canvas: Callable) -> None:
    """The drawing canvas with Undo and Clear, the preview of its exact density, Use and Train."""
    ss = st.session_state
    left, right = st.columns([1, 1.15], gap="medium")
    with left:
        st.caption(
            "Draw a shape with the mouse: a few strokes (a tap is a dot). Points are spread "
            f"evenly along the strokes ({sketch.N_DRAWN}), each a Gaussian of the width the data "
            "choose, as for an upload."
        )
        st.space(28)  # the canvas' toolbar (undo, redo, edit, delete) floats above it
        result = canvas(
            stroke_width=PEN_PX,
            stroke_color=PEN_COLOUR,
            background_color="#ffffff",
            height=CANVAS_PX,
            width=CANVAS_PX,
            drawing_mode="freedraw",
            initial_drawing=_start(),
            key=f"sketch_canvas_{ss.get(keys.CANVAS_ROUND, 0)}",
        )
        paths = _paths(result.json_data)
        b1, b2 = st.columns(2)
        if b1.button("Undo last stroke", key="sketch_undo", disabled=not paths, width="stretch"):
            _restart({"objects": paths[:-1]})
        if b2.button("Clear", key="sketch_clear", disabled=not paths, width="stretch"):
            _restart(None)
    with right:
        try:
            code = sketch.encode_strokes(sketch.canvas_strokes(result.json_data), *(CANVAS_PX,) * 2)
            data = sketch_data("drawn", code)
        except DataError as exc:
            st.info(escape(str(exc), limit=300))
            return
        _preview(data, "sketch_preview")
        _use_or_train("drawn", keys.DRAWING, code, "Use this drawing as the data", "sketch")


def word_block() -> None:
    """A word rendered to points: a text box, its preview, Use and Train."""
    ss = st.session_state
    left, right = st.columns([1, 1.15], gap="medium")
    with left:
        st.caption(
            f"A word of up to {sketch.WORD_MAX_CHARS} characters (letters, digits, spaces, "
            f"- + = ! ? . & # * % @), drawn with Pillow's font; {sketch.N_TYPED:,} points fill "
            "its letters."
        )
        with st.form("word_form", border=False):
            text = st.text_input(
                "A word",
                value=ss.get(keys.WORD) or "",
                key="word_text",
                max_chars=4 * sketch.WORD_MAX_CHARS,
                placeholder="Hello",
            )
            go = st.form_submit_button("Use this word as the data", type="primary")
    with right:
        if go:
            try:
                data = sketch_data("typed", sketch.check_word(text))
            except DataError as exc:
                st.error(f"{escape(str(exc), limit=300)} The data stays as it was.")
                return
            ss[keys.WORD] = data.sketch.source
            if not keys.request_distribution("typed"):
                st.rerun()  # the sidebar (already drawn) now offers and selects it
        word = ss.get(keys.WORD)
        if not word:
            st.caption("Type a word and press the button: its points appear here.")
            return
        with friendly_errors("The typed data"):
            data = sketch_data("typed", word)
            _preview(data, "word_preview")
            _use_or_train("typed", keys.WORD, word, "Use this word as the data", "word")


def _start() -> dict | None:
    """What the canvas starts with: Undo's strokes, else the drawing in use (a link reopened:
    its strokes are back on the canvas, and give back the same code), else nothing."""
    ss = st.session_state
    if ss.get(keys.CANVAS_ROUND, 0) or not ss.get(keys.DRAWING):
        return ss.get(keys.CANVAS_START)
    try:
        strokes = sketch.decode_strokes(ss[keys.DRAWING])
    except DataError:
        return None
    return {"objects": [_fabric_path(s * CANVAS_PX) for s in strokes]}


def _fabric_path(stroke: np.ndarray) -> dict:
    """A polyline (K, 2) in canvas pixels as a Fabric path object (M, then L to each vertex)."""
    lo, hi = stroke.min(0), stroke.max(0)
    cmds = [["M", *map(float, stroke[0])]] + [["L", *map(float, p)] for p in stroke[1:]]
    if len(stroke) == 1:  # a tap: Fabric draws nothing for a segment of no length, so (as its
        # brush does) the end moves by a thousandth of the pen, far less than a code's step
        cmds.append(["L", float(stroke[0, 0]) + PEN_PX / 1000, float(stroke[0, 1])])
    return {
        "type": "Path",
        "originX": "center",
        "originY": "center",
        "left": float(lo[0] + hi[0]) / 2,
        "top": float(lo[1] + hi[1]) / 2,
        "width": float(hi[0] - lo[0]),
        "height": float(hi[1] - lo[1]),
        "fill": None,
        "stroke": PEN_COLOUR,
        "strokeWidth": PEN_PX,
        "strokeLineCap": "round",
        "strokeLineJoin": "round",
        "path": cmds,
    }


def _paths(json_data: dict | None) -> list[dict]:
    objects = (json_data or {}).get("objects") or []
    return [o for o in objects if isinstance(o, dict) and str(o.get("type", "")).lower() == "path"]


def _restart(start: dict | None) -> None:
    """Remount the canvas (a new key) starting from `start` (None: empty)."""
    ss = st.session_state
    ss[keys.CANVAS_START] = start
    ss[keys.CANVAS_ROUND] = ss.get(keys.CANVAS_ROUND, 0) + 1
    st.rerun()


def _preview(data: SketchData, key: str) -> None:
    """The points over the exact density of their mixture (smoothed by the chosen width)."""
    sk = data.sketch
    d = cache.density_at(Problem(sk.key, data.dist, "vp_linear"), 0.0, 100)
    pts = np.asarray(sk.points)
    half = float(np.abs(pts).max()) * 1.15
    fig = data_figure(
        pts,
        d.grid,
        d.density,
        (-half, half),
        height=PREVIEW_PX,
        title=f"{escape(sk.label)}: points over the exact p₀ (h = {data.bandwidth:.3g})",
        points_name=f"{sk.n_points:,} points",
    )
    st.plotly_chart(fig, width="stretch", key=key)


def _use_or_train(kind: str, source_key: str, source: str, label: str, key: str) -> None:
    """ "Use ..." (select this data in the sidebar), or, once it is the sidebar's data, the
    button that trains the default model on it."""
    ss = st.session_state
    in_use = ss.get(source_key) == source and ss.get(keys.DISTRIBUTION) == kind
    if not in_use:
        if st.button(label, type="primary", key=f"{key}_use"):
            ss[source_key] = source
            if not keys.request_distribution(kind):
                st.rerun()
        return
    st.caption("This is the sidebar's data now: train on it here or with the form above.")
    was = is_training()
    with friendly_errors("Training"):
        train_default_button(current_selection(), key=key)
    if is_training() and not was:
        st.rerun()  # the progress and Stop at the top of the page (drawn before this button)
