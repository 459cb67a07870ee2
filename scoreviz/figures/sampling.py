"""Sampling figures: an animated trajectory (x_t beside its Tweedie x0_hat, score field beneath,
trails of a few highlighted particles) for one or more score functions, and mode weights.

Each row of the animation is one score function (learned, exact), drawn in its PALETTE colour;
the highlighted particles keep one colour each across rows and panels, so the same starting
noise can be followed under the learned and the exact score. Frames update only the moving
traces; arrays are float32, so the figure JSON stays small (see `sampling_animation`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from scoreviz.analysis import SamplingFrames, evenly_spaced
from scoreviz.figures.arrows import arrow_trace, arrow_xy, capped
from scoreviz.figures.style import PALETTE, apply_style, player_controls

HIGHLIGHT = ["#1B1F3B", "#E63946", "#2A9D8F", "#F4A261", "#6A4C93", "#1982C4", "#8AC926", "#FF595E"]
FIELD_OPACITY = 0.5
# Particle positions sent per figure (rows x frames x particles): 2 x 50 x 1000 is ~4.1 MB of
# JSON (float32 base64, and plotly escapes "/" as \u002f); 2 x 60 x 1000 would be ~5.0 MB.
POINT_BUDGET = 100_000


@dataclass(frozen=True)
class SamplingPanel:
    """One row of the animation: a trajectory and the score field at each of its frames.

    frames: `analysis.light_frames`; field_xy, field_score (F, M, 2): grid points and the score
    there at frames.times (`analysis.field_frames`); ranges (F,): half-width of the x_t view
    (the panel shows the largest; `analysis.view_ranges` makes them one fixed view, because
    plotly.js does not apply axis ranges from animation frames without a slow full redraw).
    color: a PALETTE key ("learned" or "exact").
    """

    label: str
    color: str
    frames: SamplingFrames
    field_xy: np.ndarray
    field_score: np.ndarray
    ranges: np.ndarray


def _field_arrows(xy: np.ndarray, score: np.ndarray, half_width: float, n_grid: int):
    """Arrows along the score, normalised per frame: the 90th-percentile arrow is 0.8 of a cell."""
    cell = 2 * half_width / max(n_grid, 1)
    ok = np.isfinite(score).all(1)
    length = np.linalg.norm(np.where(ok[:, None], score, 0.0), axis=1)
    ref = np.quantile(length[ok], 0.9) if ok.any() else 0.0
    scale = 0.8 * cell / ref if ref > 0 else 0.0
    vec, _ = capped(np.where(ok[:, None], score, np.nan), scale, cell)
    return arrow_xy(xy, xy + vec, head=7)


def _f32(a) -> np.ndarray:
    return np.round(np.asarray(a, dtype=np.float32), 3)


def _trail(xs: np.ndarray, k: int, i: int) -> tuple[np.ndarray, np.ndarray]:
    return _f32(xs[: k + 1, i, 0]), _f32(xs[: k + 1, i, 1])


def _frame_data(p: SamplingPanel, k: int, hl: np.ndarray, n_grid: int) -> list[dict]:
    """The moving traces of one row at frame k, in the order `_row_traces` adds them."""
    fr = p.frames
    fx, fy, _ = _field_arrows(p.field_xy[k], p.field_score[k], float(p.ranges[k]), n_grid)
    data = [dict(x=_f32(fx), y=_f32(fy)), dict(x=fr.xs[k, :, 0], y=fr.xs[k, :, 1])]
    for i in hl:
        x, y = _trail(fr.xs, k, i)
        data.append(dict(x=x, y=y))
    data.append(dict(x=fr.xs[k, hl, 0], y=fr.xs[k, hl, 1]))
    data.append(dict(x=fr.x0_hats[k, :, 0], y=fr.x0_hats[k, :, 1]))
    data.append(dict(x=fr.x0_hats[k, hl, 0], y=fr.x0_hats[k, hl, 1]))
    return data


def _row_traces(p: SamplingPanel, hl: np.ndarray, n_grid: int, first: bool) -> list[go.Scatter]:
    """Frame-0 traces of one row: x_t panel (field, particles, trails, highlights), then x0_hat
    panel (particles, highlights). Same order as `_frame_data`."""
    color = PALETTE[p.color]
    d = _frame_data(p, 0, hl, n_grid)
    _, _, sizes = _field_arrows(p.field_xy[0], p.field_score[0], float(p.ranges[0]), n_grid)
    traces = [
        arrow_trace(
            d[0]["x"],
            d[0]["y"],
            sizes,
            color,
            width=1,
            name="score field at t (length normalised)",
            legendgroup="field",
            showlegend=first,
            opacity=FIELD_OPACITY,
        ),
        go.Scatter(
            **d[1],
            mode="markers",
            name=f"x_t, {p.label}",
            legendgroup=p.label,
            marker=dict(color=color, size=3.5),
        ),
    ]
    for j in range(len(hl)):
        traces.append(
            go.Scatter(
                **d[2 + j],
                mode="lines",
                line=dict(color=HIGHLIGHT[j % len(HIGHLIGHT)], width=1.2),
                opacity=0.8,
                name="paths of 8 highlighted particles",
                legendgroup="trails",
                showlegend=first and j == 0,
                hoverinfo="skip",
            )
        )
    hl_marker = dict(
        color=[HIGHLIGHT[j % len(HIGHLIGHT)] for j in range(len(hl))],
        size=9,
        line=dict(color="white", width=1),
    )
    traces.append(go.Scatter(**d[2 + len(hl)], mode="markers", marker=hl_marker, showlegend=False))
    traces.append(
        go.Scatter(
            **d[3 + len(hl)],
            mode="markers",
            name=f"x̂₀, {p.label}",
            legendgroup=p.label,
            showlegend=False,
            marker=dict(color=color, size=3.5, symbol="diamond"),
        )
    )
    traces.append(go.Scatter(**d[4 + len(hl)], mode="markers", marker=hl_marker, showlegend=False))
    return traces


def sampling_animation(
    panels: Sequence[SamplingPanel],
    data: np.ndarray | None = None,
    n_highlight: int = 8,
    n_grid: int = 15,
    max_frames: int = 60,
    frame_ms: int = 90,
    height_per_row: int = 460,
    train_points: np.ndarray | None = None,
) -> go.Figure:
    """Animated sampling: per panel one row, x_t (left) and x0_hat (right), with Play/Pause and
    a frame slider (labelled by t). Frame k shows frames.xs[k] and frames.x0_hats[k] exactly.

    All panels must share the frame times (same sampler config). data: clean points drawn
    faintly behind x0_hat; train_points: a model's finite training set, drawn as crosses over
    x0_hat (where memorised samples pile up). At most max_frames frames are kept (evenly, first
    and last), fewer if rows x frames x particles would pass POINT_BUDGET (the figure JSON stays
    < 5 MB).
    """
    if not panels:
        raise ValueError("sampling_animation needs at least one panel")
    n = max(1, max(p.frames.xs.shape[1] for p in panels))
    max_frames = min(max_frames, max(2, POINT_BUDGET // (len(panels) * n)))
    keep = evenly_spaced(len(panels[0].frames.times), max_frames)
    panels = [_take_frames(p, keep) for p in panels]
    times = panels[0].frames.times
    titles = []
    for p in panels:
        titles += [f"{p.label}: x_t", f"{p.label}: x̂₀ (Tweedie)"]
    fig = make_subplots(
        rows=len(panels), cols=2, subplot_titles=titles, horizontal_spacing=0.06,
        vertical_spacing=0.12,  # the top row's x label clear of the next row's titles
    )  # fmt: skip
    moving: list[int] = []
    for r, p in enumerate(panels, start=1):
        hl = np.arange(min(n_highlight, p.frames.xs.shape[1]))
        tr = _row_traces(p, hl, n_grid, first=r == 1)
        split = 3 + len(hl)  # field, particles, trails..., highlights | x0_hat panel
        for t_ in tr[:split]:
            moving.append(len(fig.data))
            fig.add_trace(t_, r, 1)
        if data is not None:
            fig.add_trace(_data_trace(data, r == 1), r, 2)
        for t_ in tr[split:]:
            moving.append(len(fig.data))
            fig.add_trace(t_, r, 2)
        if train_points is not None:
            fig.add_trace(_train_trace(train_points, r == 1), r, 2)
        _set_axes(fig, r, float(np.max(p.ranges)), _x0_range(data))
    names = [str(k) for k in range(len(times))]
    frames = []
    for k, name in enumerate(names):
        fdata: list[dict] = []
        for p in panels:
            hl = np.arange(min(n_highlight, p.frames.xs.shape[1]))
            fdata += _frame_data(p, k, hl, n_grid)
        frames.append(go.Frame(data=fdata, traces=moving, name=name))
    fig.frames = frames
    height = height_per_row * len(panels) + 130
    top, bottom = 120, 110  # room above the plots: two legend lines, then the subplot titles
    apply_style(fig, xy_range=None, equal_aspect=False, height=height)
    fig.update_layout(**player_controls(names, times, frame_ms), margin=dict(t=top, b=bottom))
    fig.update_layout(legend=dict(y=1 + 32 / (height - top - bottom)))  # 32 px above the plots
    return fig


def _take_frames(p: SamplingPanel, keep: np.ndarray) -> SamplingPanel:
    if len(keep) == len(p.frames.times):
        return p
    f = p.frames
    frames = SamplingFrames(f.times[keep], f.xs[keep], f.x0_hats[keep], f.n_total, f.n_dropped)
    return SamplingPanel(
        p.label, p.color, frames, p.field_xy[keep], p.field_score[keep], p.ranges[keep]
    )


def _x0_range(data: np.ndarray | None) -> float:
    finite = np.zeros((0, 2)) if data is None else data[np.isfinite(data).all(1)]
    if len(finite) == 0:
        return 3.0
    return float(max(3.0, 1.1 * np.quantile(np.abs(finite), 0.995)))


def _data_trace(data: np.ndarray, show: bool) -> go.Scatter:
    d = _f32(data[np.isfinite(data).all(1)])
    return go.Scatter(
        x=d[:, 0],
        y=d[:, 1],
        mode="markers",
        name="data (exact samples)",
        legendgroup="data",
        showlegend=show,
        marker=dict(color=PALETTE["data"], size=3, opacity=0.25),
        hoverinfo="skip",
    )


def _train_trace(points: np.ndarray, show: bool) -> go.Scatter:
    d = _f32(points[np.isfinite(points).all(1)])
    return go.Scatter(
        x=d[:, 0],
        y=d[:, 1],
        mode="markers",
        name=f"the model's {len(d)} training points",
        legendgroup="train",
        showlegend=show,
        marker=dict(color=PALETTE["train"], size=7, symbol="x-thin", line=dict(width=1.5)),
        hoverinfo="skip",
    )


def _set_axes(fig: go.Figure, row: int, h: float, h0: float) -> None:
    i = 2 * (row - 1) + 1
    for col, half, idx in ((1, h, i), (2, h0, i + 1)):
        anchor = "x" if idx == 1 else f"x{idx}"
        fig.update_xaxes(range=[-half, half], title_text="x₁", row=row, col=col)
        fig.update_yaxes(range=[-half, half], scaleanchor=anchor, scaleratio=1, row=row, col=col)
    fig.update_yaxes(title_text="x₂", row=row, col=1)


def mode_weights_figure(
    true_weights: np.ndarray,
    weights: Mapping[str, np.ndarray],
    colors: Mapping[str, str] | None = None,
    height: int = 320,
) -> go.Figure:
    """Share of samples per mixture component (argmax responsibility) vs the true weights.

    weights: label -> (K,) shares; colors: label -> PALETTE key (default "learned").
    """
    colors = dict(colors or {})
    k = np.arange(1, len(true_weights) + 1)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(x=k, y=np.asarray(true_weights), name="true weights", marker_color=PALETTE["data"])
    )
    for label, w in weights.items():
        w = np.nan_to_num(np.asarray(w, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
        fig.add_trace(
            go.Bar(x=k, y=w, name=label, marker_color=PALETTE[colors.get(label, "learned")])
        )
    apply_style(fig, xy_range=None, equal_aspect=False, height=height)
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="mixture component k", dtick=1 if len(k) <= 25 else None)
    fig.update_yaxes(title_text="share of samples")
    return fig


def _panel(row) -> SamplingPanel:
    return SamplingPanel(
        row.label, row.kind, row.frames, row.field_xy, row.field_score, row.ranges
    )  # fmt: skip


def sampling_figure(view, **kwargs) -> go.Figure:
    """`sampling_animation` of a pipelines.SamplingView: its rows, data and training points."""
    n_grid = round(np.sqrt(view.rows[0].field_xy.shape[1])) if view.rows else 15
    panels = [_panel(r) for r in view.rows]
    return sampling_animation(
        panels, data=view.data, train_points=view.train_points, n_grid=n_grid, **kwargs
    )


def sampling_weights_figure(view, max_components: int = 25) -> go.Figure | None:
    """`mode_weights_figure` of a pipelines.SamplingView's rows, or None when there are more than
    `max_components` components or no row has mode weights."""
    weights = {r.label: r.report["mode_weights"] for r in view.rows if "mode_weights" in r.report}
    if not weights or len(view.true_weights) > max_components:
        return None
    colors = {r.label: r.kind for r in view.rows}
    return mode_weights_figure(view.true_weights, weights, colors)
