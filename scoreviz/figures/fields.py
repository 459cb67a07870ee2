"""Score fields as arrows over the exact density: learned beside exact, their difference, error.

Each arrow field is one layout shape: a filled outline per arrow, shaft and head in data units
(`arrows.arrow_shapes`; Plotly made an SVG element per arrow of a trace). All panels share one
arrow scale, set by the exact field, so equal lengths mean equal vectors. By default the arrows
show sigma_t * score (= -E[eps | x_t], of order 1 at every noise level), rescaled at each t, so
they stay readable from t_min to t = 1. Raw scores (~ 1/sigma) are drawn on one scale for every
t (`fixed_scale`, set at t = 1 by the pipeline), so they visibly grow as t -> 0 until they reach
the cap (RAW_CAP cells).

The scale and length cap are recorded in `fig.layout.meta` ("arrow_scale", "arrow_cap") so the
drawn arrows can be turned back into vectors: head - tail = arrow_scale * vector (if not capped).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from scoreviz.figures.arrows import arrow_shapes, capped, polygon_vectors
from scoreviz.figures.style import (
    ERROR_COLORSCALE,
    PALETTE,
    apply_style,
    data_per_px,
    place_shapes,
    square_panels,
)
from scoreviz.grids import Grid, ScoreField, finite

# Light blues: the density stays readable under the orange/green arrows.
SOFT_BLUES = [[0.0, "#ffffff"], [0.35, "#dbe9f6"], [1.0, "#6baed6"]]
ARROW_FILL = 0.9  # the ARROW_QUANTILE-th arrow is 0.9 grid cells long
ARROW_QUANTILE = 0.8  # not the longest: those sit in the empty corners, and would shrink the
# arrows near the data, where students look, to dots (the corners reach the cap instead)
ARROW_CAP = 1.6  # no arrow is longer than 1.6 grid cells (outliers would cover the panel)
RAW_CAP = 2.4  # raw scores on one scale for every t: room to grow 4x before the cap
ERROR_QUANTILE = 0.95  # the error colour scale ends at this quantile of the error under p_t
MASS_LEVELS = (0.5, 0.9)  # labelled contours: the smallest regions holding 50% / 90% of p_t
HEAD_OF_LENGTH = 0.35  # a field arrow's head is this fraction of its length, up to max_head px
CELL_PX = 28  # px per grid cell of a 15 x 15 field on the default figure (converts max_head)
DECIMALS = 3  # coordinates in figure JSON are rounded: 1e-3 is far below one pixel
HEIGHT = 420  # px: the page's main figure in normal mode (fits a 720p screen with controls)


def shown_vectors(score: np.ndarray, sigma: float, scaled: bool) -> np.ndarray:
    """What the arrows show: sigma * score if `scaled`, else the raw score (float64, finite)."""
    v = finite(score).astype(np.float64)
    return v * sigma if scaled else v


def arrow_scale(spacing: float, *vector_sets: np.ndarray) -> float:
    """One data-units-per-vector-unit scale shared by all panels (pooled ARROW_QUANTILE)."""
    lengths = np.concatenate([np.linalg.norm(v, axis=1) for v in vector_sets if v is not None])
    ref = float(np.quantile(lengths, ARROW_QUANTILE)) if lengths.size else 0.0
    return ARROW_FILL * spacing / ref if ref > 1e-12 else 0.0


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The q-quantile of `values` under `weights` (same shape, >= 0): the smallest value v with
    sum(weights[values <= v]) >= q * sum(weights). Plain quantile if the weights sum to 0."""
    v = np.asarray(values, dtype=np.float64).ravel()
    w = np.clip(np.asarray(weights, dtype=np.float64).ravel(), 0, None)
    if not w.sum() > 0:
        return float(np.quantile(v, q))
    order = np.argsort(v)
    cum = np.cumsum(w[order]) / w.sum()
    return float(v[order][min(np.searchsorted(cum, q), len(v) - 1)])


