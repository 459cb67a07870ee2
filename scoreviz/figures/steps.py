"""The "quality vs number of steps" chart (a `pipelines.StepsView` in, a go.Figure out; pure).

Left: nats lost against fresh exact samples per step count, learned and exact; the y axis is
linear and ends at NATS_TOP (1 or 2 steps of a stochastic sampler lose thousands of nats):
larger values sit on the top edge as triangles, their value in the hover and beside them.
Right: W2 to fresh exact samples on a log axis, with the two-sample floor (two exact samples of
the same size) as a dashed line. Step counts on a log x axis.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from scoreviz.figures.style import FONT, PALETTE, TEMPLATE

NATS_TOP = 5.0  # the nats-lost axis ends here; larger losses are drawn on the edge
HEIGHT = 340
FLOOR_COLOR = "#9AA0A6"


def _nats_traces(curve, first: bool) -> list[go.Scatter]:
    """The curve clipped at NATS_TOP (finite steps only) and the clipped points as triangles."""
    ok = np.isfinite(curve.nats_lost)
    steps, nats = curve.steps[ok], curve.nats_lost[ok]
    shown = np.minimum(nats, NATS_TOP)
    color = PALETTE[curve.kind]
    text = [f"{v:.3g}" for v in nats]
    line = go.Scatter(
        x=steps, y=np.round(shown, 4), mode="lines+markers", name=curve.label,
        legendgroup=curve.kind, line=dict(color=color, width=2.5), marker=dict(size=7),
        customdata=text, showlegend=first,
        hovertemplate="%{x} steps: %{customdata} nats lost<extra>" + curve.label + "</extra>",
    )  # fmt: skip
    over = nats > NATS_TOP
    clipped = go.Scatter(
        x=steps[over], y=np.full(int(over.sum()), NATS_TOP), mode="markers+text",
        marker=dict(symbol="triangle-up", size=11, color=color), legendgroup=curve.kind,
        text=[f"{v:.0f}" if v >= 10 else f"{v:.1f}" for v in nats[over]],
        textposition="bottom center" if curve.kind == "exact" else "top center",
        textfont=dict(size=11, color=color), showlegend=False, hoverinfo="skip",
        name=f"{curve.label} (off the chart)",
    )  # fmt: skip
    return [line, clipped]


def _w2_trace(curve) -> go.Scatter:
    ok = np.isfinite(curve.w2)
    return go.Scatter(
        x=curve.steps[ok], y=np.round(curve.w2[ok], 5), mode="lines+markers", name=curve.label,
        legendgroup=curve.kind, line=dict(color=PALETTE[curve.kind], width=2.5),
        marker=dict(size=7), showlegend=False,
        hovertemplate="%{x} steps: W2 %{y:.3g}<extra>" + curve.label + "</extra>",
    )  # fmt: skip


def steps_figure(view, height: int = HEIGHT) -> go.Figure:
    """Nats lost | W2 against the number of steps, learned and exact (see the module doc).
    layout.meta: w2_floor, nats_top."""
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.1,
        subplot_titles=["nats lost against the data", "W2 to fresh exact samples"],
    )  # fmt: skip
    for i, curve in enumerate(view.curves):
        for tr in _nats_traces(curve, i < len(view.curves)):
            fig.add_trace(tr, row=1, col=1)
        fig.add_trace(_w2_trace(curve), row=1, col=2)
    steps = np.concatenate([c.steps for c in view.curves]) if view.curves else np.array([1])
    lo, hi = float(steps.min()), float(steps.max())
    fig.add_trace(
        go.Scatter(
            x=[lo, hi], y=[view.w2_floor] * 2, mode="lines", name="two exact samples",
            line=dict(color=FLOOR_COLOR, dash="dash", width=1.5),
            hovertemplate="two-sample floor: W2 %{y:.3g}<extra></extra>",
        ),
        row=1, col=2,
    )  # fmt: skip
    low = min([0.0, *(float(np.nanmin(c.nats_lost)) for c in view.curves if _any(c.nats_lost))])
    fig.add_hline(y=0, line=dict(color=FLOOR_COLOR, width=1), row=1, col=1)
    ticks = dict(type="log", tickvals=sorted(set(steps.tolist())), title_text="sampler steps")
    fig.update_xaxes(**ticks)
    fig.update_yaxes(range=[low - 0.25, NATS_TOP + 0.6], title_text="nats", row=1, col=1)
    fig.update_yaxes(type="log", title_text="W2", tickvals=_log_ticks(view), row=1, col=2)
    fig.update_layout(
        height=height, template=TEMPLATE, font=FONT,
        margin=dict(l=55, r=20, t=60, b=50),
        title=dict(text=f"{view.sampler}: quality vs number of steps ({view.n_particles} "
                   "particles)", font=dict(size=15), x=0, y=0.98, yanchor="top"),
        # on the title's line, right-aligned: above the panels' titles (projector fonts grow)
        legend=dict(orientation="h", yref="container", yanchor="top", y=0.985, x=1,
                    xanchor="right"),
        meta=dict(w2_floor=view.w2_floor, nats_top=NATS_TOP),
    )  # fmt: skip
    return fig


def _log_ticks(view) -> list[float]:
    """1-2-5 ticks spanning the W2 values and the floor (log axes label only some otherwise)."""
    vals = [view.w2_floor, *(v for c in view.curves for v in c.w2[np.isfinite(c.w2)])]
    lo, hi = min(vals, default=0.1), max(vals, default=1.0)
    ticks = [m * 10.0**e for e in range(-4, 6) for m in (1, 2, 5)]
    return [t for t in ticks if lo / 2 <= t <= hi * 2]


def _any(a: np.ndarray) -> bool:
    return bool(np.isfinite(a).any())
