"""Figures of the Guidance page (pure: a `pipelines.guidance` dataclass in, go.Figure out).

- `guidance_figure`: three equal-aspect panels from the same seeds: samples with the learned
  guided score, with the exact guided score, and the exact tilted density p(x|c)^w p(x)^(1-w)
  (an image) with as many of its own samples.
- `shares_figure`: each class's share of the samples (mode weights): guided exact, guided
  learned, and the tilted density's mass.
- `curve_figure`: over w, the energy distance between exact-guided samples and the tilted
  density's (over the two-sample floor; DDPM and DDIM), and the guided class's share.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from scoreviz.figures.dots import cloud_image
from scoreviz.figures.fields import SOFT_BLUES
from scoreviz.figures.forward import KEY_LEGEND
from scoreviz.figures.raster import density_image
from scoreviz.figures.style import (
    PALETTE,
    apply_style,
    data_per_px,
    fixed_margins,
    place_shapes,
    square_panels,
)
from scoreviz.grids import Grid
from scoreviz.pipelines.guidance import GUIDANCE_SAMPLERS, LIM, GuidanceCurve, GuidanceView

TILTED = "#5E81AC"  # the tilted density's samples and bars (steel blue)
SAMPLER_DASH = {"ddpm": "solid", "ddim": "dash"}
SAMPLER_SHORT = {"ddpm": "DDPM", "ddim": "DDIM"}


def _dots(x: np.ndarray | None, px: float, color: str, name: str, legend: bool) -> list:
    if x is None:
        return []
    return cloud_image(x, px, 4.0, color, name, opacity=0.7, showlegend=legend)


def guidance_figure(view: GuidanceView, height: int = 430) -> go.Figure:
    """Learned guided | exact guided | tilted density (with its samples), from the same seeds."""
    s, xy = view.settings, (-LIM, LIM)
    px = data_per_px(xy, height, 70 + 50)
    tl = view.tilted
    sampler = SAMPLER_SHORT[s.sampler]
    learned = _dots(view.learned, px, PALETTE["learned"], f"learned guided ({sampler})", True)
    exact = _dots(view.exact, px, PALETTE["exact"], f"exact guided ({sampler})", True)
    grid = Grid(tl.xs, tl.ys)
    tilted = [
        density_image(grid, tl.density, SOFT_BLUES, "tilted density"),
        *cloud_image(view.tilted_x, px, 2.5, TILTED, "samples of the tilted density",
                     opacity=0.55),
    ]  # fmt: skip
    # short titles: a projector's 24 px font fits three of them side by side at 1280 px; the
    # class and w are on the controls right above
    titles = [
        "learned, guided" if view.learned is not None else "learned: no conditional model",
        "exact, guided",
        "tilted p(x|c)^w p(x)^(1−w)",
    ]
    panels = [learned, exact, tilted]
    fig = square_panels(panels, titles, [xy] * 3, gap=0.04)
    fig = apply_style(fig, title=None, xy_range=None, equal_aspect=False, height=height)
    fig.update_layout(
        margin=dict(l=50, r=10, t=70, b=50),
        legend=KEY_LEGEND | dict(orientation="h", y=1.1, x=0, yanchor="bottom"),
    )
    if view.learned is None:
        fig.add_annotation(
            text="no class-conditional model:<br>train one (below the figures)", x=0, y=0,
            xref="x", yref="y", showarrow=False, font=dict(size=14, color="#777"),
        )  # fmt: skip
    return place_shapes(fixed_margins(fig), panels)


def shares_figure(view: GuidanceView, height: int = 300) -> go.Figure:
    """Each class's share of the samples: exact guided, learned guided, tilted density."""
    names = list(view.class_names)
    bars = [("exact guided", view.exact_shares, PALETTE["exact"])]
    if view.learned_shares is not None:
        bars.append(("learned guided", view.learned_shares, PALETTE["learned"]))
    bars.append(("tilted density", view.tilted_shares, TILTED))
    fig = go.Figure(
        [
            go.Bar(x=names, y=np.round(v, 4), name=n, marker_color=col,
                   hovertemplate="%{x}: %{y:.1%}<extra>" + n + "</extra>")
            for n, v, col in bars
        ]
    )  # fmt: skip
    fig = apply_style(fig, title="Mode weights: each class's share", xy_range=None,
                      equal_aspect=False, height=height)  # fmt: skip
    fig.update_layout(barmode="group", margin=dict(l=55, r=10, t=60, b=60),
                      legend=KEY_LEGEND | dict(y=1.0, yanchor="bottom", x=0.45))  # fmt: skip
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", title_text="share")
    return fig


def curve_figure(curve: GuidanceCurve, w: float, height: int = 300) -> go.Figure:
    """Over w: energy distance (exact guided vs tilted samples) / its two-sample floor, log
    scale, per sampler; and the guided class's share against the tilted density's mass."""
    traces = []
    for key in GUIDANCE_SAMPLERS:
        dash, short = SAMPLER_DASH[key], SAMPLER_SHORT[key]
        traces.append(go.Scatter(
            x=curve.ws, y=np.maximum(curve.ratio[key], 1e-2), mode="lines+markers",
            name=f"{short}: energy / floor", line=dict(color=PALETTE["exact"], dash=dash),
            xaxis="x", yaxis="y",
        ))  # fmt: skip
        traces.append(go.Scatter(
            x=curve.ws, y=curve.share[key], mode="lines+markers", name=f"{short}: share of c",
            line=dict(color=PALETTE["exact"], dash=dash), marker_symbol="square",
            xaxis="x2", yaxis="y2", showlegend=False,
        ))  # fmt: skip
    traces.append(go.Scatter(
        x=curve.ws, y=curve.tilted_share, mode="lines+markers", name="tilted density",
        line=dict(color=TILTED, width=3), xaxis="x2", yaxis="y2",
    ))  # fmt: skip
    fig = go.Figure(traces)
    fig = apply_style(fig, title=None, xy_range=None, equal_aspect=False, height=height)
    fig.update_layout(
        xaxis=dict(domain=[0, 0.44], title_text="guidance weight w"),
        yaxis=dict(type="log", dtick=1, title_text="energy / floor"),
        xaxis2=dict(domain=[0.56, 1], anchor="y2", title_text="guidance weight w"),
        yaxis2=dict(anchor="x2", range=[0, 1.05], tickformat=".0%", title_text="share of c"),
        margin=dict(l=60, r=10, t=70, b=50),
        legend=KEY_LEGEND | dict(orientation="h", y=1.02, x=0, yanchor="bottom"),
        shapes=[
            dict(type="line", x0=w, x1=w, y0=0, y1=1, xref=ax, yref="paper",
                 line=dict(color="#999", dash="dot", width=1))
            for ax in ("x", "x2")
        ],
    )  # fmt: skip
    fig.add_hline(y=1.0, line=dict(color="#999", width=1), row=None, xref="x", yref="y")
    return fig
