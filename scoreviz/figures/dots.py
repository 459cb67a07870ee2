"""Point clouds in Plotly drawn cheaply: as one layout shape of small polygons, or as one SVG
image of circles.

A marker trace is one SVG element per point, each styled and positioned on its own: the Data &
forward pair (1,800 markers) and the DAE panels (640) spent most of their redraw on it in
Chromium (benchmarks/bench.py --only redraw). Both forms here are one element per cloud, with
dots sized in data units, so they scale with the panel like its arrows. What is lost: hovering
a single point (these figures skip it).

- `cloud_traces`: one `polygons.fill_shape` of hexagons (octagons with a rim). Plotly converts
  every corner to pixels in JavaScript (~3 µs each) and Streamlit scans the figure's JSON
  several times on its way in, so 600 dots cost ~10 ms.
- `cloud_image`: one `<image>` of an SVG document of circles (`raster`'s cousin for points): the
  browser parses and draws it natively, three numbers a dot instead of twelve to sixteen. The
  Data & forward pair draws in half the time. Its legend entry is a stand-in trace, so clicking
  it cannot hide the dots: for figures whose legend is a key, not a switch.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import numpy as np
import plotly.graph_objects as go

from scoreviz.figures.polygons import fill_shape, polygons_of
from scoreviz.figures.raster import is_image

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


SVG_PREFIX = "data:image/svg+xml,"
LEGEND_PX = 8  # smallest dot in a legend key (a 3 px dot there is a speck)
_CENTRE = re.compile(r'M(-?[\d.]+) (-?[\d.]+)h0|cx="(-?[\d.]+)" cy="(-?[\d.]+)"')


def _svg_uri(svg: str) -> str:
    """An SVG document as a data: URI (only "%" and "#" need escaping for the browser)."""
    return SVG_PREFIX + svg.replace("%", "%25").replace("#", "%23")


def cloud_image(
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
    """A point cloud of `size` px dots (px: data units per pixel on the figure's default size) as
    one layout image (a dict with "source", `style.place_shapes` puts it on its panel's axes):
    an SVG document of circles in data coordinates over the cloud's bounding box, stretched
    onto it. Without `edge`, one path of zero-length round-capped strokes, drawn at `opacity`
    as one layer (overlaps do not darken, as in `cloud_traces`); with `edge` px of dark rim,
    one filled and stroked circle a dot, later dots over earlier ones (each keeps its rim, as
    markers do). With `showlegend`, a stand-in marker trace (no points) gives the legend entry.
    Non-finite points are left out. Items for `style.square_panels`."""
    pts = np.asarray(points, dtype=np.float64)
    pts = np.round(pts[np.isfinite(pts).all(1)], 3)
    group = legendgroup or name
    items: list = []
    r, rim = size / 2 * px, edge * px
    if len(pts) and r > 0:
        lo, hi = pts.min(0) - r - rim, pts.max(0) + r + rim
        flip = tuple(np.stack([pts[:, 0], -pts[:, 1]], 1).ravel().tolist())  # SVG's y is down
        if edge > 0:
            style = f'fill="{color}" stroke="{EDGE}" stroke-width="{rim:.4g}"'
            body = ('<circle cx="%.3f" cy="%.3f" r="R"/>' * len(pts)) % flip
            body = body.replace('r="R"', f'r="{r:.4g}"')
        else:
            width = f'stroke-width="{2 * r:.4g}"'
            style = f'fill="none" stroke="{color}" {width} stroke-linecap="round"'
            body = '<path d="' + ("M%.3f %.3fh0" * len(pts)) % flip + '"/>'
        box = f"{lo[0]:.4f} {-hi[1]:.4f} {hi[0] - lo[0]:.4f} {hi[1] - lo[1]:.4f}"
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{box}" preserveAspectRatio='
               f'"none"><g opacity="{opacity:g}" {style}>{body}</g></svg>')  # fmt: skip
        items.append(dict(
            source=_svg_uri(svg), x=float(lo[0]), y=float(hi[1]), sizex=float(hi[0] - lo[0]),
            sizey=float(hi[1] - lo[1]), xanchor="left", yanchor="top", sizing="stretch",
            layer="above", name=name,
        ))  # fmt: skip
    if showlegend:
        marker = dict(color=color, size=max(size, LEGEND_PX), opacity=opacity)  # readable key
        if edge > 0:
            marker["line"] = dict(color=EDGE, width=edge)
        items.append(go.Scatter(x=[None], y=[None], mode="markers", marker=marker, name=name,
                                legendgroup=group, hoverinfo="skip"))  # fmt: skip
    return items


def image_points(item: dict) -> np.ndarray:
    """Inverse of `cloud_image` (for tests and notebooks): the dots' centres (N, 2)."""
    svg = unquote(item["source"].removeprefix(SVG_PREFIX))
    xy = [(a or c, b or d) for a, b, c, d in _CENTRE.findall(svg)]
    pts = np.array(xy, dtype=np.float64).reshape(-1, 2)
    return pts * np.array([1.0, -1.0])


def is_cloud_image(item) -> bool:
    """Whether a layout item is a `cloud_image` (rather than a `raster.density_image`)."""
    return is_image(item) and item["source"].startswith(SVG_PREFIX)
