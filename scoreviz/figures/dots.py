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

SIDES = 6  # corners of a dot: at 3-6 px across a regular hexagon reads as a disc
_ANGLES = np.linspace(0.0, 2 * np.pi, SIDES, endpoint=False)
_UNIT = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], 1)  # (SIDES, 2)


def dot_polygons(points: np.ndarray, radius: float) -> np.ndarray:
    """Dots of `radius` (data units) at `points` (N, 2) as hexagons (M, SIDES, 2); non-finite
    points are left out."""
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[np.isfinite(pts).all(1)]
    return pts[:, None, :] + radius * _UNIT[None]


def dot_centres(path: str) -> np.ndarray:
    """Inverse of `cloud_traces`' dots (for tests and notebooks): the centres (N, 2)."""
    return polygons_of(path, SIDES).mean(1)


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
    """A point cloud of `size` px dots (px: data units per pixel on the figure's default size),
    `edge` px of dark rim: one filled layout shape (`polygons.fill_shape`, and one for the rim,
    under it, never in the legend); above SVG_POINTS points one WebGL marker trace instead.
    Items for `style.square_panels`."""
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[np.isfinite(pts).all(1)]
    group = legendgroup or name
    if len(pts) > SVG_POINTS:
        marker = dict(color=color, size=size, opacity=opacity, line=dict(color=EDGE, width=edge))
        x, y = (np.round(pts[:, i], 3).astype(np.float32) for i in (0, 1))
        kw = dict(name=name, hoverinfo="skip", showlegend=showlegend, legendgroup=group)
        return [go.Scattergl(x=x, y=y, mode="markers", marker=marker, **kw)]
    out = []
    if edge > 0:
        rim = dot_polygons(pts, (size / 2 + edge) * px)
        out.append(fill_shape(rim, EDGE, f"{name} rim", opacity=opacity, legendgroup=group))
    dots = dot_polygons(pts, size / 2 * px)
    return out + [fill_shape(dots, color, name, opacity, showlegend, group)]