def mass_fraction(density: np.ndarray) -> np.ndarray:
    """Per grid cell, the share of p_t's mass in cells at least as dense (same shape, in [0, 1]).

    Its level set at m bounds the smallest region holding m of the mass, so a contour of it at
    0.5 reads "half the noisy data lands inside this line"."""
    d = np.clip(np.asarray(density, dtype=np.float64), 0, None)
    flat = d.ravel()
    total = flat.sum()
    if not total > 0:
        return np.ones_like(d)
    order = np.argsort(-flat)
    out = np.empty_like(flat)
    out[order] = np.cumsum(flat[order]) / total
    return out.reshape(d.shape)


def quiver_traces(
    points: np.ndarray,
    vectors: np.ndarray,
    scale: float,
    cap: float,
    color: str,
    name: str,
    showlegend: bool = True,
    width: float = 2.5,
    max_head: float = 12,
    *,
    cell: float,
    px: float,
) -> list[dict]:
    """Arrows from `points` (N, 2) along scale * `vectors` (N, 2), lengths capped at `cap`;
    shafts `width` px wide (px: data units per pixel on the default figure), heads
    HEAD_OF_LENGTH of their arrow and at most `max_head` px long (`cell`: the grid spacing in
    data units, CELL_PX px), one filled layout shape (`arrows.arrow_shapes`) in a list, for
    `style.square_panels`."""
    d, length = capped(finite(vectors), scale, cap)
    head = np.minimum(HEAD_OF_LENGTH * length, max_head / CELL_PX * cell)
    # float32 keeps the JSON small and avoids validating thousands of Python objects (a None
    # list is 10x slower)
    return arrow_shapes(
        points, points + d, color, width * px, head, name, decimals=DECIMALS, legendgroup=name,
        showlegend=showlegend,
    )  # fmt: skip


CONTOUR_COLOR = "#1F4E79"
LABEL_SPREAD = 35  # degrees: the label directions of the first and last contour level


def contour_crossings(xs: np.ndarray, ys: np.ndarray, z: np.ndarray, level: float) -> np.ndarray:
    """Points (K, 2) where the level set z = level crosses the grid lines of z (rows = ys,
    columns = xs), linearly interpolated along each crossed cell edge."""
    z = np.asarray(z, dtype=np.float64) - level
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    out = []
    for a, b, along, across, axis in ((z[:, :-1], z[:, 1:], xs, ys, 1), (z[:-1], z[1:], ys, xs, 0)):
        i, j = np.nonzero(a * b < 0)
        k = j if axis == 1 else i  # the crossed edge starts at index k along its grid line
        frac = a[i, j] / (a[i, j] - b[i, j])
        pos = along[k] + frac * (along[k + 1] - along[k])
        other = across[i] if axis == 1 else across[j]
        pts = np.stack([pos, other], 1) if axis == 1 else np.stack([other, pos], 1)
        out.append(pts)
    return np.concatenate(out) if out else np.empty((0, 2))


def contour_labels(xs, ys, z, levels) -> go.Scatter:
    """Labels "50%", ... for the contours of z at `levels`, as one text trace. Level k of n is
    labelled twice, at its crossings farthest along the directions ±LABEL_SPREAD° about the x
    axis (rotated a step per level), so neighbouring contours' labels never land on one spot
    even where the lines run close together. Plotly's own contour labels (`showlabels`)
    search every path for a free spot with SVG path measurements: 0.1 s of the Score field
    page's redraw in Chromium."""
    x, y, text = [], [], []
    n = len(levels)
    for k, level in enumerate(levels):
        pts = contour_crossings(xs, ys, z, level)
        if not len(pts):
            continue
        tilt = np.radians(LABEL_SPREAD * (2 * k / max(n - 1, 1) - 1))  # -spread .. +spread
        picks = []
        for angle in (tilt, np.pi - tilt):  # one on the right, one on the left
            u = np.array([np.cos(angle), np.sin(angle)])
            picks.append(int(np.argmax(pts @ u)))
        pick = np.unique(picks)
        x += list(pts[pick, 0])
        y += list(pts[pick, 1])
        text += [f"{level:.0%}"] * len(pick)
    return go.Scatter(
        x=np.round(x, DECIMALS), y=np.round(y, DECIMALS), text=text, mode="text",
        textposition="middle center", hoverinfo="skip", showlegend=False,
        textfont=dict(size=12, color=CONTOUR_COLOR, shadow="0px 0px 3px white"),
        name="p_t mass contour labels",
    )  # fmt: skip


