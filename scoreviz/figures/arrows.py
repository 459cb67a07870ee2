"""Arrows in Plotly: the one layout, length cap and trace that every arrow figure uses.

An arrow field is one line trace whose points run tail, tip, gap per arrow (NaN is Plotly's line
break, never drawn): `arrow_xy`. A tip carries either an "arrow-wide" marker that
`angleref="previous"` turns along its segment (`arrow_trace`: DAE reconstructions, the Sampling
field) or, in `scoreviz.figures.fields`, a triangle rotated per arrow whose size follows the
length. `capped` scales vectors and caps their lengths, so no outlier covers a panel.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

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
