"""Point clouds in Plotly as filled dots: every dot a small hexagon, all of them one trace.

A marker trace is one SVG element per point, each styled on its own: the Data & forward pair
(1,800 markers) and the DAE panels (640) spent most of their redraw on it in Chromium
(benchmarks/bench.py --only redraw). `polygons.fill_shape` is one SVG path however many dots
it holds. Dots are sized in data units, so they scale with
the panel like its arrows. What is lost: hovering a single point (these figures skip it) and
the darker spots where translucent markers overlap.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from scoreviz.figures.polygons import fill_shape, polygons_of

SIDES = 6  # corners of a small dot: at 3-6 px across a regular hexagon reads as a disc
RIMMED_SIDES = 8  # corners of a dot with a rim (larger: 6 px, 12 on a projector)


def dot_polygons(points: np.ndarray, radius: float, sides: int = SIDES) -> np.ndarray:
    """Dots of `radius` (data units) at `points` (N, 2) as regular polygons (M, sides, 2),
    counterclockwise; non-finite points are left out."""
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[np.isfinite(pts).all(1)]
    angles = np.linspace(0.0, 2 * np.pi, sides, endpoint=False)
    unit = np.stack([np.cos(angles), np.sin(angles)], 1)
    return pts[:, None, :] + radius * unit[None]


def dot_centres(path: str, sides: int = SIDES) -> np.ndarray:
    """Inverse of `cloud_traces`' dots (for tests and notebooks): the centres (N, 2)."""
    return polygons_of(path, sides).mean(1)


# Above this many points a cloud is one WebGL (Scattergl) marker trace: a GL context costs ~200 ms
# per chart in a browser without a GPU (headless Chromium, many school laptops), so below it
# dots are cheaper; above it, the polygons' JSON grows too large.
SVG_POINTS = 5000
EDGE = "#2E3440"  # the dark rim of dots that must stand out on a blue heatmap


def cloud_traces(
    points: np.ndarray,
    px: float,
    size: float,
    color: str,
    name: str,
    opacity: float = 1.0,
    edge: float = 0.0,
    showlegend: bool = True,
    legendgroup: str | None = None,
) -> list:
    """A point cloud of `size` px dots (px: data units per pixel on the figure's default size):
    one filled layout shape (`polygons.fill_shape`) of SIDES-gons; with `edge` px of dark rim,
    RIMMED_SIDES-gons whose outlines the same shape strokes on top of its fill, so every dot
    keeps its own rim where dots overlap (as markers do); above SVG_POINTS points one WebGL
    marker trace instead. Items for `style.square_panels`."""
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[np.isfinite(pts).all(1)]
    group = legendgroup or name
    if len(pts) > SVG_POINTS:
        marker = dict(color=color, size=size, opacity=opacity, line=dict(color=EDGE, width=edge))
        x, y = (np.round(pts[:, i], 3).astype(np.float32) for i in (0, 1))
        kw = dict(name=name, hoverinfo="skip", showlegend=showlegend, legendgroup=group)
        return [go.Scattergl(x=x, y=y, mode="markers", marker=marker, **kw)]
    r = size / 2 * px
    if edge <= 0:
        return [fill_shape(dot_polygons(pts, r), color, name, opacity, showlegend, group)]
    dots = dot_polygons(pts, r, RIMMED_SIDES)
    return [fill_shape(dots, color, name, opacity, showlegend, group, edge=(EDGE, edge))]