def density_heatmap(grid: Grid, z: np.ndarray, name: str = "exact p_t") -> go.Heatmap:
    """Exact density p_t (or any (G, G) field, rows = y) as a soft background heatmap."""
    return go.Heatmap(
        x=grid.xs.astype(np.float32),
        y=grid.ys.astype(np.float32),
        z=finite(z),
        colorscale=SOFT_BLUES,
        showscale=False,
        zsmooth="fast",  # a coarse grid, smoothed by the browser as it scales the image up (small
        # JSON, no visible cells; "best" interpolates every pixel in JS: +45 ms a redraw)
        name=name,
        hovertemplate="x₁=%{x:.2f}<br>x₂=%{y:.2f}<br>p_t=%{z:.3g}<extra></extra>",
    )


_PANEL_TITLES = {"learned": "learned s_θ(x, t)", "exact": "exact ∇log p_t(x)"}


def _vector_label(scaled: bool) -> str:
    # Unicode, not LaTeX: Streamlit's Plotly does not load MathJax (streamlit#5251).
    return "σ_t·score" if scaled else "raw score"


def _scale_and_cap(
    spacing: float, exact_v: np.ndarray, scaled: bool, fixed_scale: float | None
) -> tuple[float, float]:
    """(data units per vector unit, length cap): per t from the exact field (σ_t·score, order 1
    at every t), or `fixed_scale` for raw scores, the same at every t so they visibly grow."""
    if not scaled and fixed_scale is not None and np.isfinite(fixed_scale) and fixed_scale > 0:
        return float(fixed_scale), RAW_CAP * spacing
    return arrow_scale(spacing, exact_v), ARROW_CAP * spacing


def score_field_figure(
    field: ScoreField,
    xy_range: tuple[float, float],
    scaled: bool = True,
    height: int = HEIGHT,
    fixed_scale: float | None = None,
    overlay: bool = False,
) -> go.Figure:
    """Learned score (left) beside the exact score (right) over the exact p_t, one arrow scale.

    Without a learned field only the exact panel is drawn. overlay: one panel, the learned
    arrows (thick, translucent) under the exact ones (thin), so agreement reads as a thin line
    inside a thick one. fixed_scale: data units per score unit for raw scores (scaled=False),
    the same at every t (e.g. pipelines.ScoreFieldView.raw_scale); None: rescaled per t.
    """
    exact_v = shown_vectors(field.exact, field.sigma, scaled)
    learned_v = None if field.learned is None else shown_vectors(field.learned, field.sigma, scaled)
    sp = field.grid.spacing
    # The truth sets the scale: a network that is far off (e.g. where it never saw data) shows
    # up as arrows at the length cap, and never shrinks the exact field into dots.
    scale, cap = _scale_and_cap(sp, exact_v, scaled, fixed_scale)
    pts = field.grid.points
    px = data_per_px(xy_range, height, MARGIN_TB)
    bg = density_heatmap(field.bg_grid, field.density)
    exact_kw = dict(width=1.5, max_head=9) if overlay and learned_v is not None else {}
    exact = quiver_traces(
        pts, exact_v, scale, cap, PALETTE["exact"], "exact score", cell=sp, px=px, **exact_kw
    )
    if learned_v is None:
        traces, titles = [[bg] + exact], [_PANEL_TITLES["exact"]]
    else:
        learned_kw = dict(width=5, max_head=15) if overlay else {}
        learned = quiver_traces(
            pts,
            learned_v,
            scale,
            cap,
            PALETTE["learned"],
            "learned score",
            cell=sp,
            px=px,
            **learned_kw,
        )
        if overlay:
            for shape in learned:
                shape["opacity"] = 0.55
            traces, titles = [[bg] + learned + exact], ["learned (thick) over exact (thin)"]
        else:
            bg2 = density_heatmap(field.bg_grid, field.density)
            traces = [[bg] + learned, [bg2] + exact]
            titles = [_PANEL_TITLES["learned"], _PANEL_TITLES["exact"]]
    rule = "one scale for every t" if fixed_scale and not scaled else "rescaled at each t"
    title = f"{_vector_label(scaled)} at t = {field.t:.3f} (σ_t = {field.sigma:.3g}), {rule}"
    fig = _panels(traces, titles, xy_range, title, height, scale, cap, gap=0.04)
    fig.layout.meta["fixed_scale"] = bool(fixed_scale and not scaled)
    fig.update_layout(showlegend=overlay and learned_v is not None)
    return fig


