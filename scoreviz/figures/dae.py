"""DAE figures: reconstructions x_t -> D(x_t) per noise level, and reconstruction error vs sigma.

Denoisers are drawn in the colour of their kind (PALETTE keys "learned", "dae", "exact"), so the
multi-scale model, a classical single-sigma DAE and the exact E[X0 | x_t] are told apart at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from scoreviz.analysis import Reconstruction
from scoreviz.figures.arrows import arrow_trace, arrow_xy
from scoreviz.figures.style import PALETTE, apply_style
from scoreviz.text import escape


def _panel_range(x_t: np.ndarray, least: float = 3.0) -> float:
    finite = x_t[np.isfinite(x_t).all(1)]
    if finite.size == 0:
        return least
    return float(max(least, 1.1 * np.quantile(np.abs(finite), 0.98)))


def _points(xy: np.ndarray, name: str, color: str, size: float, show: bool, opacity: float):
    ok = np.isfinite(xy).all(1)
    return go.Scatter(
        x=xy[ok, 0],
        y=xy[ok, 1],
        mode="markers",
        name=name,
        legendgroup=name,
        showlegend=show,
        marker=dict(color=color, size=size, opacity=opacity),
    )


def dae_reconstruction_figure(
    panels: Sequence[Reconstruction],
    kinds: Mapping[str, str] | None = None,
    height: int = 440,
) -> go.Figure:
    """Small multiples, one per noise level: clean x0, noisy x_t, arrows x_t -> D(x_t).

    panels: from `analysis.reconstructions`; kinds: denoiser name -> PALETTE key (default
    "exact" for a name containing "exact", else "learned"). Denoiser names other than the
    exact one's (a fixed label) are users' model names: escaped (`scoreviz.text.escape`)
    before they become legend text.
    """
    kinds = dict(kinds or {})
    titles = [f"σ = {p.sigma:.3g}  (t = {p.t:.3f})" for p in panels]
    fig = make_subplots(rows=1, cols=max(1, len(panels)), subplot_titles=titles)
    for i, p in enumerate(panels, start=1):
        first = i == 1
        fig.add_trace(_points(p.x0, "clean x₀", PALETTE["data"], 4, first, 0.5), 1, i)
        fig.add_trace(_points(p.x_t, "noisy x̃ = x_t", PALETTE["noisy"], 5, first, 0.8), 1, i)
        for name, rec in p.recon.items():
            kind = kinds.get(name, "exact" if "exact" in name.lower() else "learned")
            label = name if kind == "exact" else escape(name)
            xy = arrow_xy(p.x_t, rec)
            tr = arrow_trace(*xy, PALETTE[kind], name=f"x̃ → {label}", legendgroup=name)
            tr.showlegend = first
            fig.add_trace(tr, 1, i)
        r = _panel_range(p.x_t)
        fig.update_xaxes(range=[-r, r], title_text="x₁", row=1, col=i)
        ax = "x" if i == 1 else f"x{i}"
        fig.update_yaxes(range=[-r, r], scaleanchor=ax, scaleratio=1, row=1, col=i)
    fig.update_yaxes(title_text="x₂", row=1, col=1)
    apply_style(fig, xy_range=None, equal_aspect=False, height=height)
    fig.update_layout(legend=dict(y=1.12), margin=dict(t=80))
    return fig


def _line(x, y, name, color, dash=None, width=2.0, mode="lines", **kw) -> go.Scatter:
    return go.Scatter(
        x=x, y=y, name=name, mode=mode, line=dict(color=color, dash=dash, width=width), **kw
    )


def reconstruction_error_figure(
    df: pd.DataFrame,
    kinds: Mapping[str, str] | None = None,
    marks: Mapping[str, float] | None = None,
    height: int = 440,
) -> go.Figure:
    """E||D(x_t) - x0||^2 vs sigma (log-log) for each denoiser, beside the exact MMSE.

    df: from `analysis.reconstruction_error` (columns sigma, t, alpha, trace_cov, mmse,
    <denoiser>...);
    the "exact" trace is the MMSE E tr Cov[X0 | x_t] itself. kinds: denoiser -> PALETTE key
    (columns without one are not drawn, e.g. the Monte Carlo check of the exact denoiser);
    marks: label -> sigma drawn as a vertical dotted line (e.g. the DAE's own sigma).
    """
    kinds = dict(kinds or {})
    s = df["sigma"].to_numpy()
    fig = go.Figure()
    mmse = df["mmse"].to_numpy()
    fig.add_trace(
        _line(s, 2 * s**2 / df["alpha"].to_numpy() ** 2, "keep x̃/α: 2σ²/α²", "#9AA0A6", "dot", 1)
    )
    fig.add_trace(
        _line(s, df["trace_cov"].to_numpy(), "predict the mean: tr Cov[x₀]", "#9AA0A6", "dash", 1)
    )
    fig.add_trace(_line(s, mmse, "exact E[x₀|x̃] = MMSE  E tr Cov[x₀|x̃]", PALETTE["exact"], width=3))
    for name, kind in kinds.items():
        if name in df and kind != "exact":
            y = df[name].to_numpy()
            ok = np.isfinite(y)
            fig.add_trace(
                _line(
                    s[ok],
                    y[ok],
                    escape(name),
                    PALETTE[kind],
                    mode="lines+markers",
                    marker=dict(size=5),
                )
            )
    lo = max(float(np.nanmin(mmse[mmse > 0])) / 3, 1e-6) if (mmse > 0).any() else 1e-4
    hi = 10 * float(np.nanmax(mmse))
    for label, sig in (marks or {}).items():
        kind = kinds.get(label, "dae")
        fig.add_trace(
            _line(
                [sig, sig],
                [lo, hi],
                f"{escape(label)}: its σ",
                PALETTE[kind],
                "dot",
                1.5,
                opacity=0.8,
            )
        )
    apply_style(fig, xy_range=None, equal_aspect=False, height=height)
    fig.update_xaxes(type="log", title_text="noise level σ", dtick="D2")
    fig.update_yaxes(
        type="log",
        title_text="E‖D(x̃) − x₀‖²",
        range=[np.log10(lo), np.log10(hi)],
        dtick=1,
        exponentformat="power",
    )
    fig.update_layout(legend=dict(y=1.02))
    return fig


def dae_figure(view) -> go.Figure:
    """`dae_reconstruction_figure` of a pipelines.DaeView."""
    return dae_reconstruction_figure(list(view.panels), view.kinds)


def dae_error_figure(view) -> go.Figure:
    """`reconstruction_error_figure` of a pipelines.DaeErrorView."""
    return reconstruction_error_figure(view.table, view.kinds, view.marks)
