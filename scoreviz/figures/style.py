"""One style for every figure: the same colour always means the same thing.

data = the clean distribution / training points, learned = the trained network,
exact = the exact mixture ground truth, noisy = noised samples x_t, dae = the classical DAE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from scoreviz.figures.polygons import is_shape
from scoreviz.figures.raster import is_image

PALETTE = {
    "data": "#4C566A",  # slate: clean samples x_0
    "noisy": "#88C0D0",  # light blue: noised samples x_t
    "learned": "#D08770",  # orange: the trained network
    "exact": "#2E7D32",  # green: exact ground truth
    "dae": "#8E44AD",  # purple: classical single-sigma DAE
    "memorised": "#5E81AC",  # steel blue: exact score of a finite training set (memorising)
    "train": "#111111",  # near-black: the training points themselves
    "error": "#BF616A",  # red: errors / differences
    "prior": "#B48EAD",
}
ERROR_COLORSCALE = "Reds"
DEFAULT_RANGE = (-3.0, 3.0)
# plotly_white's layout part only: the same look on every 2D figure here, without the defaults
# for some 40 trace types we never draw. Assigning "plotly_white" by name builds and validates
# all of them, 28 ms per figure: a tenth of the Data & forward pair's build on every new t.
_WHITE = pio.templates["plotly_white"].layout
TEMPLATE = go.layout.Template(
    layout={
        k: _WHITE[k]
        for k in ("autotypenumbers", "colorway", "font", "hovermode", "hoverlabel",
                  "paper_bgcolor", "plot_bgcolor", "xaxis", "yaxis", "shapedefaults",
                  "annotationdefaults", "title", "coloraxis", "colorscale")
    }
)  # fmt: skip
FONT = dict(family="Inter, DejaVu Sans, sans-serif", size=14)


def apply_style(
    fig: go.Figure,
    title: str | None = None,
    xy_range: tuple[float, float] | None = DEFAULT_RANGE,
    equal_aspect: bool = True,
    height: int = 520,
) -> go.Figure:
    """Shared layout: labelled axes x¹/x², equal aspect for point clouds, fixed ranges."""
    fig.update_layout(
        title=title,
        font=FONT,
        height=height,
        margin=dict(l=50, r=20, t=60 if title else 20, b=50),
        template=TEMPLATE,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    if xy_range is not None:
        fig.update_xaxes(range=list(xy_range), title_text="x₁")
        fig.update_yaxes(range=list(xy_range), title_text="x₂")
    if equal_aspect:
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def square_panels(
    panels: Sequence[Sequence],
    titles: Sequence[str],
    ranges: Sequence,
    gap: float,
    zeroline: bool = True,
    stack: bool = False,
) -> go.Figure:
    """Side-by-side equal-aspect panels, one per item list in `panels`, panel i over ranges[i]:
    (lo, hi) on both axes (a square), or ((x lo, x hi), (y lo, y hi)) (a box fitted to wide
    data, `forward.view_box`); with `stack`, one above the other (wide panels use the width).
    Equal aspect, constrained to its domain, no automargin (`fixed_margins`), each titled by an
    annotation above it; x axes read x₁, the first y axis x₂. Items are traces, moved onto
    their panel's axes (in place), or `polygons.fill_shape` dicts, left out here: add them with
    `place_shapes(fig, panels)` as the builder's last step (every layout update re-validates
    every shape: with the shapes in first, the Score field pair's layout updates took 60 ms of
    each new t). Style it with `apply_style(..., xy_range=None, equal_aspect=False)`.

    Built as one layout dict rather than make_subplots + update_* calls, which re-validate on
    every call: the Data & forward pair in 22 ms instead of 83 on every new t.
    """
    n = len(panels)
    width = (1 - gap * (n - 1)) / n
    layout: dict = {"annotations": []}
    traces = []
    for i, (items, text, xy) in enumerate(zip(panels, titles, ranges, strict=True)):
        sfx = "" if i == 0 else str(i + 1)
        lo = i * (width + gap)
        x_dom, y_dom = [lo, min(1.0, lo + width)], [0, 1]
        if stack:  # top to bottom
            x_dom, y_dom = [0, 1], [max(0.0, 1 - lo - width), 1 - lo]
        for item in items:
            if not is_shape(item):
                traces.append(item.update(xaxis=f"x{sfx}", yaxis=f"y{sfx}"))
        x_range, y_range = (xy, xy) if np.ndim(xy) == 1 else xy
        axis = dict(constrain="domain", automargin=False)
        if not zeroline:
            axis["zeroline"] = False
        layout[f"xaxis{sfx}"] = axis | dict(range=list(x_range), domain=x_dom, anchor=f"y{sfx}")
        layout[f"xaxis{sfx}"]["title"] = {"text": "x₁" if not stack or i == n - 1 else ""}
        layout[f"yaxis{sfx}"] = axis | dict(range=list(y_range), domain=y_dom, anchor=f"x{sfx}",
                                            scaleanchor=f"x{sfx}", scaleratio=1)  # fmt: skip
        layout[f"yaxis{sfx}"]["title"] = {"text": "x₂" if i == 0 or stack else ""}
        layout["annotations"].append(
            dict(text=text, x=sum(x_dom) / 2, y=y_dom[1], xref="paper", yref="paper",
                 xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=14))
        )  # fmt: skip
    return go.Figure(traces, layout=layout)


def filled_height(fig: go.Figure | dict, width: float) -> float | None:
    """The height (px, margins included) at which a figure `width` px wide has its equal-aspect
    panels fill it, no blank band above or below them: the tallest plot area any panel needs
    (its x domain's width x the ratio of its y span to its x span, over its y domain's height),
    plus the top and bottom margins. None without equal-aspect panels with fixed ranges (their
    panels stretch to any height)."""
    d = fig if isinstance(fig, dict) else fig.to_plotly_json()
    layout = d.get("layout", {})
    margin = layout.get("margin") or {}
    left, right = margin.get("l", 80), margin.get("r", 80)
    top, bottom = margin.get("t", 100), margin.get("b", 80)
    plot_w = max(width - left - right, 1)
    needed = []
    for name, y in layout.items():
        if not (name.startswith("yaxis") and isinstance(y, dict) and y.get("scaleanchor")):
            continue
        x = layout.get("xaxis" + y["scaleanchor"][1:], {})
        if x.get("range") is None or y.get("range") is None:
            return None
        xd, yd = x.get("domain") or (0, 1), y.get("domain") or (0, 1)
        span = abs(y["range"][1] - y["range"][0]) / abs(x["range"][1] - x["range"][0])
        panel_h = (xd[1] - xd[0]) * plot_w * span * y.get("scaleratio", 1)
        needed.append(panel_h / max(yd[1] - yd[0], 1e-3))
    return max(needed) + top + bottom if needed else None


def fill_aspect(fig: go.Figure | dict, width: float = 1200.0) -> float | None:
    """Width over height of a figure whose equal-aspect panels fill it at `width` px
    (`filled_height`): what a page needs to size the figure's box to its data (CSS
    aspect-ratio) instead of a fixed height. None for figures that stretch to any height."""
    height = filled_height(fig, width)
    return None if height is None else width / height


def data_per_px(xy_range: tuple[float, float], height: int, margin_tb: int) -> float:
    """Data units per pixel of a square panel spanning xy_range over the plot height of a
    figure `height` px high with `margin_tb` px of top and bottom margins (at the pages'
    widths such panels are as high as the plot area): sizes arrows and dots in data units."""
    return (xy_range[1] - xy_range[0]) / max(height - margin_tb, 100)


def one_panel(items: Sequence) -> go.Figure:
    """A figure of the traces among `items`; its shapes go in last (`place_shapes`)."""
    return go.Figure([it for it in items if not is_shape(it)])


def place_shapes(fig: go.Figure, panels: Sequence[Sequence]) -> go.Figure:
    """Add the layout items of `panels` (as given to `square_panels` or `one_panel`, panel i on
    axes x{i+1}, y{i+1}) to fig's layout, in one update: call it last. `polygons.fill_shape`
    dicts become shapes, `raster.density_image` and `dots.cloud_image` dicts images (drawn in
    the order given, under the shapes). In place; returns `fig`."""
    shapes, images = [], []
    for i, items in enumerate(panels):
        axes = dict(xref="x" + ("" if i == 0 else str(i + 1)))
        axes["yref"] = "y" + axes["xref"][1:]
        for it in items:
            if is_shape(it):
                (images if is_image(it) else shapes).append(it | axes)
    layout = {k: v for k, v in (("shapes", shapes), ("images", images)) if v}
    if layout:
        fig.update_layout(layout)
    return fig


def fixed_margins(fig: go.Figure) -> go.Figure:
    """Turn off every axis's automargin (the figure's own margins must hold its tick labels).

    Plotly's automargin measures the tick labels after drawing and, when they push a margin,
    draws the whole figure again: on the slider-driven figures (Score field, Data & forward,
    DAE) that second pass was a third to a half of the browser's redraw
    (benchmarks/bench.py --only redraw). In place; returns `fig`.
    """
    fig.update_xaxes(automargin=False)
    fig.update_yaxes(automargin=False)
    return fig


def player_controls(
    names: Sequence[str],
    times: Sequence[float],
    frame_ms: int,
    redraw: bool = False,
    y=-0.04,
    labels: Sequence[str] | None = None,
    prefix: str = "t = ",
) -> dict:
    """Play/Pause buttons and a frame slider labelled t = ... (layout keys for update_layout).

    names: the frames' names, times: their t. Without `redraw` a frame only restyles the
    traces it names (fast); with it, frame layouts (moving axis ranges) are applied too.
    labels: the slider's tick labels instead of the times (e.g. step numbers), shown after
    `prefix` on the slider.
    """
    still = dict(frame=dict(duration=0, redraw=redraw), mode="immediate")
    still["transition"] = dict(duration=0)
    play = dict(frame=dict(duration=frame_ms, redraw=redraw), fromcurrent=True)
    play["transition"] = dict(duration=0)
    buttons = [
        dict(label="Play", method="animate", args=[None, play]),
        dict(label="Pause", method="animate", args=[[None], still]),
    ]
    if labels is None:
        labels = [f"{t:.3f}" for t in times]
    steps = [
        dict(method="animate", label=label, args=[[name], still])
        for name, label in zip(names, labels, strict=True)
    ]
    menu = dict(type="buttons", direction="left", x=0, y=y, xanchor="left", yanchor="top")
    menu.update(buttons=buttons, showactive=False, pad=dict(t=10, r=10))
    slider = dict(active=0, steps=steps, x=0.16, len=0.84, y=y + 0.02, yanchor="top")
    slider.update(currentvalue=dict(prefix=prefix, xanchor="right", font=dict(size=14)))
    slider.update(pad=dict(t=30))
    return dict(updatemenus=[menu], sliders=[slider])


# Presentation mode (a projector at the back of a hall): sizes in px.
PROJECTOR_MARGIN = 12  # px added to the left and bottom margins of a fixed-margin figure
PROJECTOR = dict(font=18, title=24, marker_scale=1.6, line_scale=1.8, min_marker=6, min_line=2.0)


def for_projector(fig: go.Figure, height: int | None = None) -> go.Figure:
    """A copy of `fig` readable from the back of a lecture hall.

    Fonts >= PROJECTOR["font"] px on ticks, legends and sliders, >= PROJECTOR["title"] px on
    titles and subplot titles; markers and lines (animation frames included) thicker by the
    PROJECTOR scales. `height` (px) replaces the layout's, e.g. to fill the screen. Pure: the
    argument is not changed.
    """
    out = go.Figure(fig)
    big, title = PROJECTOR["font"], PROJECTOR["title"]
    out.update_layout(font_size=max(big, out.layout.font.size or 0), title_font_size=title)
    out.update_xaxes(tickfont_size=big, title_font_size=big)
    out.update_yaxes(tickfont_size=big, title_font_size=big)
    out.update_annotations(font_size=title)  # subplot titles are annotations
    for slider in out.layout.sliders:
        slider.font = dict(size=big)
        slider.currentvalue.font = dict(size=title)
    for menu in out.layout.updatemenus:
        menu.font = dict(size=big)
    _thicken(out.data)
    for frame in out.frames:
        _thicken(frame.data)
    if height is not None:
        out.update_layout(height=height)
    axes = [*out.select_xaxes(), *out.select_yaxes()]
    if axes and all(ax.automargin is False for ax in axes):  # fixed margins: room for bigger ticks
        m, grow = out.layout.margin, PROJECTOR_MARGIN
        out.update_layout(margin=dict(l=(m.l or 50) + grow, b=(m.b or 50) + grow))
    return out


MAX_MARKER = "max_marker"  # trace.meta key: the largest marker (px) that keeps the data legible


def marker_cap(finest: float | None, data_per_px: float, fill: float = 1.0) -> dict:
    """A trace's `meta` capping its markers on the projector at `fill` x the data's finest width
    (data units; data_per_px at the figure's own size: on a projector the figure, and the
    detail with it, only grows): the thickening that made the word "SCORE" a blur stops there."""
    if finest is None or not finest > 0 or not data_per_px > 0:
        return {}
    return {MAX_MARKER: round(fill * finest / data_per_px, 2)}


def _thicken(traces) -> None:
    """Scale marker sizes and line widths of `traces` in place (PROJECTOR scales); a marker
    never grows past its trace's meta MAX_MARKER (`marker_cap`), nor shrinks below its size."""
    p = PROJECTOR
    for tr in traces:
        marker = getattr(tr, "marker", None)
        size = getattr(marker, "size", None)  # a bar's marker has no size
        if size is not None and not hasattr(size, "__len__"):
            grown = max(p["min_marker"], size * p["marker_scale"])
            meta = getattr(tr, "meta", None)
            cap = meta.get(MAX_MARKER) if isinstance(meta, dict) else None
            marker.size = grown if cap is None else max(size, min(grown, cap))
        line = getattr(tr, "line", None)
        if line is not None:
            width = line.width if line.width is not None else 2.0
            line.width = max(p["min_line"], width * p["line_scale"])
