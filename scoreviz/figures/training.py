"""Training curves: the loss as training goes, raw and smoothed, against the exact floor.

The denoising score-matching loss never reaches 0: even the exact score leaves
E ||s + eps/sigma||^2 > 0 (x_t does not determine eps). `floor` is that irreducible value, so the
gap between the curve and the dashed line is what the network still has to learn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from scoreviz.figures.style import PALETTE, apply_style


def smooth(values: np.ndarray, weight: float = 0.9) -> np.ndarray:
    """Bias-corrected exponential moving average (as TensorBoard smooths curves)."""
    out = np.empty(len(values), dtype=np.float64)
    acc, norm = 0.0, 0.0
    for i, v in enumerate(np.asarray(values, dtype=np.float64)):
        acc, norm = weight * acc + (1 - weight) * v, weight * norm + (1 - weight)
        out[i] = acc / norm
    return out


def loss_curve_figure(
    history: pd.DataFrame,
    total_steps: int | None = None,
    floor: float | None = None,
    title: str | None = "Training loss",
    height: int = 360,
) -> go.Figure:
    """Loss (faint) and its smoothed curve vs step on a log axis; optional exact floor line.

    history: columns "step" and "loss" (scoreviz.training.TrainResult.history or live rows).
    """
    steps = history["step"].to_numpy(dtype=np.float64) if len(history) else np.zeros(0)
    loss = history["loss"].to_numpy(dtype=np.float64) if len(history) else np.zeros(0)
    ok = np.isfinite(loss) & (loss > 0)
    steps, loss = steps[ok], loss[ok]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=steps.astype(np.float32),
            y=loss.astype(np.float32),
            mode="lines",
            name="loss (per logged step)",
            line=dict(color=PALETTE["learned"], width=1),
            opacity=0.35,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=steps.astype(np.float32),
            y=smooth(loss).astype(np.float32),
            mode="lines",
            name="smoothed",
            line=dict(color=PALETTE["learned"], width=2.5),
        )
    )
    if floor is not None and np.isfinite(floor) and floor > 0:
        fig.add_hline(y=floor, line=dict(color=PALETTE["exact"], dash="dash", width=2))
        fig.add_annotation(  # not add_hline's annotation: it ignores the log axis (y in log10)
            x=1,
            xref="paper",
            xanchor="right",
            y=float(np.log10(floor)),
            yref="y",
            yanchor="top",
            text="exact minimum (irreducible)",
            showarrow=False,
            font=dict(color=PALETTE["exact"]),
        )
    apply_style(fig, title=title, xy_range=None, equal_aspect=False, height=height)
    x_max = total_steps if total_steps else (float(steps.max()) if len(steps) else 1.0)
    fig.update_xaxes(title_text="training step", range=[0, x_max])
    fig.update_yaxes(title_text="loss (log scale)", type="log", exponentformat="power")
    return fig
