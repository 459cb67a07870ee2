"""Likelihood figures: the model's own log-density (probability-flow ODE) beside the exact log p_0
of the mixture, and their difference, as equal-aspect heatmaps (a `pipelines.LikelihoodView` in,
a go.Figure out; pure).

Both log-density panels share one colour scale, from the exact peak down to `view.floor` (the
peak minus FLOOR_NATS: lower values are drawn at the floor); the difference is learned - exact
with both raised to that floor first (`LikelihoodView.difference`), on a diverging scale
clipped at +-DIFF_NATS: red where the model puts too much density, blue too little.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from scoreviz.figures.style import apply_style, fixed_margins, square_panels
from scoreviz.grids import Grid, finite

DIFF_NATS = 3.0  # the difference panel's colours end at +-3 nats (e^3 ~ 20x too much / little)
LOG_P_SCALE = "Viridis"
DIFF_SCALE = [[0.0, "#2166AC"], [0.5, "#F7F7F7"], [1.0, "#B2182B"]]  # too little | 0 | too much
HEIGHT = 400
GAP = 0.11  # between panels: the log p colour bar sits in the gap before the difference


def _heatmap(grid: Grid, z: np.ndarray, name: str, axis: str, label: str) -> go.Heatmap:
    return go.Heatmap(
        x=grid.xs.astype(np.float32),
        y=grid.ys.astype(np.float32),
        z=np.round(finite(z), 3),
        coloraxis=axis,
        zsmooth="fast",
        name=name,
        hovertemplate=f"x₁=%{{x:.2f}}<br>x₂=%{{y:.2f}}<br>{label}=%{{z:.2f}}<extra></extra>",
    )


def _colorbar(title: str, x: float) -> dict:
    return dict(title=dict(text=title, side="right"), len=0.85, thickness=12, x=x, xpad=4)


def likelihood_figure(view, height: int = HEIGHT) -> go.Figure:
    """learned log p (ODE) | exact log p_0 | learned - exact, or the exact panel alone without
    a model. layout.meta: floor, peak (the log-density colour range) and diff_nats."""
    t, grid = view.truth, view.truth.grid
    peak, floor = float(t.log_p0.max()), float(view.floor)
    exact = _heatmap(grid, np.maximum(t.log_p0, floor), "exact log p₀", "coloraxis", "log p₀")
    xy = (float(grid.xs[0]) - grid.spacing / 2, float(grid.xs[-1]) + grid.spacing / 2)
    if view.learned is None:
        panels, titles = [[exact]], ["exact log p₀(x) of the mixture"]
        bars = {"coloraxis": _colorbar("log p", 1.0)}
    else:
        learned = _heatmap(
            grid, np.maximum(view.learned.log_p, floor), f"{view.name} log p", "coloraxis", "log p"
        )
        diff = _heatmap(grid, view.difference, "learned − exact", "coloraxis2", "Δ log p")
        panels = [[learned], [exact], [diff]]
        titles = ["learned log p(x), by the ODE", "exact log p₀(x)", "learned − exact (nats)"]
        width = (1 - 2 * GAP) / 3
        bars = {
            "coloraxis": _colorbar("log p", 2 * width + GAP + 0.005),
            "coloraxis2": _colorbar("Δ nats", 1.0),
        }
    fig = square_panels(panels, titles, [xy] * len(panels), gap=GAP, zeroline=False)
    layout = {
        "coloraxis": dict(cmin=floor, cmax=peak, colorscale=LOG_P_SCALE, colorbar=bars["coloraxis"])
    }
    if "coloraxis2" in bars:
        layout["coloraxis2"] = dict(
            cmin=-DIFF_NATS, cmax=DIFF_NATS, colorscale=DIFF_SCALE, colorbar=bars["coloraxis2"]
        )
    if "coloraxis2" in bars:  # the log p colour bar sits in the gap: the same y ticks go
        layout["yaxis3"] = dict(showticklabels=False)
    fig.update_layout(layout, meta=dict(floor=floor, peak=peak, diff_nats=DIFF_NATS))
    apply_style(fig, None, xy_range=None, equal_aspect=False, height=height)
    fig.update_layout(margin=dict(l=50, r=60, t=40, b=45))
    return fixed_margins(fig)
