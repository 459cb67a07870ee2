"""The forward process: noised samples over the exact p_t, the schedule, and an animation over t.

All builders are pure: numpy in, `go.Figure` out (see `scoreviz.forward` and `scoreviz.grids`
for the numbers they draw).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from scoreviz.figures.dots import cloud_image
from scoreviz.figures.fields import SOFT_BLUES
from scoreviz.figures.raster import density_image
from scoreviz.figures.style import (
    PALETTE,
    apply_style,
    data_per_px,
    marker_cap,
    one_panel,
    place_shapes,
    player_controls,
    square_panels,
)
from scoreviz.grids import Grid, finite

# The clouds are images with stand-in legend entries (`dots.cloud_image`): clicking an entry
# could not hide its dots, so the legend is a key only.
KEY_LEGEND = dict(itemclick=False, itemdoubleclick=False)


def _points(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = finite(a)
    return np.round(a[:, 0], 3), np.round(a[:, 1], 3)


# A dot at most this many of the data's finest widths across (`forward.finest_width`): 6 px dots
# over the word's 0.07-wide strokes (about 3 px on the page) blurred the letters into a bar.
DOT_FILL = 0.6
MIN_DOT = 1.5  # px: smaller dots vanish


def dot_px(size: float, px: float, finest: float | None) -> float:
    """A dot's size in px: `size`, at most DOT_FILL x `finest` (data units; px: data units per
    pixel) and at least MIN_DOT, so that dots never hide the detail they sit on."""
    if finest is None or not finest > 0:
        return size
    return float(max(MIN_DOT, min(size, DOT_FILL * finest / px)))


def _noised_traces(
    x0, x_t, grid: Grid, density, px: float, name: str = "exact p_t", finest=None, finest_t=None
) -> list:
    """Exact p_t as an image (`raster.density_image`: drawn on every t step, it is cheaper in
    the browser than a heatmap), the clean samples (faint) and the noised ones over it, each an
    SVG image too (`dots.cloud_image`; px: data units per pixel); dots no wider than the finest
    detail of p_0 (`finest`) and of p_t (`finest_t`), data units (`dot_px`)."""
    noisy = dot_px(6, px, finest_t)
    return [
        density_image(grid, density, SOFT_BLUES, name),
        *cloud_image(
            x0, px, dot_px(3, px, finest), PALETTE["data"], "clean samples x₀", opacity=0.35
        ),  # fmt: skip
        # a dark rim: visible on blue
        *cloud_image(
            x_t,
            px,
            noisy,
            PALETTE["noisy"],
            "noised samples x_t",
            opacity=0.8,
            edge=0.6 * noisy / 6,
        ),  # fmt: skip
    ]


def _data_traces(
    x0, grid: Grid, density, points_name: str, px: float, showlegend=True, finest=None
) -> list:
    """Exact p_0 as an image (`raster.density_image`) and the clean samples over it
    (`dots.cloud_image`; px: data units per pixel; dots no wider than `finest`, `dot_px`)."""
    points = cloud_image(x0, px, dot_px(4, px, finest), PALETTE["data"], points_name,
                         opacity=0.75, showlegend=showlegend)  # fmt: skip
    return [density_image(grid, density, SOFT_BLUES, "exact p₀"), *points]


def samples_density_figure(
    x0: np.ndarray,
    x_t: np.ndarray,
    grid: Grid,
    density: np.ndarray,
    t: float,
    alpha: float,
    sigma: float,
    xy_range: tuple[float, float],
    height: int = 520,
) -> go.Figure:
    """Noised samples x_t = alpha_t x_0 + sigma_t eps over the exact density p_t (an image).

    x0, x_t: (N, 2); density: exact p_t on `grid`, shape (G, G) with rows = y.
    """
    items = _noised_traces(x0, x_t, grid, density, data_per_px(xy_range, height, 90 + 50))
    fig = one_panel(items)
    # Unicode, not LaTeX: Streamlit's Plotly does not load MathJax (streamlit#5251).
    title = f"Noised: x_t at t = {t:.3f} (α_t = {alpha:.2f}, σ_t = {sigma:.3g}) over exact p_t"
    fig = apply_style(fig, title=title, xy_range=xy_range, height=height)
    fig.update_xaxes(constrain="domain")
    fig.update_yaxes(constrain="domain")
    fig.update_layout(margin=dict(t=90), legend=KEY_LEGEND | dict(y=1.02))
    return place_shapes(fig, [items])


def data_figure(
    x0: np.ndarray,
    grid: Grid,
    density: np.ndarray,
    xy_range: tuple[float, float],
    height=520,
    title: str = "The data: samples x₀ over the exact p₀",
    points_name: str = "samples x₀ ~ p₀",
) -> go.Figure:
    """Clean samples x_0 over the exact data density p_0 (an image; density (G, G), rows = y)."""
    items = _data_traces(x0, grid, density, points_name, data_per_px(xy_range, height, 90 + 50))
    fig = one_panel(items)
    fig = apply_style(fig, title=title, xy_range=xy_range, height=height)
    fig.update_xaxes(constrain="domain")
    fig.update_yaxes(constrain="domain")
    fig.update_layout(margin=dict(t=90), legend=KEY_LEGEND | dict(y=1.02))
    return place_shapes(fig, [items])


def schedule_figure(table: dict[str, np.ndarray], t_now: float, height: int = 320) -> go.Figure:
    """alpha(t), sigma(t) (left) and SNR(t) on a log axis (right), a marker and a dotted line at
    the current t.

    table: {"t", "alpha", "sigma", "snr"} arrays of one length (scoreviz.forward.schedule_table).
    Redrawn on every t step beside the Data & forward pair, so it is drawn once (fixed margins,
    `style.fixed_margins`) and built as one layout dict: the dotted line at t is a trace, not a
    layout vline (which took a quarter of its ~90 ms draw in Chromium).
    """
    t = np.asarray(table["t"], dtype=np.float64)
    now = {k: float(np.interp(t_now, t, np.asarray(table[k], dtype=np.float64))) for k in table}
    curves = [
        ("alpha", "α(t)", PALETTE["data"], 1),
        ("sigma", "σ(t)", PALETTE["noisy"], 1),
        ("snr", "SNR(t)", PALETTE["prior"], 2),
    ]
    traces, spans = [], {1: [], 2: []}
    for key, name, color, col in curves:
        y = finite(np.asarray(table[key], dtype=np.float64))
        axes = dict(xaxis="x" if col == 1 else "x2", yaxis="y" if col == 1 else "y2")
        traces.append(go.Scatter(x=t.astype(np.float32), y=y, mode="lines", name=name,
                                 line=dict(color=color, width=2.5), showlegend=col == 1,
                                 **axes))  # fmt: skip
        traces.append(go.Scatter(
            x=[t_now], y=[now[key]], mode="markers", name=f"{name} at t = {t_now:.3f}",
            marker=dict(color=color, size=11, line=dict(color="black", width=1)),
            showlegend=False, hovertemplate=f"t=%{{x:.3f}}<br>{key}=%{{y:.4g}}<extra></extra>",
            **axes,
        ))  # fmt: skip
        spans[col].append(y[np.isfinite(y)])
    for col, axes in ((1, dict(xaxis="x", yaxis="y")), (2, dict(xaxis="x2", yaxis="y2"))):
        ys = np.concatenate(spans[col])
        ys = ys[ys > 0] if col == 2 else ys  # the log axis
        line = [float(ys.min()), float(ys.max())] if ys.size else [0.0, 1.0]
        traces.append(go.Scatter(x=[t_now, t_now], y=line, mode="lines", hoverinfo="skip",
                                 line=dict(color="grey", dash="dot", width=1), showlegend=False,
                                 name=f"t = {t_now:.3f}", **axes))  # fmt: skip
    axis = dict(automargin=False, range=[-0.02, 1.02], title=dict(text="t"))  # t = 1 shows
    layout = dict(
        xaxis=axis | dict(domain=[0.0, 0.45], anchor="y"),
        xaxis2=axis | dict(domain=[0.55, 1.0], anchor="y2"),
        yaxis=dict(automargin=False, anchor="x"),
        yaxis2=dict(automargin=False, anchor="x2", type="log", exponentformat="power"),
        annotations=[
            dict(text=text, x=x, y=1.0, xref="paper", yref="paper", xanchor="center",
                 yanchor="bottom", showarrow=False, font=dict(size=14))
            for text, x in (("signal α(t) and noise σ(t)", 0.225),
                            ("SNR(t) = α²/σ² (log scale)", 0.775))
        ],
    )  # fmt: skip
    fig = go.Figure(traces, layout=layout)
    apply_style(fig, title=None, xy_range=None, equal_aspect=False, height=height)
    fig.update_layout(
        margin=dict(t=40, l=55, r=10, b=50),
        # inside the left panel, where α ≈ 0 and σ ≈ 1 leave the middle empty
        legend=dict(orientation="v", x=0.43, xanchor="right", y=0.5, yanchor="middle",
                    bgcolor="rgba(255,255,255,0.8)"),
    )  # fmt: skip
    return fig


def _frame_title(t: float, sigma: float | None) -> str:
    return f"Forward diffusion: t = {t:.2f}" + ("" if sigma is None else f", σ_t = {sigma:.3g}")


def forward_animation(
    trajectory: np.ndarray,
    times: np.ndarray,
    xy_ranges: np.ndarray,
    frame_ms: int = 120,
    height: int = 560,
    sigmas: np.ndarray | None = None,
    finest: float | None = None,
) -> go.Figure:
    """The same particles noised over t, frame by frame (Play/Pause and a frame slider).

    trajectory: (F, N, 2) with trajectory[0] the clean data (scoreviz.forward.forward_trajectory);
    times: (F,) increasing; xy_ranges: (F, 2) axis range per frame (they grow for VE); sigmas:
    (F,) sigma_t per frame, shown in the title. Every frame carries its own title and frames
    are played with redraw, so the title follows the slider (without redraw Plotly applies no
    frame layout and the title stayed at the first frame's t). finest: the data's finest width
    (data units): the projector's thicker markers stop at it (`style.marker_cap`).
    """
    times = np.asarray(times, dtype=np.float64)
    ranges = np.asarray(xy_ranges, dtype=np.float64).reshape(len(times), 2)
    moving_axes = not np.allclose(ranges, ranges[0])
    x0, y0 = _points(trajectory[0])
    cap = marker_cap(finest, data_per_px(tuple(ranges[0]), height, 60 + 120))
    fig = go.Figure(
        data=[
            go.Scatter(
                x=x0,
                y=y0,
                mode="markers",
                name="clean data x₀",
                marker=dict(color=PALETTE["data"], size=3, opacity=0.3),
                hoverinfo="skip",
                meta=cap,
            ),
            go.Scatter(
                x=x0,
                y=y0,
                mode="markers",
                name="x_t",
                marker=dict(color=PALETTE["noisy"], size=5, opacity=0.9),
                hoverinfo="skip",
                meta=cap,
            ),
        ]
    )
    frames = []
    sig = [None] * len(times) if sigmas is None else [float(v) for v in sigmas]
    for k, t in enumerate(times):
        x, y = _points(trajectory[k])
        layout = {"title": {"text": _frame_title(t, sig[k])}}
        if moving_axes:
            layout |= {"xaxis": {"range": list(ranges[k])}, "yaxis": {"range": list(ranges[k])}}
        frames.append(
            go.Frame(name=f"{t:.3f}", data=[go.Scatter(x=x, y=y)], traces=[1], layout=layout)
        )
    fig.frames = frames
    apply_style(
        fig,
        title=_frame_title(times[0], sig[0]),
        xy_range=tuple(ranges[0]),
        height=height,
    )
    fig.update_xaxes(constrain="domain")  # equal aspect by narrowing the plot, not widening x
    fig.update_yaxes(constrain="domain")
    names = [f.name for f in frames]
    fig.update_layout(**player_controls(names, times, frame_ms, redraw=True, y=-0.08))
    legend = dict(orientation="h", yanchor="bottom", y=1.0, x=0)
    fig.update_layout(margin=dict(b=120), legend=legend)
    return fig


def forward_figures(view) -> tuple[go.Figure, go.Figure, go.Figure]:
    """(data, noised samples over p_t, schedule) figures of a pipelines.ForwardView."""
    d, p = view.data, view.noisy
    data = data_figure(view.x0, d.grid, d.density, d.xy)
    noised = samples_density_figure(
        view.x0, view.xt, p.grid, p.density, view.t, view.alpha, view.sigma, p.xy
    )
    return data, noised, schedule_figure(view.schedule, view.t)


PAIR_HEIGHT = 400  # px: the Data & forward page's main figure (fits a 720p screen)
STACK_ASPECT = 1.8  # data this much wider than high, in a tall figure: one panel above the other
NOMINAL_WIDTH = 1100  # px: the pair's width on a 1280-px screen (sizes dots of width-bound panels)
STACK_HEIGHT = 600  # px: below, two wide panels side by side are larger than stacked (measured
# on the 1280x720 and 1920x1080 screenshots: 1120x470 px gives 151 vs 150 px high panels, a
# 1460x400 normal-mode chart 197 vs 125)
STACK_GAP = 0.18  # of the plot height between stacked panels: tick labels and a projector title


def forward_pair_figure(view, height: int = PAIR_HEIGHT, stack: bool | None = None) -> go.Figure:
    """The data (x_0 over the exact p_0) and the noised data (x_t over the exact p_t) of a
    pipelines.ForwardView as one figure of two equal-aspect panels, each over its density's
    box (`Density.box`: fitted to the data's shape), side by side, or with `stack` one above the
    other (None: when the data are wide, aspect >= STACK_ASPECT, and the figure is tall,
    >= STACK_HEIGHT px, where stacked panels are the larger). Dots stay narrower than the
    data's finest detail (`view.finest`, `dot_px`), on a projector too (they are drawn in data
    units and grow with the panel, as the detail does)."""
    d, p = view.data, view.noisy
    boxes = [d.box, p.box]
    (dx0, dx1), (dy0, dy1) = d.box
    if stack is None:
        stack = (dx1 - dx0) >= STACK_ASPECT * (dy1 - dy0) and height >= STACK_HEIGHT
    margin_tb = 60 + 40
    panel_h = (height - margin_tb) * ((1 - STACK_GAP) / 2 if stack else 1)
    panel_w = (NOMINAL_WIDTH - 60) * (1 if stack else (1 - 0.06) / 2)
    # data units per px: the panel is as high as the plot, or (wide data) as wide as its share
    px = [max((y1 - y0) / max(panel_h, 50), (x1 - x0) / panel_w) for (x0, x1), (y0, y1) in boxes]
    finest = getattr(view, "finest", None)
    finest_t = None if finest is None else float(np.hypot(view.alpha * finest, view.sigma))
    # the clean points appear again, fainter, on the right: in the legend once
    left = _data_traces(view.x0, d.grid, d.density, "samples x₀ ~ p₀", px[0], showlegend=False,
                        finest=finest)  # fmt: skip
    right = _noised_traces(view.x0, view.xt, p.grid, p.density, px[1], finest=finest,
                           finest_t=finest_t)  # fmt: skip
    titles = ["data x₀ over p₀", f"x_t over p_t at t = {view.t:.3g}"]
    fig = square_panels([left, right], titles, boxes, gap=STACK_GAP if stack else 0.06, stack=stack)
    apply_style(fig, xy_range=None, equal_aspect=False, height=height)
    fig.update_layout(
        legend=KEY_LEGEND | dict(orientation="h", y=1.1, x=1, xanchor="right"),
        margin=dict(t=60, b=40, l=50, r=10),
    )
    return place_shapes(fig, [left, right])


def forward_animation_figure(view) -> go.Figure:
    """`forward_animation` of a pipelines.ForwardAnimation."""
    finest = getattr(view, "finest", None)
    return forward_animation(view.traj, view.times, view.ranges, sigmas=view.sigmas, finest=finest)
