"""Many small filled polygons (arrows, dots) as one Plotly layout shape: one SVG path.

A trace is the wrong vehicle for them. Plotly splits a trace at every NaN gap and appends one
SVG `<path>` per piece, styled on its own, even when the trace draws no line (plotly.js
scatter/plot.js); markers are one element per point. A 15 x 15 arrow field was 225 elements,
the Data & forward pair's 1,800 points 1,800, and in Chromium that element work was most of a
slider redraw (benchmarks/bench.py --only redraw). Chaining the polygons into one gapless
outline (each connecting segment walked once each way, zero area) avoids the pieces, but the
anti-aliased fill leaves hairlines along the connecting segments.

A path shape takes an SVG path in data coordinates with as many closed subpaths (`M ... Z`) as
it likes: one element, nothing between the polygons. Shapes sit above the traces (`layer
"above"`), in their list order, and can have a legend entry of their own.
"""

from __future__ import annotations

import re

import numpy as np


def path_of(polys: np.ndarray, decimals: int = 3) -> str:
    """The polygons (N, K, 2), all finite, as one SVG path of N closed subpaths, coordinates
    rounded to `decimals` ('' for N = 0)."""
    polys = np.asarray(polys, dtype=np.float64)
    n, k = polys.shape[:2] if polys.ndim == 3 else (0, 0)
    if n == 0:
        return ""
    xy = f"%.{decimals}f,%.{decimals}f"
    one = "M" + xy + ("L" + xy) * (k - 1) + "Z"
    return (one * n) % tuple(np.round(polys, decimals).ravel().tolist())


_NUMBER = re.compile(r"-?\d+(?:\.\d*)?(?:e-?\d+)?")


def polygons_of(path: str, corners: int) -> np.ndarray:
    """Inverse of `path_of` (for tests and notebooks): the polygons (N, corners, 2)."""
    nums = np.array([float(v) for v in _NUMBER.findall(path)], dtype=np.float64)
    return nums.reshape(-1, corners, 2)


def fill_shape(
    polys: np.ndarray,
    color: str,
    name: str,
    opacity: float = 1.0,
    showlegend: bool = False,
    legendgroup: str | None = None,
    decimals: int = 3,
    edge: tuple[str, float] | None = None,
) -> dict:
    """The polygons (N, K, 2), all finite, filled in one colour (outlined only with `edge`):
    a layout shape (dict) drawn above the traces, overlapping polygons filled as their union
    (fill rule nonzero; the polygons of one shape all wind the same way, as
    `arrows.arrow_polygons` and `dots.dot_polygons` make them). `style.place_shapes` puts it on
    its panel's axes; `name`, `showlegend` and `legendgroup` give it a legend entry like a
    trace's. `edge`: (colour, px) of an outline stroked along every polygon, on top of the
    fill, so each keeps its outline where polygons overlap."""
    return dict(
        type="path", path=path_of(polys, decimals), fillcolor=color, opacity=opacity,
        line=dict(color=edge[0], width=edge[1]) if edge else dict(width=0), layer="above",
        name=name, showlegend=showlegend,
        legendgroup=legendgroup or name,
        fillrule="nonzero",  # Plotly's default, evenodd, cuts a hole where two polygons overlap
    )  # fmt: skip


def is_shape(item) -> bool:
    """Whether a panel item goes into the layout (a dict: a `fill_shape`, or an image:
    `raster.density_image`, `dots.cloud_image`), not a trace."""
    return isinstance(item, dict)
