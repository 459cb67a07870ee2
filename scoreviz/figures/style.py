"""One style for every figure: the same colour always means the same thing.

data = the clean distribution / training points, learned = the trained network,
exact = the exact mixture ground truth, noisy = noised samples x_t, dae = the classical DAE.
"""

from __future__ import annotations

import plotly.graph_objects as go

PALETTE = {
    "data": "#4C566A",  # slate: clean samples x_0
    "noisy": "#88C0D0",  # light blue: noised samples x_t
    "learned": "#D08770",  # orange: the trained network
    "exact": "#2E7D32",  # green: exact ground truth
    "dae": "#8E44AD",  # purple: classical single-sigma DAE
    "memorised": "#5E81AC",  # steel blue: exact score of a finite training set (memorising)
    "train": "#111111",  # near-black: the training points themselves
    "error": "#BF616A",  # red: errors / differences
    "prior": "#B48EAD",
}
DENSITY_COLORSCALE = "Blues"
ERROR_COLORSCALE = "Reds"
DEFAULT_RANGE = (-3.0, 3.0)
FONT = dict(family="Inter, DejaVu Sans, sans-serif", size=14)


def apply_style(
    fig: go.Figure,
    title: str | None = None,
    xy_range: tuple[float, float] | None = DEFAULT_RANGE,
    equal_aspect: bool = True,
    height: int = 520,
) -> go.Figure:
    """Shared layout: labelled axes x¹/x², equal aspect for point clouds, fixed ranges."""
    fig.update_layout(
        title=title,
        font=FONT,
        height=height,
        margin=dict(l=50, r=20, t=60 if title else 20, b=50),
        template="plotly_white",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    if xy_range is not None:
        fig.update_xaxes(range=list(xy_range), title_text="x₁")
        fig.update_yaxes(range=list(xy_range), title_text="x₂")
    if equal_aspect:
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig
