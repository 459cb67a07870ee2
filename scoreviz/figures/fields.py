"""Score fields as arrows over the exact density: learned beside exact, their difference, error.

Arrows are drawn as two traces per field: the shafts (one scatter line trace, segments tail ->
head separated by NaN, Plotly's line break) and the heads (one marker trace of triangles rotated
per arrow). All panels share one arrow scale, set by the exact field, so equal lengths mean
equal vectors. By default the arrows show sigma_t * score (= -E[eps | x_t], of order 1 at every
noise level) so they stay readable from t_min (raw scores ~ 1/sigma) to t = 1.

The scale and length cap are recorded in `fig.layout.meta` ("arrow_scale", "arrow_cap") so the
drawn arrows can be turned back into vectors: head - tail = arrow_scale * vector (if not capped).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from scoreviz.figures.arrows import arrow_xy, capped
from scoreviz.figures.style import ERROR_COLORSCALE, PALETTE, apply_style
from scoreviz.grids import Grid, ScoreField, finite

# Light blues: the density stays readable under the orange/green arrows.
SOFT_BLUES = [[0.0, "#ffffff"], [0.35, "#dbe9f6"], [1.0, "#6baed6"]]
ARROW_FILL = 0.9  # the 95th-percentile arrow is 0.9 grid cells long
ARROW_CAP = 1.6  # no arrow is longer than 1.6 grid cells (outliers would cover the panel)
DECIMALS = 3  # coordinates in figure JSON are rounded: 1e-3 is far below one pixel


def shown_vectors(score: np.ndarray, sigma: float, scaled: bool) -> np.ndarray:
    """What the arrows show: sigma * score if `scaled`, else the raw score (float64, finite)."""
    v = finite(score).astype(np.float64)
    return v * sigma if scaled else v


def arrow_scale(spacing: float, *vector_sets: np.ndarray) -> float:
    """One data-units-per-vector-unit scale shared by all panels (pooled 95th percentile)."""
    lengths = np.concatenate([np.linalg.norm(v, axis=1) for v in vector_sets if v is not None])
    ref = float(np.quantile(lengths, 0.95)) if lengths.size else 0.0
    return ARROW_FILL * spacing / ref if ref > 1e-12 else 0.0


def quiver_traces(
    points: np.ndarray,
    vectors: np.ndarray,
    scale: float,
    cap: float,
    color: str,
    name: str,
    showlegend: bool = True,
) -> list[go.Scatter]:
    """Arrows from `points` (N, 2) along scale * `vectors` (N, 2), lengths capped at `cap`."""
    d, length = capped(finite(vectors), scale, cap)
    head = points + d
    # float32 keeps the JSON small and avoids validating thousands of Python objects (a None
    # list is 10x slower)
    xs, ys, _ = (np.round(a, DECIMALS).astype(np.float32) for a in arrow_xy(points, head))
    angle = np.degrees(np.arctan2(d[:, 0], d[:, 1]))  # clockwise from "up", as Plotly wants
    head_size = np.clip(14 * length / max(cap, 1e-12), 0, 9)  # px: a zero vector has no head
    shafts = go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line=dict(color=color, width=2),
        name=name,
        legendgroup=name,
        showlegend=showlegend,
        hoverinfo="skip",
    )
    heads = go.Scatter(
        x=np.round(head[:, 0], DECIMALS).astype(np.float32),
        y=np.round(head[:, 1], DECIMALS).astype(np.float32),
        mode="markers",
        marker=dict(
            symbol="triangle-up",
            angle=np.round(angle).astype(np.int16),  # whole degrees: 2 bytes, not 4
            size=np.round(head_size).astype(np.uint8),
            color=color,
            line=dict(width=0),
        ),
        legendgroup=name,
        showlegend=False,
        hoverinfo="skip",
    )
    return [shafts, heads]


def density_heatmap(grid: Grid, z: np.ndarray, name: str = "exact p_t") -> go.Heatmap:
    """Exact density p_t (or any (G, G) field, rows = y) as a soft background heatmap."""
    return go.Heatmap(
        x=grid.xs.astype(np.float32),
        y=grid.ys.astype(np.float32),
        z=finite(z),
        colorscale=SOFT_BLUES,
        showscale=False,
        zsmooth="best",  # a coarse grid, drawn smoothly: small JSON, no visible cells
        name=name,
        hovertemplate="x₁=%{x:.2f}<br>x₂=%{y:.2f}<br>p_t=%{z:.3g}<extra></extra>",
    )


_PANEL_TITLES = {"learned": "learned score s_θ(x, t)", "exact": "exact score ∇log p_t(x)"}


def _vector_label(scaled: bool) -> str:
    # Unicode, not LaTeX: Streamlit's Plotly does not load MathJax (streamlit#5251).
    return "σ_t·score" if scaled else "score"


def score_field_figure(
    field: ScoreField,
    xy_range: tuple[float, float],
    scaled: bool = True,
    height: int = 540,
) -> go.Figure:
    """Learned score (left) beside the exact score (right) over the exact p_t, one arrow scale.

    Without a learned field only the exact panel is drawn.
    """
    exact_v = shown_vectors(field.exact, field.sigma, scaled)
    learned_v = None if field.learned is None else shown_vectors(field.learned, field.sigma, scaled)
    sp = field.grid.spacing
    # The truth sets the scale: a network that is far off (e.g. where it never saw data) shows
    # up as arrows at the length cap, and never shrinks the exact field into dots.
    scale, cap = arrow_scale(sp, exact_v), ARROW_CAP * sp
    panels = [] if learned_v is None else [("learned", learned_v)]
    panels.append(("exact", exact_v))
    pts = field.grid.points
    traces = [
        [density_heatmap(field.bg_grid, field.density)]
        + quiver_traces(pts, vec, scale, cap, PALETTE[name], f"{name} score")
        for name, vec in panels
    ]
    what = _vector_label(scaled)
    title = f"Arrows: {what} at t = {field.t:.3f} (σ_t = {field.sigma:.3g}); background: exact p_t"
    titles = [_PANEL_TITLES[name] for name, _ in panels]
    return _panels(traces, titles, xy_range, title, height, scale, cap, gap=0.06)


def score_difference_figure(
    field: ScoreField,
    xy_range: tuple[float, float],
    scaled: bool = True,
    height: int = 520,
) -> go.Figure:
    """Left: learned - exact as arrows (same scale rule); right: sigma^2 ||s_theta - s||^2."""
    if field.learned is None or field.error is None:
        raise ValueError("score_difference_figure needs a learned field")
    diff = shown_vectors(field.learned - field.exact, field.sigma, scaled)
    exact_v = shown_vectors(field.exact, field.sigma, scaled)
    sp = field.grid.spacing
    scale, cap = arrow_scale(sp, exact_v), ARROW_CAP * sp  # same scale as the field figure's
    eg = field.err_grid
    error_map = go.Heatmap(
        x=eg.xs.astype(np.float32),
        y=eg.ys.astype(np.float32),
        z=finite(field.error),
        colorscale=ERROR_COLORSCALE,
        zmin=0,
        colorbar=dict(title=dict(text="σ²‖Δs‖²", side="right"), len=0.8, thickness=12, x=1.0),
        name="error",
        hovertemplate="x₁=%{x:.2f}<br>x₂=%{y:.2f}<br>σ²‖Δs‖²=%{z:.3g}<extra></extra>",
    )
    where_data = go.Contour(  # where p_t has its mass: the error that matters is inside
        x=eg.xs.astype(np.float32),
        y=eg.ys.astype(np.float32),
        z=finite(field.density),
        contours=dict(coloring="lines"),
        ncontours=5,
        line=dict(color=PALETTE["noisy"], width=1.5),
        showscale=False,
        name="p_t contours",
        hoverinfo="skip",
    )
    traces = [
        [density_heatmap(field.bg_grid, field.density)]
        + quiver_traces(field.grid.points, diff, scale, cap, PALETTE["error"], "learned − exact"),
        [error_map, where_data],
    ]
    titles = [
        "learned − exact (same arrow scale)",
        f"σ²‖s_θ − ∇log p_t‖²: {field.weighted_error:.3g} under p_t, "
        f"{field.mean_error:.3g} over the square",
    ]
    title = f"Where the network is wrong at t = {field.t:.3f} (σ_t = {field.sigma:.3g})"
    return _panels(traces, titles, xy_range, title, height, scale, cap, gap=0.1)


def _panels(traces, titles, xy_range, title, height, scale, cap, gap) -> go.Figure:
    """Side-by-side square panels (one per trace list) with equal aspect and labelled axes.

    Built as one layout dict rather than make_subplots + update_* calls: the same figure in a
    third of the time (each update re-validates), which matters on every slider move.
    """
    n = len(traces)
    width = (1 - gap * (n - 1)) / n
    layout: dict = {
        "meta": {"arrow_scale": float(scale), "arrow_cap": float(cap)},
        "annotations": [],
        "uirevision": "field",
    }
    for i, (panel, sub) in enumerate(zip(traces, titles, strict=True)):
        sfx = "" if i == 0 else str(i + 1)
        lo = i * (width + gap)
        for tr in panel:
            tr.update(xaxis=f"x{sfx}", yaxis=f"y{sfx}")
        axis = {"range": list(xy_range), "constrain": "domain", "zeroline": False}
        layout[f"xaxis{sfx}"] = axis | {"domain": [lo, lo + width], "title": {"text": "x₁"}}
        layout[f"yaxis{sfx}"] = axis | {
            "anchor": f"x{sfx}",
            "scaleanchor": f"x{sfx}",
            "scaleratio": 1,
            "title": {"text": "x₂" if i == 0 else ""},
        }
        layout["annotations"].append(
            dict(
                text=sub,
                x=lo + width / 2,
                y=1.0,
                xref="paper",
                yref="paper",
                xanchor="center",
                yanchor="bottom",
                showarrow=False,
                font=dict(size=14),
            )
        )
    fig = go.Figure(data=[tr for panel in traces for tr in panel], layout=layout)
    apply_style(fig, title=title, xy_range=None, equal_aspect=False, height=height)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.14, x=0), margin=dict(t=90))
    return fig


def arrow_vectors(fig: go.Figure, trace_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `quiver_traces` for tests and notebooks: (tails (N, 2), head - tail (N, 2))."""
    tr = fig.data[trace_index]
    x = np.asarray(tr.x, dtype=float)
    y = np.asarray(tr.y, dtype=float)
    tails = np.stack([x[0::3], y[0::3]], 1)
    heads = np.stack([x[1::3], y[1::3]], 1)
    return tails, heads - tails


def field_figures(view, scaled: bool = True) -> tuple[go.Figure, go.Figure | None]:
    """(score field, learned - exact difference or None without a model) of a
    pipelines.ScoreFieldView."""
    field, xy = view.field, view.xy
    diff = None if field.learned is None else score_difference_figure(field, xy, scaled)
    return score_field_figure(field, xy, scaled), diff
