"""Sampling figures: an animated trajectory (x_t with the score field and fading trails of a few
highlighted particles; optionally Tweedie's x0_hat beneath) for one or more score functions, and
mode weights.

Each score function (learned, exact, memorised) is one column, drawn in its PALETTE colour, so
learned and exact sit side by side on one row of x_t panels with the same axes; x0_hat, when
asked for, is a second row. The highlighted particles keep one colour each across panels, so the
same starting noise can be followed under every score. Frames update only the moving traces,
and send float32 arrays of at most `WIRE_PARTICLES` particles per panel: the page's default
figure is ~1.36 MB of JSON, 1.73 MB with x0_hat (it was 4.1 MB: 1,000 particles, x0_hat and
whole-run trails, 15 x 15 arrows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from scoreviz.analysis import SamplingFrames, evenly_spaced
from scoreviz.figures.arrows import arrow_trace, arrow_xy, capped
from scoreviz.figures.style import (
    PALETTE,
    apply_style,
    fixed_margins,
    marker_cap,
    player_controls,
)

HIGHLIGHT = ["#1B1F3B", "#E63946", "#2A9D8F", "#F4A261", "#6A4C93", "#1982C4", "#8AC926", "#FF595E"]
FIELD_OPACITY = 0.5
# Frames are capped so rows x frames x particles <= POINT_BUDGET (2 x 50 x 1000 at the defaults).
POINT_BUDGET = 100_000
# Particles per panel sent to the browser: 500 of the page's 1,000 draw the same shapes, and
# keep the default figure (2 panels x 50 frames, 10 x 10 arrows) near 1.4 MB of JSON.
WIRE_PARTICLES = 500
TRAIL = 10  # frames of history a trail shows (the current one included)
TRAIL_FADE = (0.08, 0.9)  # marker opacity of a trail's oldest and newest point
# x0_hat = (x_t + sigma_t^2 s) / alpha_t is drawn once alpha_t / sigma_t reaches this: before,
# any score error is multiplied by sigma_t^2 / alpha_t (> 4 at 0.25) and the exact x0_hat
# is close to the data mean.
X0_MIN_SNR = 0.25
HEIGHT = {1: 400, 2: 720}  # px by rows of panels: 720p holds one row below the page's controls
MARGIN = dict(l=50, r=10, t=30, b=80)  # b: the Play button and the frame slider


@dataclass(frozen=True)
class SamplingPanel:
    """One score function of the animation: a trajectory and the score field at each frame.

    frames: `analysis.light_frames`; field_xy, field_score (F, M, 2): grid points and the score
    there at frames.times (`analysis.field_frames`); ranges (F,): half-width of the x_t view at
    each frame (`analysis.run_ranges`; panels of one figure should share them, and the figure
    takes the widest). color: a PALETTE key ("learned" or "exact"). alphas, sigmas (F,):
    alpha_t and sigma_t at the frames; without them x0_hat is drawn at every frame.
    """

    label: str
    color: str
    frames: SamplingFrames
    field_xy: np.ndarray
    field_score: np.ndarray
    ranges: np.ndarray
    alphas: np.ndarray | None = None
    sigmas: np.ndarray | None = None

    def x0_meaningful(self) -> np.ndarray:
        """(F,) bool: frames where alpha_t / sigma_t >= X0_MIN_SNR (all without a schedule)."""
        if self.alphas is None or self.sigmas is None:
            return np.ones(len(self.frames.times), bool)
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.asarray(self.alphas, float) / np.asarray(self.sigmas, float)
        return ~(snr < X0_MIN_SNR)


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


def trail_window(k: int, length: int = TRAIL) -> np.ndarray:
    """The `length` frame indices a trail shows at frame k: k - length + 1 .. k, the ones
    before frame 0 repeated as frame 0 (so every frame sends the same number of points)."""
    return np.maximum(np.arange(k - length + 1, k + 1), 0)


def _trails(xs: np.ndarray, k: int, hl: np.ndarray) -> dict:
    """The trails of the highlighted particles at frame k as one line trace: per particle its
    positions at `trail_window(k)`, oldest first, then a NaN gap (len(hl) * (TRAIL + 1) points)."""
    w = trail_window(k)
    pts = np.full((len(hl), len(w) + 1, 2), np.nan, np.float32)
    pts[:, :-1] = np.swapaxes(xs[w][:, hl], 0, 1)
    return dict(x=_f32(pts[..., 0].ravel()), y=_f32(pts[..., 1].ravel()))


def _trail_style(n_hl: int) -> dict:
    """Per-point marker colours, opacities and sizes of `_trails`: each particle's colour, fading
    from TRAIL_FADE[0] (oldest) to TRAIL_FADE[1] (newest); the NaN gaps get 0."""
    fade = np.r_[np.linspace(*TRAIL_FADE, TRAIL), 0.0]
    size = np.r_[np.linspace(2.0, 5.0, TRAIL), 0.0]
    colors = [HIGHLIGHT[j % len(HIGHLIGHT)] for j in range(n_hl) for _ in range(TRAIL + 1)]
    return dict(color=colors, opacity=np.tile(fade, n_hl), size=np.tile(size, n_hl))


def _empty() -> dict:
    return dict(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32))


@dataclass(frozen=True)
class _Opts:
    hl: np.ndarray
    n_grid: int
    x0_hat: bool
    trails: bool
    cap: dict = dataclasses.field(default_factory=dict)  # particles' meta: `style.marker_cap`


def _xt_data(p: SamplingPanel, k: int, o: _Opts) -> list[dict]:
    """The moving x_t traces of one panel at frame k: field, particles, trails, highlights."""
    xs = p.frames.xs
    fx, fy, _ = _field_arrows(p.field_xy[k], p.field_score[k], float(p.ranges[k]), o.n_grid)
    data = [dict(x=_f32(fx), y=_f32(fy)), dict(x=xs[k, :, 0], y=xs[k, :, 1])]
    if o.trails:
        data.append(_trails(xs, k, o.hl))
    data.append(dict(x=xs[k, o.hl, 0], y=xs[k, o.hl, 1]))
    return data


def _x0_data(p: SamplingPanel, k: int, o: _Opts, shown: bool) -> list[dict]:
    """The moving x0_hat traces of one panel at frame k: particles, highlights, the note (at
    the panel's centre while x0_hat is hidden)."""
    if not shown:
        note = dict(x=np.zeros(1, np.float32), y=np.zeros(1, np.float32))
        return [_empty(), _empty(), note]
    x0 = p.frames.x0_hats
    return [dict(x=x0[k, :, 0], y=x0[k, :, 1]), dict(x=x0[k, o.hl, 0], y=x0[k, o.hl, 1]), _empty()]


def _frame_data(p: SamplingPanel, k: int, o: _Opts, shown: np.ndarray) -> list[dict]:
    """Every moving trace of one panel at frame k, in the order `_panel_traces` adds them."""
    data = _xt_data(p, k, o)
    return data + (_x0_data(p, k, o, bool(shown[k])) if o.x0_hat else [])


def _hl_marker(n: int, size: float = 9) -> dict:
    colors = [HIGHLIGHT[j % len(HIGHLIGHT)] for j in range(n)]
    return dict(color=colors, size=size, line=dict(color="white", width=1))


def _xt_traces(p: SamplingPanel, d: list[dict], o: _Opts, first: bool) -> list[go.Scatter]:
    """Frame-0 x_t traces of one panel (field, particles, trail tiers, highlights)."""
    color = PALETTE[p.color]
    _, _, sizes = _field_arrows(p.field_xy[0], p.field_score[0], float(p.ranges[0]), o.n_grid)
    field = arrow_trace(
        d[0]["x"], d[0]["y"], sizes, color, width=1, opacity=FIELD_OPACITY,
        name="score field at t (length normalised)", legendgroup="field", showlegend=first,
    )  # fmt: skip
    marker = dict(color=color, size=3.5)
    traces = [field]
    traces.append(go.Scatter(**d[1], mode="markers", name=f"x_t, {p.label}", marker=marker,
                             legendgroup=p.label, meta=o.cap))  # fmt: skip
    if o.trails:
        traces.append(
            go.Scatter(
                **d[2], mode="lines+markers", hoverinfo="skip", marker=_trail_style(len(o.hl)),
                line=dict(color="rgba(76, 86, 106, 0.25)", width=1.0),
                name=f"last {TRAIL} frames of {len(o.hl)} particles", legendgroup="trails",
                showlegend=first,
            )
        )  # fmt: skip
    traces.append(go.Scatter(**d[-1], mode="markers", marker=_hl_marker(len(o.hl)),
                             showlegend=False, hoverinfo="skip"))  # fmt: skip
    return traces


def _x0_traces(p: SamplingPanel, d: list[dict], o: _Opts) -> list[go.Scatter]:
    """Frame-0 x0_hat traces of one panel (particles, highlights, the note)."""
    color = PALETTE[p.color]
    # short lines: on a projector the panels of two rows are ~120 px wide
    note = f"x̂₀ from<br>α_t/σ_t ≥ {X0_MIN_SNR}<br>(1/α_t blows<br>up errors)"
    return [
        go.Scatter(**d[0], mode="markers", name=f"x̂₀, {p.label}", legendgroup=p.label,
                   showlegend=False, marker=dict(color=color, size=3.5, symbol="diamond"),
                   meta=o.cap),
        go.Scatter(**d[1], mode="markers", marker=_hl_marker(len(o.hl)), showlegend=False,
                   hoverinfo="skip"),
        go.Scatter(**d[2], mode="text", text=[note], showlegend=False, hoverinfo="skip",
                   textfont=dict(size=12, color="#222", shadow="auto"), name="x̂₀ note"),
    ]  # fmt: skip


def sampling_animation(
    panels: Sequence[SamplingPanel],
    data: np.ndarray | None = None,
    n_highlight: int = 8,
    n_grid: int = 15,
    max_frames: int = 60,
    frame_ms: int = 90,
    height: int | None = None,
    train_points: np.ndarray | None = None,
    x0_hat: bool = True,
    trails: bool = True,
    max_particles: int = WIRE_PARTICLES,
    finest: float | None = None,
) -> go.Figure:
    """Animated sampling: one column per panel, x_t on top (score field, particles, the last
    TRAIL frames of n_highlight particles if `trails`), x0_hat beneath if `x0_hat` (from the
    first frame where alpha_t / sigma_t >= X0_MIN_SNR, a note before), with Play/Pause and a
    frame slider (labelled by t, or by sampler step when t stays constant: plain Langevin).

    Frame k shows frames.xs[k] and frames.x0_hats[k] (their first max_particles particles).
    All panels must share the frame times (same sampler config); the x_t axes of all panels
    show the widest of their ranges at each frame, applied by frame layouts (redraw) when
    they change over the run. data: clean points drawn faintly behind x0_hat (behind x_t
    without it); train_points: a model's finite training set, drawn as crosses on the same
    panels. At most max_frames frames are kept (evenly, first and last), fewer if rows x frames
    x particles would pass POINT_BUDGET. finest: the data's finest width (data units): the
    projector's thicker particles stop at it (`style.marker_cap`, at the last frame's range).
    """
    if not panels:
        raise ValueError("sampling_animation needs at least one panel")
    n = max(1, max(p.frames.xs.shape[1] for p in panels))
    max_frames = min(max_frames, max(2, POINT_BUDGET // (len(panels) * n)))
    keep = evenly_spaced(len(panels[0].frames.times), max_frames)
    panels = [_take(p, keep, max_particles) for p in panels]
    ranges = np.max(np.stack([np.asarray(p.ranges, float) for p in panels]), axis=0)
    hl = np.arange(min(n_highlight, min(p.frames.xs.shape[1] for p in panels)))
    rows = 2 if x0_hat else 1
    plot_h = ((height or HEIGHT[rows]) - MARGIN["t"] - MARGIN["b"]) / rows
    cap = marker_cap(finest, 2 * float(ranges[-1]) / max(plot_h, 50))
    o = _Opts(hl, n_grid, x0_hat, trails, cap)
    fig, moving = _layout_panels(panels, data, train_points, o, ranges)
    shown = [p.x0_meaningful() for p in panels]
    names = [str(k) for k in range(len(ranges))]
    moves = bool(np.ptp(ranges) > 0)
    frames = []
    for k, name in enumerate(names):
        fdata = [d for p, s in zip(panels, shown, strict=True) for d in _frame_data(p, k, o, s)]
        layout = _xt_ranges(len(panels), float(ranges[k])) if moves else None
        frames.append(_frame(fdata, moving, name, layout))
    fig.frames = frames
    _finish_layout(fig, panels[0].frames, names, frame_ms, moves, height, o)
    return fig


def _frame(data: list[dict], traces: list[int], name: str, layout: dict | None) -> go.Frame:
    """A frame of plain x/y arrays: built without plotly's per-property validation (the
    figure's own traces are validated; these only move them), 5x faster for 50 frames."""
    scatters = [go.Scatter(**d, _validate=False) for d in data]
    lay = None if layout is None else go.Layout(layout, _validate=False)
    return go.Frame(data=scatters, traces=traces, name=name, layout=lay, _validate=False)


def _layout_panels(panels, data, train_points, o: _Opts, ranges: np.ndarray):
    """The subplots with every panel's frame-0 traces; (figure, indices of moving traces)."""
    n, rows = len(panels), 2 if o.x0_hat else 1
    titles = [f"{p.label}: x_t" for p in panels]
    titles += [f"{p.label}: x̂₀ (Tweedie)" for p in panels] if o.x0_hat else []
    # two rows: room between them for the lower row's title above the upper row's x ticks
    fig = make_subplots(rows=rows, cols=n, subplot_titles=titles, horizontal_spacing=0.05,
                        vertical_spacing=0.24 if o.x0_hat else 0.1)  # fmt: skip
    moving: list[int] = []
    h0 = _x0_range(data)
    for c, p in enumerate(panels, start=1):
        shown = p.x0_meaningful()
        d = _frame_data(p, 0, o, shown)
        n_xt = len(d) - (3 if o.x0_hat else 0)
        static_row = 2 if o.x0_hat else 1
        if data is not None and static_row == 1:
            fig.add_trace(_data_trace(data, c == 1, opacity=0.12), 1, c)  # under the particles
        for tr in _xt_traces(p, d[:n_xt], o, first=c == 1):
            moving.append(len(fig.data))
            fig.add_trace(tr, 1, c)
        if o.x0_hat:
            if data is not None:
                fig.add_trace(_data_trace(data, c == 1), 2, c)
            for tr in _x0_traces(p, d[n_xt:], o):
                moving.append(len(fig.data))
                fig.add_trace(tr, 2, c)
            _set_axes(fig, 2, c, n, h0)
        if train_points is not None:
            fig.add_trace(_train_trace(train_points, c == 1), static_row, c)
        _set_axes(fig, 1, c, n, float(ranges[0]))
    return fig, moving


def _axis_index(row: int, col: int, n_cols: int) -> int:
    return (row - 1) * n_cols + col


def _xt_ranges(n_cols: int, half: float) -> dict:
    """Layout of one frame: every x_t axis at +-half."""
    out = {}
    for c in range(1, n_cols + 1):
        i = "" if c == 1 else str(c)
        out[f"xaxis{i}"] = dict(range=[-half, half])
        out[f"yaxis{i}"] = dict(range=[-half, half])
    return out


def _finish_layout(fig, frames: SamplingFrames, names, frame_ms, moves, height, o: _Opts):
    rows = 2 if o.x0_hat else 1
    height = height or HEIGHT[rows]
    plot_h = height - MARGIN["t"] - MARGIN["b"]
    fixed_margins(apply_style(fig, xy_range=None, equal_aspect=False, height=height))
    labels, prefix = None, "t = "
    if len(frames.times) and np.ptp(frames.times) == 0:  # plain Langevin: t never moves
        steps = frames.steps if frames.steps is not None else np.arange(len(frames.times))
        labels, prefix = [str(int(s)) for s in steps], "step "
    controls = player_controls(names, frames.times, frame_ms, redraw=moves, y=-40 / plot_h,
                               labels=labels, prefix=prefix)  # fmt: skip
    controls["sliders"][0]["pad"] = dict(t=12)  # the slider close under the x axis title
    fig.update_layout(**controls, margin=MARGIN)
    fig.update_layout(legend=dict(orientation="v", x=1.01, xanchor="left", y=1, yanchor="top"))
    fig.update_annotations(font_size=14)


def _take(p: SamplingPanel, keep: np.ndarray, max_particles: int) -> SamplingPanel:
    """The panel with only the frames `keep` and the first max_particles particles."""
    f = p.frames
    n = min(max_particles, f.xs.shape[1])
    if len(keep) == len(f.times) and n == f.xs.shape[1]:
        return p
    steps = None if f.steps is None else np.asarray(f.steps)[keep]
    xs, x0 = f.xs[keep][:, :n], f.x0_hats[keep][:, :n]
    frames = SamplingFrames(f.times[keep], xs, x0, f.n_total, f.n_dropped, steps)

    def sub(a):
        return None if a is None else np.asarray(a)[keep]

    return SamplingPanel(
        p.label, p.color, frames, p.field_xy[keep], p.field_score[keep], p.ranges[keep],
        sub(p.alphas), sub(p.sigmas),
    )  # fmt: skip


def _x0_range(data: np.ndarray | None) -> float:
    finite = np.zeros((0, 2)) if data is None else data[np.isfinite(data).all(1)]
    if len(finite) == 0:
        return 3.0
    return float(max(3.0, 1.1 * np.quantile(np.abs(finite), 0.995)))


def _data_trace(data: np.ndarray, show: bool, opacity: float = 0.25) -> go.Scatter:
    d = _f32(data[np.isfinite(data).all(1)])
    return go.Scatter(
        x=d[:, 0],
        y=d[:, 1],
        mode="markers",
        name="data (exact samples)",
        legendgroup="data",
        showlegend=show,
        marker=dict(color=PALETTE["data"], size=3, opacity=opacity),
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


def _set_axes(fig: go.Figure, row: int, col: int, n_cols: int, half: float) -> None:
    """Square axes at +-half on one panel; x labels on the bottom row, y on the first column."""
    i = _axis_index(row, col, n_cols)
    anchor = "x" if i == 1 else f"x{i}"
    fig.update_xaxes(range=[-half, half], constrain="domain", row=row, col=col)
    # a panel taller than wide (presentation mode on a narrow screen) sits under its title
    fig.update_yaxes(range=[-half, half], scaleanchor=anchor, scaleratio=1, constrain="domain",
                     constraintoward="top", row=row, col=col)  # fmt: skip
    if col == 1:
        fig.update_yaxes(title_text="x₂", title_standoff=2, row=row, col=col)
    if row == (2 if len(fig._grid_ref) > 1 else 1):
        fig.update_xaxes(title_text="x₁", title_standoff=2, row=row, col=col)


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


MODE_BARS_MAX = 8  # components: beyond, the bars beside the panels would be too thin to read
BAR_TEXT_MAX = 4  # components up to which each bar carries its share as text (legible: > 10 px)
BARS_WIDTH = 0.15  # share of the figure's width the mode bars take, right of the panels


def _bar_text(w: np.ndarray) -> list[str] | None:
    return [f"{v:.2f}" for v in w] if len(w) <= BAR_TEXT_MAX else None


def add_mode_bars(
    fig: go.Figure,
    true_weights: np.ndarray,
    weights: Mapping[str, np.ndarray],
    colors: Mapping[str, str] | None = None,
    width: float = BARS_WIDTH,
) -> go.Figure:
    """Mode weights on the figure itself: a horizontal bar per mixture component beside the top
    row of panels, the true weight (grey) above each row's share of final samples (its PALETTE
    colour, `colors`: label -> key), the share written at the bar's end (up to BAR_TEXT_MAX
    components). The panels' x domains and their titles shrink into the left 1 - width - 0.05
    of the figure. In place; returns fig.

    true_weights (K,); weights: label -> (K,) shares (`metrics.mode_weights`).
    """
    colors = dict(colors or {})
    scale = 1 - width - 0.05
    axes = list(fig.select_xaxes())
    for ax in axes:
        ax.domain = [d * scale for d in (ax.domain or (0, 1))]
    for ann in fig.layout.annotations:
        if ann.xref in (None, "paper") and ann.x is not None:
            ann.x *= scale
    n = len(axes) + 1
    top = fig.layout.yaxis.domain or (0, 1)
    k = [str(i) for i in range(1, len(true_weights) + 1)]
    series = {"true weights": (np.asarray(true_weights, float), PALETTE["data"])}
    for label, w in weights.items():
        w = np.nan_to_num(np.asarray(w, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
        series[label] = (w, PALETTE[colors.get(label, "learned")])
    for i, (label, (w, color)) in enumerate(series.items()):
        fig.add_trace(go.Bar(
            x=w, y=k, orientation="h", name=label, marker_color=color, text=_bar_text(w),
            textposition="outside", cliponaxis=False, showlegend=i == 0, legendgroup="weights",
            hovertemplate=f"{label}<br>mode %{{y}}: %{{x:.3f}}<extra></extra>",
            xaxis=f"x{n}", yaxis=f"y{n}",
        ))  # fmt: skip
    hi = max(float(np.max(w, initial=0.0)) for w, _ in series.values())
    fig.update_layout({
        f"xaxis{n}": dict(domain=[1 - width, 1], anchor=f"y{n}", range=[0, 1.45 * max(hi, 0.05)],
                          automargin=False, showticklabels=False, showgrid=False, zeroline=True,
                          title=dict(text="share per mode", standoff=2)),
        f"yaxis{n}": dict(domain=list(top), anchor=f"x{n}", autorange="reversed", type="category",
                          automargin=False, title=dict(text="mode", standoff=2)),
        "barmode": "group", "bargap": 0.25,
    })  # fmt: skip
    return fig


def _panel(row) -> SamplingPanel:
    return SamplingPanel(
        row.label, row.kind, row.frames, row.field_xy, row.field_score, row.ranges,
        getattr(row, "alphas", None), getattr(row, "sigmas", None),
    )  # fmt: skip


def sampling_figure(view, mode_bars: bool = True, **kwargs) -> go.Figure:
    """`sampling_animation` of a pipelines.SamplingView: its rows, data and training points
    (kwargs: x0_hat, trails, ... of `sampling_animation`), and with `mode_bars` the final mode
    weights of every row beside the panels (`add_mode_bars`; mixtures of <= MODE_BARS_MAX)."""
    n_grid = round(np.sqrt(view.rows[0].field_xy.shape[1])) if view.rows else 15
    panels = [_panel(r) for r in view.rows]
    kwargs.setdefault("finest", getattr(view, "finest", None))
    fig = sampling_animation(
        panels, data=view.data, train_points=view.train_points, n_grid=n_grid, **kwargs
    )
    weights = {r.label: r.report["mode_weights"] for r in view.rows if "mode_weights" in r.report}
    if mode_bars and weights and len(view.true_weights) <= MODE_BARS_MAX:
        add_mode_bars(fig, view.true_weights, weights, {r.label: r.kind for r in view.rows})
    return fig


def sampling_weights_figure(view, max_components: int = 25) -> go.Figure | None:
    """`mode_weights_figure` of a pipelines.SamplingView's rows, or None when there are more than
    `max_components` components or no row has mode weights."""
    weights = {r.label: r.report["mode_weights"] for r in view.rows if "mode_weights" in r.report}
    if not weights or len(view.true_weights) > max_components:
        return None
    colors = {r.label: r.kind for r in view.rows}
    return mode_weights_figure(view.true_weights, weights, colors)
