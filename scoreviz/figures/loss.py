"""Loss figures: the DSM loss per t beside its exact floor, why lambda = sigma^2, loss history.

The learned model's loss is drawn in PALETTE["learned"], the exact floor in PALETTE["exact"]:
whatever the weighting, a loss is read against its floor, never against 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from scoreviz.figures.style import PALETTE, apply_style
from scoreviz.losses import WEIGHTINGS

# Weightings compared on one axis (all exact values): lambda = sigma^2 in the "exact" green.
WEIGHTING_COLORS = {
    "sigma2": PALETTE["exact"],
    "one": "#5E81AC",
    "x0": "#D4A017",
    "min_snr": "#8FA35E",
}
REFERENCE = "#9AA0A6"  # grey: asymptotes and guides


def _weighting_color(w: str, i: int) -> str:
    extra = ["#7B8794", "#C678DD", "#56B6C2"]
    return WEIGHTING_COLORS.get(w, extra[i % len(extra)])


def loss_vs_t_figure(
    binned: pd.DataFrame,
    floor: pd.DataFrame,
    binned_floor: pd.DataFrame,
    labels: Mapping[str, str] | None = None,
    weightings: Sequence[str] | None = None,
    height: int = 400,
    exact_binned: pd.DataFrame | None = None,
    subject: str = "model",
) -> go.Figure:
    """Per weighting (one column each): top, loss per t bin and the exact floor (log y);
    bottom, the excess loss - floor beside the score error lambda E||s - grad log p_t||^2.

    binned: `analysis.binned_loss`; floor, binned_floor: `analysis.floor_by_bin` (the curve drawn
    as is, the bin averages subtracted from the binned loss). exact_binned: optionally the exact
    score's `analysis.binned_loss`, drawn as open circles: it must sit on the floor (a check of
    the floor, and the scale of Monte Carlo noise in the model's points). subject: whose loss
    `binned` is ("model", or "exact score" on a page without one).

    The excess panel draws the Monte Carlo band excess ± 2 standard errors per bin (binned's
    "excess_se" if given, e.g. by pipelines.with_excess, else its "loss_se"): the true excess
    is >= 0, an estimate below 0 inside its band is noise.
    """
    labels = dict(labels or {})
    ws = list(weightings or dict.fromkeys(binned["weighting"]))
    # a panel's title is the weighting's formula ("λ = 1"): its full label, with the reason in
    # parentheses, is in the legend's select box, and does not fit a projected panel
    titles = [labels.get(w, w).split(" (")[0] for w in ws] + [""] * len(ws)
    fig = make_subplots(
        rows=2,
        cols=max(1, len(ws)),
        shared_xaxes=True,
        row_heights=[0.6, 0.4],
        vertical_spacing=0.08,
        subplot_titles=titles,
    )
    for j, w in enumerate(ws, start=1):
        first = j == 1
        b = binned[binned["weighting"] == w].sort_values("bin")
        f = floor[floor["weighting"] == w].sort_values("t")
        bf = binned_floor[binned_floor["weighting"] == w].set_index("bin")["floor"]
        _loss_panel(fig, b, f, j, first, subject)
        _excess_panel(fig, b, bf.reindex(b["bin"]).to_numpy(), j, first)
        if exact_binned is not None:
            e = exact_binned[exact_binned["weighting"] == w].sort_values("bin")
            _exact_points(fig, e, bf.reindex(e["bin"]).to_numpy(), j, first)
        fig.update_yaxes(type="log", dtick=log_dtick(b["loss"], f["floor"]),
                         exponentformat="power", row=1, col=j)  # fmt: skip
        fig.update_xaxes(title_text="t", range=[0, 1], row=2, col=j)
    fig.update_yaxes(title_text="loss per t (log)", row=1, col=1)
    fig.update_yaxes(title_text="loss − floor", row=2, col=1)
    apply_style(fig, xy_range=None, equal_aspect=False, height=height)
    fig.update_layout(legend=dict(y=1.06, font=dict(size=12)), margin=dict(t=80, b=40, l=60, r=10))
    return fig


MAX_LOG_TICKS = 5  # tick labels on a loss panel's log axis: more overlap at 400 px


def log_dtick(*values, most: int = MAX_LOG_TICKS) -> int:
    """Decades between tick labels of a log axis showing `values` (positive finite ones): 1, or
    more so that at most `most` labels share the panel (lambda = 1 spans 8 decades)."""
    v = np.concatenate([np.asarray(x, dtype=float).ravel() for x in values])
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) < 2:
        return 1
    decades = np.log10(v.max()) - np.log10(v.min())
    return max(1, int(np.ceil(decades / most)))


def robust_range(lower: np.ndarray, upper: np.ndarray, lone: float = 4.0, drop: int = 2):
    """(lo, hi) of a linear axis holding the intervals [lower_i, upper_i] and 0, leaving out up
    to `drop` lone bins: a bin whose extent max(|lower|, |upper|) is more than `lone` times
    the next largest (one Monte Carlo point at the smallest t, whose 1/sigma^2 weight makes it
    hundreds of times the others, squeezed every other bin of lambda = 1 onto the zero line).
    Returns (lo, hi, kept): kept (n,) bool marks the bins inside. 5 % padding."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    extent = np.maximum(np.abs(lower), np.abs(upper))
    kept = np.isfinite(extent)
    for _ in range(drop):
        order = np.sort(extent[kept])[::-1]
        if len(order) < 3 or order[0] <= lone * order[1]:
            break
        kept &= extent < order[0]
    if not kept.any():
        return -1.0, 1.0, kept
    lo, hi = min(0.0, float(lower[kept].min())), max(0.0, float(upper[kept].max()))
    pad = 0.05 * (hi - lo or 1.0)
    return lo - pad, hi + pad, kept