def score_difference_figure(
    field: ScoreField,
    xy_range: tuple[float, float],
    scaled: bool = True,
    height: int = HEIGHT,
    fixed_scale: float | None = None,
) -> go.Figure:
    """Left: learned - exact as arrows (same scale rule); right: sigma^2 ||s_theta - s||^2.

    The error's colour scale ends at its ERROR_QUANTILE under p_t (`weighted_quantile`, in
    layout.meta["error_zmax"]): the empty corners, where training never looks, cannot wash out
    the data region. Contours: the regions holding MASS_LEVELS of p_t, labelled."""
    if field.learned is None or field.error is None:
        raise ValueError("score_difference_figure needs a learned field")
    diff = shown_vectors(field.learned - field.exact, field.sigma, scaled)
    exact_v = shown_vectors(field.exact, field.sigma, scaled)
    sp = field.grid.spacing
    scale, cap = _scale_and_cap(sp, exact_v, scaled, fixed_scale)  # as the field figure's
    eg = field.err_grid
    error = finite(field.error)
    zmax = weighted_quantile(error, field.density, ERROR_QUANTILE)
    zmax = zmax if zmax > 0 else None
    error_map = go.Heatmap(
        x=eg.xs.astype(np.float32),
        y=eg.ys.astype(np.float32),
        z=error,
        colorscale=ERROR_COLORSCALE,
        zmin=0,
        zmax=zmax,
        zsmooth="fast",
        colorbar=dict(title=dict(text="σ²‖Δs‖²", side="right"), len=0.8, thickness=12, x=1.0),
        name="error",
        hovertemplate="x₁=%{x:.2f}<br>x₂=%{y:.2f}<br>σ²‖Δs‖²=%{z:.3g}<extra></extra>",
    )
    lo, hi = MASS_LEVELS[0], MASS_LEVELS[-1]
    mass = np.round(mass_fraction(field.density), 4).astype(np.float32)
    where_data = go.Contour(  # where p_t has its mass: the error that matters is inside
        x=eg.xs.astype(np.float32),
        y=eg.ys.astype(np.float32),
        z=mass,
        contours=dict(coloring="lines", start=lo, end=hi, size=max(hi - lo, 1e-6)),
        autocontour=False,
        colorscale=[[0, CONTOUR_COLOR], [1, CONTOUR_COLOR]],  # "lines" colouring ignores line.color
        line=dict(width=1.5),
        showscale=False,
        name="p_t mass contours",
        hoverinfo="skip",
    )
    traces = [
        [density_heatmap(field.bg_grid, field.density)]
        + quiver_traces(
            field.grid.points,
            diff,
            scale,
            cap,
            PALETTE["error"],
            "learned − exact",
            cell=sp,
            px=data_per_px(xy_range, height, MARGIN_TB),
        ),
        [error_map, where_data, contour_labels(eg.xs, eg.ys, mass, MASS_LEVELS)],
    ]
    titles = [
        "learned − exact (same arrow scale)",
        f"error: {field.weighted_error:.3g} under p_t, {field.mean_error:.3g} over the square",
    ]
    title = (
        f"Where the network is wrong at t = {field.t:.3f} (σ_t = {field.sigma:.3g}); colours "
        f"end at the {ERROR_QUANTILE:.0%} quantile under p_t, contours hold 50% / 90% of p_t"
    )
    fig = _panels(traces, titles, xy_range, title, height, scale, cap, gap=0.1)
    fig.layout.meta["error_zmax"] = zmax
    fig.update_layout(showlegend=False, title_font_size=14)
    return fig


MARGIN_TB = 66 + 34  # px: the field figures' top and bottom margins (`_panels`)


