"""Training curves: the loss as training goes, raw and smoothed, against the exact floor.

The denoising score-matching loss never reaches 0: even the exact score leaves
E ||s + eps/sigma||^2 > 0 (x_t does not determine eps). `floor` is that irreducible value
(averaged over the training times), so the gap between the curve and the dashed line is what
the network still has to learn. One figure for the Train page, its live curve and Loss vs t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from scoreviz.figures.style import PALETTE, apply_style


def smooth(values: np.ndarray, weight: float = 0.9) -> np.ndarray:
    """Bias-corrected exponential moving average (as TensorBoard smooths curves): pandas' ewm."""
    ewm = pd.Series(np.asarray(values, dtype=np.float64)).ewm(alpha=1 - weight, adjust=True)
    return ewm.mean().to_numpy()


def _line(x, y, name: str, width: float, opacity: float = 1.0) -> go.Scatter:
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
    line = dict(color=PALETTE["learned"], width=width)
    return go.Scatter(x=x, y=y, mode="lines", name=name, opacity=opacity, line=line)


def loss_curve_figure(
    history: pd.DataFrame,
    total_steps: int | None = None,
    floor: float | None = None,
    title: str | None = "Training loss",
    height: int = 360,
    max_points: int = 600,
) -> go.Figure:
    """Loss (faint) and its smoothed curve vs step on a log axis; optional exact floor line.

    history: columns "step" and "loss" (scoreviz.training.TrainResult.history or live rows).
    Non-finite and non-positive losses are left out; the curves are smoothed on every step,
    then at most `max_points` evenly spaced steps are drawn (a small figure).
    """
    steps = history["step"].to_numpy(dtype=np.float64) if len(history) else np.zeros(0)
    loss = history["loss"].to_numpy(dtype=np.float64) if len(history) else np.zeros(0)
    ok = np.isfinite(loss) & (loss > 0)
    steps, loss = steps[ok], loss[ok]
    keep = np.unique(np.linspace(0, max(len(loss) - 1, 0), min(len(loss), max_points)).astype(int))
    fig = go.Figure()
    fig.add_trace(_line(steps[keep], loss[keep], "loss per step", 1, opacity=0.35))
    fig.add_trace(_line(steps[keep], smooth(loss)[keep], "smoothed", 2.5))
    x_max = total_steps if total_steps else (float(steps.max()) if len(steps) else 1.0)
    if floor is not None and np.isfinite(floor) and floor > 0:
        fig.add_trace(
            go.Scatter(
                x=[0, x_max],
                y=[floor, floor],
                mode="lines",
                name=f"exact minimum (irreducible), t-averaged = {floor:.3g}",
                line=dict(color=PALETTE["exact"], dash="dash", width=2),
            )
        )
    apply_style(fig, title=title, xy_range=None, equal_aspect=False, height=height)
    fig.update_xaxes(title_text="training step", range=[0, x_max])
    fig.update_yaxes(title_text="loss (log scale)", type="log", exponentformat="power")
    return fig
