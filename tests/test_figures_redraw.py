"""What keeps the slider-driven figures cheap to redraw in a browser (benchmarks/bench.py
--only redraw): filled arrow heads in one trace, no automargin passes, SVG points, and no Plotly
contour labels; each checked against the geometry it must still draw."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from scoreviz.figures.arrows import HEAD_MAX, HEAD_WIDTH, arrow_traces, head_xy
from scoreviz.figures.dae import dae_figure
from scoreviz.figures.fields import field_figures
from scoreviz.figures.forward import SVG_POINTS, forward_pair_figure, points_trace
from scoreviz.figures.style import PROJECTOR_MARGIN, fixed_margins, for_projector
from scoreviz.pipelines import (
    DaeSettings,
    ForwardSettings,
    dae_view,
    forward_view,
    score_field_view,
)
from scoreviz.problem import Problem

PROBLEM = Problem.builtin("eight_gaussians", "vp_linear")


def test_heads_are_triangles_at_the_tips_pointing_along_the_arrows():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(50, 2))
    end = start + rng.normal(size=(50, 2))
    x, y = head_xy(start, end, 0.2)
    pts = np.stack([x, y], 1).reshape(50, 4, 2)
    assert np.isnan(pts[:, 3]).all()  # the gap that separates one filled triangle from the next
    left, tip, right = pts[:, 0], pts[:, 1], pts[:, 2]
    np.testing.assert_allclose(tip, end)
    d = end - start
    size = np.linalg.norm(d, axis=1)
    h = np.minimum(0.2, HEAD_MAX * size)
    base = (left + right) / 2
    np.testing.assert_allclose(np.linalg.norm(tip - base, axis=1), h, rtol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(left - right, axis=1), HEAD_WIDTH * h, rtol=1e-9)
    u = d / size[:, None]
    np.testing.assert_allclose((tip - base) / h[:, None], u, atol=1e-9)  # along the arrow


def test_heads_skip_arrows_without_a_direction():
    start = np.zeros((3, 2))
    end = np.array([[1.0, 0.0], [0.0, 0.0], [np.nan, 1.0]])  # fine, zero length, non-finite
    x, y = head_xy(start, end, np.array([0.1, 0.1, 0.1]))
    assert len(x) == 4 and np.isfinite(x[:3]).all() and np.isfinite(y[:3]).all()


def test_arrow_traces_pair_shafts_with_filled_heads_in_one_legend_entry():
    shafts, heads = arrow_traces(np.zeros((2, 2)), np.eye(2), "#123456", 2.0, 0.1, "s", opacity=0.5)
    assert shafts.mode == heads.mode == "lines"
    assert heads.fill == "toself" and heads.fillcolor == "#123456"
    assert heads.showlegend is False and heads.legendgroup == "s" and shafts.name == "s"
    assert shafts.opacity == heads.opacity == 0.5


def _slider_figures():
    field, diff = field_figures(score_field_view(PROBLEM, 0.3))
    pair = forward_pair_figure(forward_view(PROBLEM, ForwardSettings(0.3)))
    dae = dae_figure(dae_view(PROBLEM, DaeSettings((0.1, 0.5), n=30)))
    return {"field": field, "pair": pair, "dae": dae}


@pytest.fixture(scope="module")
def slider_figures():
    return _slider_figures()


def test_slider_figures_draw_once(slider_figures):
    """No automargin (a second full draw when tick labels push a margin), no WebGL context
    (~200 ms each without a GPU), no per-point marker styling of arrow heads."""
    for name, fig in slider_figures.items():
        spec = json.loads(fig.to_json())
        axes = [v for k, v in spec["layout"].items() if k.startswith(("xaxis", "yaxis"))]
        assert axes and all(ax.get("automargin") is False for ax in axes), name
        assert not any(t["type"].endswith("gl") for t in spec["data"]), name
        assert not any(
            (t.get("marker") or {}).get("symbol") in ("arrow-wide", "triangle-up")
            for t in spec["data"]
        ), name
        assert "data" not in spec["layout"]["template"], name  # layout-only template


def test_projector_grows_fixed_margins_for_its_bigger_ticks(slider_figures):
    fig = slider_figures["pair"]
    out = for_projector(fig)
    assert out.layout.margin.l == fig.layout.margin.l + PROJECTOR_MARGIN
    assert out.layout.margin.b == fig.layout.margin.b + PROJECTOR_MARGIN
    plain = go.Figure(go.Scatter(x=[0], y=[0]), layout=dict(margin=dict(l=30, b=30)))
    assert for_projector(plain).layout.margin.l == 30  # automargin figures keep theirs
    assert fixed_margins(plain) is plain and plain.layout.xaxis.automargin is False


def test_points_are_svg_up_to_the_limit_and_webgl_beyond():
    assert points_trace(SVG_POINTS, x=[0], y=[0]).type == "scatter"
    assert points_trace(SVG_POINTS + 1, x=[0], y=[0]).type == "scattergl"


def test_a_frozen_figure_builds_its_dict_once_and_hands_out_fresh_containers(monkeypatch):
    """What st.plotly_chart calls on every rerun (`to_dict`: a deep copy that base64-encodes
    every array) runs once per shared figure; callers still get containers of their own."""
    from scoreviz.ui.cache import frozen

    fig = go.Figure(go.Scatter(x=np.arange(5.0), y=np.arange(5.0)), layout=dict(title="a"))
    expected = fig.to_dict()
    calls = []
    real = go.Figure.to_dict
    monkeypatch.setattr(go.Figure, "to_dict", lambda self: calls.append(1) or real(self))
    shared = frozen(fig)
    assert shared is fig and isinstance(shared, go.Figure)
    first, second = shared.to_dict(), shared.to_dict()
    assert first == second == expected and len(calls) == 1
    first["layout"]["title"]["text"] = "changed by a caller"
    first["data"].clear()
    assert shared.to_dict() == expected  # one caller's edits never reach the next
    assert frozen("not a figure") == "not a figure"