def _finite(x: np.ndarray, *ys: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    for y in ys:
        ok &= np.isfinite(y)
    return ok


def _loss_panel(
    fig: go.Figure, b: pd.DataFrame, f: pd.DataFrame, col: int, first: bool, subject: str
) -> None:
    t, loss, se = b["t"].to_numpy(), b["loss"].to_numpy(), b["loss_se"].to_numpy()
    ok = _finite(t, loss, se) & (loss > 0)
    sig = b["sigma"].to_numpy()[ok]
    fig.add_trace(
        go.Scatter(
            x=t[ok],
            y=loss[ok],
            error_y=dict(type="data", array=se[ok], thickness=1, width=0),
            customdata=sig,
            hovertemplate="t=%{x:.3f}, σ=%{customdata:.3g}<br>loss=%{y:.4g}<extra></extra>",
            mode="markers",
            name=f"{subject}'s loss per t bin",
            legendgroup="loss",
            showlegend=first,
            marker=dict(color=PALETTE["learned"], size=7),
        ),
        1,
        col,
    )
    ft, fy = f["t"].to_numpy(), f["floor"].to_numpy()
    ok = _finite(ft, fy) & (fy > 0)
    fig.add_trace(
        go.Scatter(
            x=ft[ok],
            y=fy[ok],
            mode="lines",
            name="exact floor L*(t)",
            legendgroup="floor",
            showlegend=first,
            line=dict(color=PALETTE["exact"], width=2.5),
        ),
        1,
        col,
    )


def _exact_points(fig: go.Figure, e: pd.DataFrame, bf: np.ndarray, col: int, first: bool) -> None:
    """The exact score's binned loss (top) and its excess over the floor (bottom, ~ 0)."""
    t, loss, se = e["t"].to_numpy(), e["loss"].to_numpy(), e["loss_se"].to_numpy()
    style = dict(mode="markers", legendgroup="exact", marker=_OPEN_EXACT)
    ok = _finite(t, loss, se) & (loss > 0)
    name = "exact score's loss (open)"
    fig.add_trace(go.Scatter(x=t[ok], y=loss[ok], name=name, showlegend=first, **style), 1, col)
    ok = _finite(t, loss - bf, se)
    err = dict(type="data", array=se[ok], thickness=1, width=0, color=PALETTE["exact"])
    fig.add_trace(
        go.Scatter(x=t[ok], y=(loss - bf)[ok], error_y=err, name=name, showlegend=False, **style),
        2,
        col,
    )


_OPEN_EXACT = dict(color="rgba(0,0,0,0)", size=8, line=dict(color=PALETTE["exact"], width=1.5))


BAND = "rgba(208,135,112,0.22)"  # the learned orange, translucent: the Monte Carlo band


def mc_band(b: pd.DataFrame, bf: np.ndarray, k: float = 2.0) -> tuple[np.ndarray, ...]:
    """(t, excess, lower, upper) per bin: excess = loss - floor, band = excess ± k standard
    errors ("excess_se" if the table has it, else "loss_se"), finite bins only."""
    t = b["t"].to_numpy()
    excess = b["excess"].to_numpy() if "excess" in b else b["loss"].to_numpy() - bf
    se = (b["excess_se"] if "excess_se" in b else b["loss_se"]).to_numpy()
    ok = _finite(t, excess, se)
    return t[ok], excess[ok], excess[ok] - k * se[ok], excess[ok] + k * se[ok]


def _excess_panel(fig: go.Figure, b: pd.DataFrame, bf: np.ndarray, col: int, first: bool) -> None:
    t, excess, lower, upper = mc_band(b, bf)
    # transparent edges, not width 0: the projector restyle thickens every line to >= 2 px
    band = dict(mode="lines", line=dict(width=0, color="rgba(0,0,0,0)"), hoverinfo="skip")
    band["legendgroup"] = "band"
    fig.add_trace(go.Scatter(x=t, y=upper, showlegend=False, name="+2 SE", **band), 2, col)
    fig.add_trace(
        go.Scatter(
            x=t,
            y=lower,
            fill="tonexty",
            fillcolor=BAND,
            name="±2 SE (Monte Carlo)",
            showlegend=first,
            **band,
        ),
        2,
        col,
    )
    fig.add_trace(
        go.Scatter(
            x=t,
            y=excess,
            mode="markers",
            name="excess = loss − floor",
            legendgroup="excess",
            showlegend=first,
            marker=dict(color=PALETTE["learned"], size=6, symbol="diamond"),
        ),
        2,
        col,
    )
    err = b["score_err"].to_numpy()
    ok = _finite(b["t"].to_numpy(), err)
    fig.add_trace(
        go.Scatter(
            x=b["t"].to_numpy()[ok],
            y=err[ok],
            mode="lines",
            name="λE‖s_θ − ∇log p_t‖²",
            legendgroup="gap",
            showlegend=first,
            line=dict(color=PALETTE["error"], width=2, dash="dot"),
        ),
        2,
        col,
    )
    fig.add_hline(y=0, line=dict(color=REFERENCE, width=1), row=2, col=col)
    err_lo, err_hi = np.minimum(err[ok], 0), np.maximum(err[ok], 0)
    lo, hi, kept = robust_range(np.r_[lower, err_lo], np.r_[upper, err_hi])
    fig.update_yaxes(range=[lo, hi], row=2, col=col)
    out = ~kept[: len(t)] & np.isfinite(excess)
    if out.any():  # lone bins off the scale: a triangle at the edge, the value on hover
        edge = np.where(excess[out] < lo, lo, hi)
        fig.add_trace(
            go.Scatter(
                x=t[out], y=edge, mode="markers", name="off scale (hover: value)",
                customdata=excess[out], showlegend=False, legendgroup="excess", cliponaxis=False,
                hovertemplate="t=%{x:.3f}: excess %{customdata:.3g} (off scale)<extra></extra>",
                marker=dict(color=PALETTE["learned"], size=11, line=dict(width=1, color="#333"),
                            symbol=np.where(excess[out] < lo, "triangle-down", "triangle-up")),
            ),
            2,
            col,
        )  # fmt: skip


def weighting_floor_figure(
    floor: pd.DataFrame,
    labels: Mapping[str, str] | None = None,
    height: int = 440,
) -> go.Figure:
    """The exact floor vs sigma_t (log-log), one line per weighting, with the guides 2/sigma^2
    (lambda = 1 as sigma -> 0) and 2 = E||eps||^2 (the most lambda = sigma^2 can ever cost).

    floor: `analysis.floor_curve` (columns weighting, t, sigma, floor).
    """
    labels = dict(labels or {})
    fig = go.Figure()
    s = np.sort(floor["sigma"].unique())
    fig.add_trace(_guide(s, 2 / s**2, "2/σ² (λ = 1 as σ → 0)"))
    fig.add_trace(_guide(s, np.full_like(s, 2.0), "2 = E‖ε‖² (bound for λ = σ²)"))
    for i, w in enumerate(dict.fromkeys(floor["weighting"])):
        f = floor[floor["weighting"] == w].sort_values("sigma")
        x, y = f["sigma"].to_numpy(), f["floor"].to_numpy()
        ok = _finite(x, y) & (x > 0) & (y > 0)
        fig.add_trace(
            go.Scatter(
                x=x[ok],
                y=y[ok],
                mode="lines",
                name=labels.get(w, w),
                line=dict(color=_weighting_color(w, i), width=3 if w in ("sigma2", "one") else 2),
            )
        )
    apply_style(fig, xy_range=None, equal_aspect=False, height=height)
    pos = floor["floor"].to_numpy()
    pos = pos[np.isfinite(pos) & (pos > 0)]
    top = float(pos.max()) if len(pos) else 10.0
    bottom = max(float(pos.min()) if len(pos) else 1e-4, 1e-4)  # alpha -> 0 sends some to 0
    fig.update_xaxes(type="log", title_text="noise level σ_t", dtick="D2")
    fig.update_yaxes(
        type="log",
        title_text="irreducible loss at t (exact)",
        range=[np.log10(bottom) - 0.2, np.log10(top) + 0.3],
        dtick=1,
        exponentformat="power",
    )
    fig.update_layout(legend=dict(y=1.02))
    return fig


def _guide(x: np.ndarray, y: np.ndarray, name: str) -> go.Scatter:
    return go.Scatter(x=x, y=y, mode="lines", name=name, line=dict(color=REFERENCE, dash="dot"))


def loss_figure(view, weightings: Sequence[str]) -> go.Figure:
    """`loss_vs_t_figure` of a pipelines.LossView for the chosen weightings."""
    has_model = getattr(view, "has_model", True)
    return loss_vs_t_figure(
        view.binned,
        view.fine,
        view.by_bin,
        WEIGHTINGS,
        weightings,
        exact_binned=view.exact if has_model else None,
        subject="model" if has_model else "exact score",
    )