def _panels(traces, titles, xy_range, title, height, scale, cap, gap) -> go.Figure:
    """`style.square_panels` over xy_range, with the arrow scale in layout.meta."""
    fig = square_panels(traces, titles, [xy_range] * len(traces), gap, zeroline=False)
    fig.update_layout(
        meta={"arrow_scale": float(scale), "arrow_cap": float(cap)}, uirevision="field"
    )
    apply_style(fig, title=title, xy_range=None, equal_aspect=False, height=height)
    fig.update_layout(
        title=dict(x=0, xanchor="left", y=0.99, yanchor="top", font=dict(size=15)),
        legend=dict(orientation="h", yanchor="bottom", y=1.06, x=1, xanchor="right"),
        margin=dict(t=66, b=34, l=45, r=10),  # MARGIN_TB; room for a 24 px title (projector)
    )
    return place_shapes(fig, traces)


def arrow_vectors(fig: go.Figure, name: str, panel: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `quiver_traces` for tests and notebooks: (tails (N, 2), tip - tail (N, 2))
    of the arrows named `name` in panel `panel` (1: the first)."""
    xref = "x" if panel == 1 else f"x{panel}"
    shape = next(s for s in fig.layout.shapes if s.name == name and s.xref == xref)
    return polygon_vectors(shape.path)


def field_figure(view, scaled: bool = True, overlay: bool = False) -> go.Figure:
    """The score field figure of a pipelines.ScoreFieldView; raw scores (scaled=False) on the
    view's fixed scale."""
    fixed = getattr(view, "raw_scale", None)
    return score_field_figure(view.field, view.xy, scaled, fixed_scale=fixed, overlay=overlay)


def difference_figure(view, scaled: bool = True) -> go.Figure | None:
    """The learned − exact figure of a pipelines.ScoreFieldView, None without a model."""
    if view.field.learned is None:
        return None
    fixed = getattr(view, "raw_scale", None)
    return score_difference_figure(view.field, view.xy, scaled, fixed_scale=fixed)


def field_figures(
    view, scaled: bool = True, overlay: bool = False
) -> tuple[go.Figure, go.Figure | None]:
    """(`field_figure`, `difference_figure`) of a pipelines.ScoreFieldView."""
    return field_figure(view, scaled, overlay), difference_figure(view, scaled)


COUPLING_NOTE = {
    "independent": "learned v̂ (independent pairing)",
    "ot": "learned v̂ (OT pairing: another field)",
}


def velocity_field_figure(view, height: int = HEIGHT) -> go.Figure:
    """The flow-matching velocity v = E[ε − x₀ | x_t] of a pipelines.VelocityFieldView: learned
    (left) beside exact (right) over the exact p_t, one arrow scale set by the exact field.

    The exact field is that of the independent pairing; a model trained with OT pairing learns
    another field (its panel title says so). On the linear path the particles of the
    probability-flow ODE move along these arrows (dx/dt = u v)."""
    sp, pts = view.grid.spacing, view.grid.points
    scale, cap = arrow_scale(sp, view.exact), ARROW_CAP * sp
    px = data_per_px(view.xy, height, MARGIN_TB)
    bg = density_heatmap(view.bg_grid, view.density)
    exact = quiver_traces(pts, view.exact, scale, cap, PALETTE["exact"], "exact v", cell=sp, px=px)
    exact_title = "exact v (independent pairing)"
    if view.learned is None:
        traces, titles = [[bg] + exact], [exact_title]
    else:
        learned = quiver_traces(
            pts, view.learned, scale, cap, PALETTE["learned"], "learned v", cell=sp, px=px
        )
        bg2 = density_heatmap(view.bg_grid, view.density)
        traces = [[bg] + learned, [bg2] + exact]
        titles = [COUPLING_NOTE.get(view.coupling, "learned v̂"), exact_title]
    moves = (
        "the ODE moves along it" if view.speed else "velocity of x_t = α x₀ + σ ε read as ε − x₀"
    )
    title = f"velocity v = E[ε − x₀ | x_t] at t = {view.t:.3f} (σ_t = {view.sigma:.3g}), {moves}"
    fig = _panels(traces, titles, view.xy, title, height, scale, cap, gap=0.04)
    fig.update_layout(showlegend=False)
    return fig
