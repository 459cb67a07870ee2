"""Arrows in Plotly: the one layout, length cap and trace that every arrow figure uses.

Two ways to draw an arrow field:

- filled outlines, shaft and head in data units, all arrows one layout shape
  (`arrow_polygons`, `arrow_shapes`: the Score field and DAE figures, redrawn on every slider
  move). The browser draws the whole field as one SVG path (`polygons`). A line trace with NaN
  gaps would be one path per arrow, and an arrow-head marker one element per tip, each styled
  on its own: on the DAE figure (about 2,000 tips) that styling was most of a 0.7 s redraw in
  Chromium (benchmarks/bench.py --only redraw);
- one line trace whose points run tail, tip, gap per arrow (`arrow_xy`), with an "arrow-wide"
  marker per tip that `angleref="previous"` turns along its segment (`arrow_trace`: the
  Sampling animation's field, whose frames restyle one trace's x and y).

`capped` scales vectors and caps their lengths, so no outlier covers a panel.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from scoreviz.figures.polygons import fill_shape, polygons_of

ARROW_HEAD = 9  # px ("arrow-wide": plain "arrow" is a hairline at this size)


def capped(vectors: np.ndarray, scale: float, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """(scale * vectors with lengths capped at `cap` (N, 2), their lengths (N,)), float64.

    A non-finite vector stays non-finite (`arrow_xy` then leaves its arrow out).
    """
    d = np.asarray(vectors, dtype=np.float64) * scale
    length = np.linalg.norm(d, axis=1)
    with np.errstate(invalid="ignore"):
        shrink = np.where(length > cap, cap / np.maximum(length, 1e-300), 1.0)
    return d * shrink[:, None], np.minimum(length, cap)


def arrow_xy(start: np.ndarray, end: np.ndarray, head: float = ARROW_HEAD):
    """Arrows start -> end (both (N, 2)) as one line trace: x, y with NaN gaps, marker sizes.

    Point 3i is the tail, 3i+1 the tip (size `head`), 3i+2 a gap. Arrows with a non-finite end
    are left out.
    """
    ok = np.isfinite(start).all(1) & np.isfinite(end).all(1)
    start, end = start[ok], end[ok]
    n = start.shape[0]
    pts = np.full((n, 3, 2), np.nan, dtype=np.result_type(start, end, np.float32))
    pts[:, 0], pts[:, 1] = start, end
    sizes = np.tile(np.array([0.0, head, 0.0], dtype=np.float32), n)
    return pts[..., 0].ravel(), pts[..., 1].ravel(), sizes


def arrow_trace(x, y, sizes, color: str, width: float = 1.2, **kw) -> go.Scatter:
    """A Scatter of arrows laid out by `arrow_xy` (x, y, sizes), in one colour."""
    return go.Scatter(
        x=x,
        y=y,
        mode="lines+markers",
        line=dict(color=color, width=width),
        marker=dict(symbol="arrow-wide", angleref="previous", size=sizes, color=color),
        hoverinfo="skip",
        **kw,
    )


HEAD_WIDTH = 0.7  # a head's base width / its length
HEAD_MAX = 0.6  # a head is at most this fraction of its arrow (short arrows keep a shaft)
CORNERS = 7  # of an arrow's outline in `arrow_polygons`


def arrow_polygons(start: np.ndarray, end: np.ndarray, head, width) -> np.ndarray:
    """Arrows start -> end (both (N, 2)) as filled outlines (M, CORNERS, 2): per arrow the
    shaft's left tail corner, its left end, the head's left corner, the tip, the head's right
    corner, the shaft's right end and its right tail corner.

    head: head length, width: shaft width, both in data units, scalars or (N,). A head is at
    most HEAD_MAX of its arrow, HEAD_WIDTH of its length wide; a shaft keeps its width on every
    arrow (a short thick arrow: a thick stub with a narrower tip, like a thick line with a head
    marker). Arrows with a non-finite end are left out; one of length 0 is a point (drawn
    as nothing, kept so that `polygon_vectors` gives every finite arrow back).
    """
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    d = end - start
    size = np.linalg.norm(d, axis=1)
    ok = np.isfinite(start).all(1) & np.isfinite(end).all(1)
    head = np.broadcast_to(np.asarray(head, dtype=np.float64), size.shape)[ok]
    width = np.broadcast_to(np.asarray(width, dtype=np.float64), size.shape)[ok]
    d, size, tail, tip = d[ok], size[ok], start[ok], end[ok]
    u = d / np.maximum(size, 1e-300)[:, None]  # 0 for a zero-length arrow: all corners at its tail
    normal = np.stack([-u[:, 1], u[:, 0]], 1)
    h = np.minimum(head, HEAD_MAX * size)
    half_head = (h * HEAD_WIDTH / 2)[:, None] * normal
    half_shaft = (width / 2)[:, None] * normal
    base = tip - h[:, None] * u
    return np.stack(
        [tail + half_shaft, base + half_shaft, base + half_head, tip,
         base - half_head, base - half_shaft, tail - half_shaft], axis=1,
    )  # fmt: skip


def polygon_vectors(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `arrow_shapes` (for tests and notebooks): (tails (N, 2), tip - tail (N, 2))
    of the arrows in a shape's path."""
    polys = polygons_of(path, CORNERS)
    tails = (polys[:, 0] + polys[:, 6]) / 2
    return tails, polys[:, 3] - tails


def arrow_shapes(
    start: np.ndarray,
    end: np.ndarray,
    color: str,
    width: float,
    head,
    name: str,
    decimals: int = 3,
    **kw,
) -> list[dict]:
    """Arrows start -> end as one filled layout shape (`arrow_polygons`, shaft `width` and `head`
    length in data units; `polygons.fill_shape`: one SVG path for the whole field), named
    `name`, in a list so figures can add it to a panel like traces. `kw`: opacity, showlegend,
    legendgroup; coordinates go out rounded to `decimals`."""
    polys = arrow_polygons(start, end, head, width)
    return [fill_shape(polys, color, name, decimals=decimals, **kw)]
