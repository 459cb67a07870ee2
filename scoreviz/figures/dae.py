"""DAE figures: reconstructions x_t -> D(x_t) per noise level, and reconstruction error vs sigma.

Denoisers are drawn in the colour of their kind (PALETTE keys "learned", "dae", "exact"), so the
multi-scale model, a classical single-sigma DAE and the exact E[X0 | x_t] are told apart at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from scoreviz.analysis import Reconstruction
from scoreviz.figures.arrows import arrow_shapes
from scoreviz.figures.dots import cloud_traces
from scoreviz.figures.style import PALETTE, apply_style, place_shapes, square_panels
from scoreviz.text import escape

HEIGHT = 400  # px: the DAE page's main figure (a row of square panels; fits a 720p screen)


def _panel_range(x_t: np.ndarray, least: float = 3.0) -> float:
    finite = x_t[np.isfinite(x_t).all(1)]
    if finite.size == 0:
        return least
    return float(max(least, 1.1 * np.quantile(np.abs(finite), 0.98)))


def _points(xy: np.ndarray, name: str, color: str, size: float, show: bool, opacity: float,
            px: float) -> list:  # fmt: skip
    """`size` px dots (px: data units per pixel; `dots.cloud_traces`)."""
    return cloud_traces(xy, px, size, color, name, opacity=opacity, legendgroup=name,
                        showlegend=show)  # fmt: skip


SMALL_ALPHA = 0.2  # below this signal level a panel says why learned arrows fly off


def clip_to_box(start: np.ndarray, end: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """(ends moved back along start -> end onto the square [-r, r]^2 (N, 2), which were moved
    (N,) bool). Ends inside, and non-finite ones, are kept as they are."""
    d = end - start
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(d > 0, (r - start) / d, np.where(d < 0, (-r - start) / d, np.inf))
    frac = np.clip(np.nan_to_num(room.min(1), nan=np.inf), 0.0, None)
    moved = np.isfinite(end).all(1) & (frac < 1)
    out = end.copy()
    out[moved] = start[moved] + frac[moved, None] * d[moved]
    return out, moved


# Head lengths as a fraction of a panel's half-width r; shaft widths in px
HEAD_LEARNED, HEAD_EXACT = 0.067, 0.042
SHAFT_LEARNED, SHAFT_EXACT = 3.2, 1.3
MAIN_PX = 1000  # px: the page's main column on a 1280 px wide screen, sidebar open


def panel_px(n: int, height: int) -> float:
    """Side (px) of each of n square panels in a row on a figure `height` px high (margins
    70 + 40) across MAIN_PX: the scale that sizes dots and shafts in data units."""
    return min(height - 110.0, (MAIN_PX - 55) / max(n, 1) * 0.97)


def _arrows(x_t, rec, kind: str, name: str, label: str, first: bool, r: float, px: float):
    """Exact: thin, small head, drawn on top; others: thick, translucent, below (one filled
    shape each, `arrows.arrow_shapes`; px: data units per pixel)."""
    exact = kind == "exact"
    width, head = (SHAFT_EXACT, HEAD_EXACT) if exact else (SHAFT_LEARNED, HEAD_LEARNED)
    kw = dict(legendgroup=name, showlegend=first) | ({} if exact else dict(opacity=0.7))
    return arrow_shapes(
        x_t, rec, PALETTE[kind], width * px, head * r, f"x̃ → {label}", decimals=3, **kw
    )


def _alpha_note(p: Reconstruction, clipped: int) -> str | None:
    """Why arrows fly off at small alpha: D = (x̃ + σ² s)/α divides by alpha ≈ 0."""
    if p.alpha >= SMALL_ALPHA and not clipped:
        return None
    why = f"α = {p.alpha:.2g}: D = (x̃ + σ²s)/α" + (" ÷ ≈0" if p.alpha < SMALL_ALPHA else "")
    return why + (f"<br>{clipped} arrows cut at the frame" if clipped else "")


def dae_reconstruction_figure(
    panels: Sequence[Reconstruction],
    kinds: Mapping[str, str] | None = None,
    height: int = 440,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """Small multiples, one per noise level: clean x0, noisy x_t, arrows x_t -> D(x_t).

    panels: from `analysis.reconstructions`; kinds: denoiser name -> PALETTE key (default
    "exact" for a name containing "exact", else "learned"); labels: denoiser name -> legend
    label (default the name). Labels other than the exact one's (a fixed label) come from
    users' model names: escaped (`scoreviz.text.escape`) before they become legend text.

    The exact denoiser is a thin green arrow on top of the others' thick translucent arrows,
    so agreement reads as a thin arrow inside a thick one. Arrows ending outside a panel are
    cut at its frame (the networks' D = (x̃ + σ² s)/α explodes as α -> 0), and the panel says
    so (layout annotations; layout.meta["clipped"]: cut arrows per panel).
    """
    kinds, labels = dict(kinds or {}), dict(labels or {})
    titles = [f"σ = {p.sigma:.2g} (t = {p.t:.2f})" for p in panels]
    clipped_counts, traces, ranges, notes = [], [], [], []
    for i, p in enumerate(panels, start=1):
        first = i == 1
        r = _panel_range(p.x_t)
        px = 2 * r / panel_px(len(panels), height)  # data units per pixel
        panel = [
            *_points(p.x0, "clean x₀", PALETTE["data"], 4, first, 0.5, px),
            *_points(p.x_t, "noisy x̃ = x_t", PALETTE["noisy"], 5, first, 0.8, px),
        ]
        order = sorted(p.recon, key=lambda n: _kind(kinds, n) == "exact")  # exact drawn last
        clipped = 0
        for name in order:
            kind = _kind(kinds, name)
            label = labels.get(name, name)
            label = label if kind == "exact" else escape(label)
            end, moved = clip_to_box(p.x_t, p.recon[name], r)
            clipped += int(moved.sum())
            panel += _arrows(p.x_t, end, kind, name, label, first, r, px)
        clipped_counts.append(clipped)
        traces.append(panel)
        ranges.append((-r, r))
        note = _alpha_note(p, clipped)
        if note:
            sfx = "" if i == 1 else str(i)
            notes.append(
                dict(text=note, x=0.02, y=0.02, xref=f"x{sfx} domain", yref=f"y{sfx} domain",
                     xanchor="left", yanchor="bottom", showarrow=False, align="left",
                     font=dict(size=12, color=PALETTE["error"]),
                     bgcolor="rgba(255,255,255,0.85)")
            )  # fmt: skip
    fig = square_panels(traces, titles, ranges, gap=0.03)
    for note in notes:
        fig.add_annotation(note)
    apply_style(fig, xy_range=None, equal_aspect=False, height=height)
    fig.update_layout(
        legend=dict(y=1.1, font=dict(size=13)), margin=dict(t=70, b=40, l=45, r=10),
        meta={"clipped": clipped_counts},
    )  # fmt: skip
    fig.update_annotations(font_size=16, selector=dict(xref="paper"))  # the panel titles
    return place_shapes(fig, traces)


def _kind(kinds: Mapping[str, str], name: str) -> str:
    return kinds.get(name, "exact" if "exact" in name.lower() else "learned")


def _line(x, y, name, color, dash=None, width=2.0, mode="lines", **kw) -> go.Scatter:
    return go.Scatter(
        x=x, y=y, name=name, mode=mode, line=dict(color=color, dash=dash, width=width), **kw
    )


def reconstruction_error_figure(
    df: pd.DataFrame,
    kinds: Mapping[str, str] | None = None,
    marks: Mapping[str, float] | None = None,
    height: int = 440,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """E||D(x_t) - x0||^2 vs sigma (log-log) for each denoiser, beside the exact MMSE.

    df: from `analysis.reconstruction_error` (columns sigma, t, alpha, trace_cov, mmse,
    <denoiser>...);
    the "exact" trace is the MMSE E tr Cov[X0 | x_t] itself. kinds: denoiser -> PALETTE key
    (columns without one are not drawn, e.g. the Monte Carlo check of the exact denoiser);
    marks: label -> sigma drawn as a vertical dotted line (e.g. the DAE's own sigma); labels:
    denoiser name -> legend label (default the name).
    """
    kinds, labels = dict(kinds or {}), dict(labels or {})
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
                    escape(labels.get(name, name)),
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
                f"{escape(labels.get(label, label))}: its σ",
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
    return dae_reconstruction_figure(
        list(view.panels), view.kinds, height=HEIGHT, labels=getattr(view, "labels", None)
    )


def dae_error_figure(view) -> go.Figure:
    """`reconstruction_error_figure` of a pipelines.DaeErrorView."""
    return reconstruction_error_figure(
        view.table, view.kinds, view.marks, labels=getattr(view, "labels", None)
    )
