"""Arrows in Plotly: the one layout, length cap and trace that every arrow figure uses.

An arrow field is one line trace whose points run tail, tip, gap per arrow (NaN is Plotly's line
break, never drawn): `arrow_xy`. Its heads are either

- filled triangles in data units, all of them one `fill="toself"` line trace (`head_xy`,
  `arrow_traces`: the Score field and DAE figures, redrawn on every slider move). The browser
  draws the whole trace as one SVG path; or
- an "arrow-wide" marker per tip that `angleref="previous"` turns along its segment
  (`arrow_trace`: the Sampling animation's field, whose frames restyle one trace). Every
  marker is its own SVG element, styled point by point: on the DAE figure (about 2,000 tips)
  that styling was most of a 0.7 s redraw in Chromium (benchmarks/bench.py --only redraw).

`capped` scales vectors and caps their lengths, so no outlier covers a panel.
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


HEAD_WIDTH = 0.7  # a head's base width / its length
HEAD_MAX = 0.6  # a head is at most this fraction of its arrow (short arrows keep a shaft)


def head_xy(start: np.ndarray, end: np.ndarray, length) -> tuple[np.ndarray, np.ndarray]:
    """Filled triangular heads at the tips of arrows start -> end (both (N, 2)) as the x, y of one
    `fill="toself"` line trace: per arrow its left corner, tip, right corner and a NaN gap (Plotly
    fills each gap-separated piece on its own). length: head length in data units, a scalar or
    (N,), at most HEAD_MAX of its arrow. Arrows with a non-finite end, or of length 0, get none."""
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    d = end - start
    size = np.linalg.norm(d, axis=1)
    ok = np.isfinite(start).all(1) & np.isfinite(end).all(1) & (size > 0)
    head = np.broadcast_to(np.asarray(length, dtype=np.float64), size.shape)[ok]
    d, size, tip = d[ok], size[ok], end[ok]
    u = d / size[:, None]
    h = np.minimum(head, HEAD_MAX * size)[:, None]
    base = tip - h * u
    side = np.stack([-u[:, 1], u[:, 0]], 1) * h * (HEAD_WIDTH / 2)
    pts = np.full((len(tip), 4, 2), np.nan)
    pts[:, 0], pts[:, 1], pts[:, 2] = base + side, tip, base - side
    return pts[..., 0].ravel(), pts[..., 1].ravel()


def arrow_traces(
    start: np.ndarray,
    end: np.ndarray,
    color: str,
    width: float,
    head,
    name: str,
    decimals: int | None = None,
    **kw,
) -> list[go.Scatter]:
    """Arrows start -> end as two line traces: the shafts (`arrow_xy`'s layout, named `name`,
    in the legend as `kw` says) and their filled heads (`head_xy`, `head` long in data units,
    named `name` + " heads", never in the legend). Both get `kw` (opacity, legendgroup, ...);
    `decimals` rounds the coordinates sent to the browser (float32)."""
    x, y, _ = arrow_xy(start, end)
    hx, hy = head_xy(start, end, head)
    if decimals is not None:
        x, y, hx, hy = (np.round(a, decimals).astype(np.float32) for a in (x, y, hx, hy))
    common = dict(mode="lines", hoverinfo="skip") | kw
    shafts = go.Scatter(x=x, y=y, line=dict(color=color, width=width), name=name, **common)
    heads_kw = common | dict(showlegend=False, legendgroup=kw.get("legendgroup", name))
    heads = go.Scatter(
        x=hx, y=hy, fill="toself", fillcolor=color, line=dict(color=color, width=0),
        name=f"{name} heads", **heads_kw,
    )  # fmt: skip
    return [shafts, heads]
