"""What keeps the slider-driven figures cheap to redraw in a browser (benchmarks/bench.py
--only redraw): filled arrow heads in one trace, no automargin passes, SVG points, and no Plotly
contour labels; each checked against the geometry it must still draw."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from scoreviz.figures.arrows import (
    CORNERS,
    HEAD_MAX,
    HEAD_WIDTH,
    arrow_polygons,
    arrow_shapes,
    polygon_vectors,
)
from scoreviz.figures.dae import dae_figure
from scoreviz.figures.dots import (
    EDGE,
    RIMMED_SIDES,
    SIDES,
    SVG_POINTS,
    cloud_image,
    cloud_traces,
    dot_centres,
    image_points,
    is_cloud_image,
)
from scoreviz.figures.fields import field_figures
from scoreviz.figures.forward import forward_pair_figure, schedule_figure
from scoreviz.figures.polygons import path_of, polygons_of
from scoreviz.figures.style import (
    PROJECTOR_MARGIN,
    fixed_margins,
    for_projector,
    place_shapes,
    square_panels,
)
from scoreviz.forward import schedule_table
from scoreviz.pipelines import (
    DaeSettings,
    ForwardSettings,
    dae_view,
    forward_view,
    score_field_view,
)
from scoreviz.problem import Problem

PROBLEM = Problem.builtin("eight_gaussians", "vp_linear")


def test_arrows_are_filled_outlines_with_the_head_at_the_tip():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(50, 2))
    end = start + rng.normal(size=(50, 2))
    pts = arrow_polygons(start, end, 0.2, 0.03)
    assert pts.shape == (50, CORNERS, 2)
    tail_l, end_l, head_l, tip, head_r, end_r, tail_r = (pts[:, i] for i in range(CORNERS))
    np.testing.assert_allclose(tip, end)
    np.testing.assert_allclose((tail_l + tail_r) / 2, start, atol=1e-12)
    d = end - start
    size = np.linalg.norm(d, axis=1)
    u = d / size[:, None]
    h = np.minimum(0.2, HEAD_MAX * size)
    base = (head_l + head_r) / 2
    np.testing.assert_allclose(np.linalg.norm(tip - base, axis=1), h, rtol=1e-9)
    np.testing.assert_allclose((tip - base) / h[:, None], u, atol=1e-9)  # along the arrow
    np.testing.assert_allclose(np.linalg.norm(head_l - head_r, axis=1), HEAD_WIDTH * h, rtol=1e-9)
    # the shaft: 0.03 wide on every arrow, straight from tail to head
    np.testing.assert_allclose(np.linalg.norm(tail_l - tail_r, axis=1), 0.03, rtol=1e-9)
    np.testing.assert_allclose(end_l - tail_l, end_r - tail_r, atol=1e-12)
    np.testing.assert_allclose((end_l + end_r) / 2, base, atol=1e-12)


def test_non_finite_arrows_are_left_out_and_zero_ones_are_points():
    start = np.zeros((3, 2))
    end = np.array([[1.0, 0.0], [0.0, 0.0], [np.nan, 1.0]])  # fine, zero length, non-finite
    pts = arrow_polygons(start, end, np.array([0.1, 0.1, 0.1]), 0.01)
    assert pts.shape == (2, CORNERS, 2) and np.isfinite(pts).all()
    assert (pts[1] == 0).all()  # every corner of the zero arrow on its tail: nothing drawn


def test_a_path_holds_every_polygon_as_its_own_closed_subpath():
    rng = np.random.default_rng(1)
    polys = arrow_polygons(rng.normal(size=(30, 2)) * 3, rng.normal(size=(30, 2)) * 3, 0.3, 0.1)
    path = path_of(polys)
    assert path.count("M") == path.count("Z") == 30  # nothing drawn between the polygons
    np.testing.assert_allclose(polygons_of(path, CORNERS), polys, atol=5.1e-4)  # 1e-3 rounding
    assert path_of(polys[:0]) == ""


def test_arrow_shapes_are_one_filled_shape_read_back_by_polygon_vectors():
    rng = np.random.default_rng(2)
    start, end = rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
    (shape,) = arrow_shapes(start, end, "#123456", 0.02, 0.1, "s", opacity=0.5)
    assert shape["type"] == "path" and shape["fillcolor"] == "#123456"
    assert shape["line"]["width"] == 0 and shape["layer"] == "above"
    assert shape["fillrule"] == "nonzero"  # evenodd would cut holes where arrows overlap
    winding = _winding(polygons_of(shape["path"], CORNERS))  # which needs one winding for all
    assert (winding == winding[0]).all()
    assert shape["name"] == "s" and shape["opacity"] == 0.5 and shape["showlegend"] is False
    tails, vec = polygon_vectors(shape["path"])
    np.testing.assert_allclose(tails, start, atol=6e-4)  # sent rounded to 1e-3
    np.testing.assert_allclose(tails + vec, end, atol=6e-4)


def _winding(polys: np.ndarray) -> np.ndarray:
    """The sign of each polygon's signed area (N, K, 2): +1 counterclockwise."""
    x, y = polys[..., 0], polys[..., 1]
    return np.sign((x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(1))


def test_clouds_are_dots_of_the_asked_size_up_to_the_limit_and_webgl_beyond():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(100, 2))
    pts[5] = np.nan
    (dots,) = cloud_traces(pts, 0.01, 6, "#ff0000", "p", opacity=0.8, edge=1)
    finite = pts[np.isfinite(pts).all(1)]
    np.testing.assert_allclose(dot_centres(dots["path"], RIMMED_SIDES), finite, atol=6e-4)
    radius = np.linalg.norm(polygons_of(dots["path"], RIMMED_SIDES) - finite[:, None], axis=2)
    np.testing.assert_allclose(radius, 0.03, atol=1e-3)  # 6 px across at 0.01 per px
    # the rim: every dot's outline stroked on top of the shape's fill, so it shows where dots
    # overlap; the fill is their union (nonzero, one winding for all)
    assert dots["line"] == dict(color=EDGE, width=1) and dots["fillrule"] == "nonzero"
    winding = _winding(polygons_of(dots["path"], RIMMED_SIDES))
    assert (winding == winding[0]).all()
    assert dots["showlegend"] is True and dots["opacity"] == 0.8 and dots["name"] == "p"
    (plain,) = cloud_traces(finite, 0.01, 4, "#00ff00", "q")  # no rim: small hexagons
    np.testing.assert_allclose(dot_centres(plain["path"]), finite, atol=6e-4)
    assert polygons_of(plain["path"], SIDES).shape == (len(finite), SIDES, 2)
    (gl,) = cloud_traces(rng.normal(size=(SVG_POINTS + 1, 2)), 0.01, 3, "#000", "many")
    assert gl.type == "scattergl" and gl.marker.size == 3


def test_cloud_images_are_svg_circles_of_the_asked_size_over_the_clouds_box():
    import re
    from urllib.parse import unquote

    rng = np.random.default_rng(5)
    pts = rng.normal(size=(50, 2))
    pts[7] = np.inf
    finite = pts[np.isfinite(pts).all(1)]
    image, legend = cloud_image(pts, 0.01, 6, "#ff0000", "p", opacity=0.8, edge=1)
    np.testing.assert_allclose(image_points(image), finite, atol=6e-4)  # sent rounded to 1e-3
    svg = unquote(image["source"].removeprefix("data:image/svg+xml,"))
    assert "#" not in image["source"]  # escaped: a "#" would end a data: URI
    assert 'r="0.03"' in svg and 'stroke-width="0.01"' in svg  # 6 px across, 1 px rim
    assert svg.count("<circle") == len(finite) and 'opacity="0.8"' in svg
    # the image spans the cloud plus a dot, in data units; the SVG's viewBox is that box, y up
    lo, hi = finite.min(0) - 0.04, finite.max(0) + 0.04
    np.testing.assert_allclose([image["x"], image["y"]], [lo[0], hi[1]], atol=6e-4)
    np.testing.assert_allclose([image["sizex"], image["sizey"]], hi - lo, atol=1.2e-3)
    box = [float(v) for v in re.search(r'viewBox="([^"]+)"', svg).group(1).split()]
    np.testing.assert_allclose(box, [lo[0], -hi[1], *(hi - lo)], atol=1.2e-3)
    assert image["sizing"] == "stretch" and 'preserveAspectRatio="none"' in svg
    assert is_cloud_image(image) and legend.x == (None,) and legend.marker.line.width == 1
    plain, *rest = cloud_image(finite, 0.01, 4, "#00ff00", "q", showlegend=False)
    assert rest == [] and "<circle" not in plain["source"]  # round-capped zero-length strokes
    assert 'stroke-width="0.04"' in unquote(plain["source"]) and "h0" in plain["source"]
    np.testing.assert_allclose(image_points(plain), finite, atol=6e-4)
    assert cloud_image(np.full((3, 2), np.nan), 0.01, 4, "#000", "none", showlegend=False) == []


def test_shapes_go_on_their_panels_axes_last():
    rng = np.random.default_rng(4)
    a = arrow_shapes(rng.normal(size=(3, 2)), rng.normal(size=(3, 2)), "#111", 0.01, 0.1, "a")
    b = cloud_traces(rng.normal(size=(4, 2)), 0.01, 4, "#222", "b")
    panels = [[go.Scatter(x=[0], y=[0])] + a, b]
    fig = square_panels(panels, ["one", "two"], [(-1, 1)] * 2, 0.1)
    assert not fig.layout.shapes  # not yet: every later layout update would re-validate them
    place_shapes(fig, panels)
    assert [(s.name, s.xref, s.yref) for s in fig.layout.shapes] == [
        ("a", "x", "y"),
        ("b", "x2", "y2"),
    ]
    assert len(fig.data) == 1 and fig.data[0].xaxis == "x"


def _slider_figures():
    field, diff = field_figures(score_field_view(PROBLEM, 0.3))
    pair = forward_pair_figure(forward_view(PROBLEM, ForwardSettings(0.3)))
    dae = dae_figure(dae_view(PROBLEM, DaeSettings((0.1, 0.5), n=30)))
    schedule = schedule_figure(schedule_table(PROBLEM.process), 0.3)  # beside the pair
    return {"field": field, "pair": pair, "dae": dae, "schedule": schedule}


@pytest.fixture(scope="module")
def slider_figures():
    return _slider_figures()


def test_slider_figures_draw_once(slider_figures):
    """No automargin (a second full draw when tick labels push a margin), no WebGL context
    (~200 ms each without a GPU), no markers (one SVG element per point, styled one by one),
    and no trace broken into pieces by NaN (Plotly appends an SVG path per piece, even when
    it only fills)."""
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
        for tr in fig.data:  # no trace in pieces (NaN breaks), no markers, no fills
            stand_in = tuple(np.asarray(tr.x, dtype=object)) == (None,)  # a legend entry only
            if tr.type == "scatter" and stand_in:
                assert tr.y == (None,) and tr.hoverinfo == "skip", (name, tr.name)
            elif tr.type == "scatter":
                assert np.isfinite(np.asarray(tr.x, dtype=float)).all(), (name, tr.name)
                assert not tr.fill, (name, tr.name)
                if "markers" in (tr.mode or ""):  # a marker or two, not a cloud
                    assert len(tr.x) <= 2, (name, tr.name)
        # what they drew as pieces and markers: one path shape per arrow field and point cloud,
        # or one image per point cloud and density (the forward pair: no shape at all)
        assert all(s.type == "path" for s in fig.layout.shapes), name
        assert bool(fig.layout.shapes) == (name in ("field", "dae")), name
        if name == "pair":
            clouds = [im for im in fig.layout.images if is_cloud_image(im.to_plotly_json())]
            assert len(clouds) == 3 and len(fig.layout.images) == 5


def test_projector_grows_fixed_margins_for_its_bigger_ticks(slider_figures):
    fig = slider_figures["pair"]
    out = for_projector(fig)
    assert out.layout.margin.l == fig.layout.margin.l + PROJECTOR_MARGIN
    assert out.layout.margin.b == fig.layout.margin.b + PROJECTOR_MARGIN
    plain = go.Figure(go.Scatter(x=[0], y=[0]), layout=dict(margin=dict(l=30, b=30)))
    assert for_projector(plain).layout.margin.l == 30  # automargin figures keep theirs
    assert fixed_margins(plain) is plain and plain.layout.xaxis.automargin is False


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


def _head_start_app():
    import time

    import plotly.graph_objects as go
    import streamlit as st

    from scoreviz.ui import charts

    charts.draw_figure(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), key="main")
    st.session_state["after_main"] = time.monotonic()
    st.markdown("below the main chart")
    charts.draw_figure(go.Figure(go.Scatter(x=[1], y=[1])), main=False, key="below")
    st.session_state["after_below"] = time.monotonic()


def test_what_follows_the_main_chart_comes_after_a_head_start(monkeypatch):
    """The main chart goes out alone: the rest of the run (export menu, metrics, the chart
    under it) waits until it has had charts.HEAD_START in the browser, once per run."""
    import time
    import types

    from streamlit.testing.v1 import AppTest

    from scoreviz.ui import charts

    sleeps = []
    shim = types.SimpleNamespace(monotonic=time.monotonic,
                                 sleep=lambda s: sleeps.append(s) or time.sleep(s))  # fmt: skip
    monkeypatch.setattr(charts, "time", shim)
    at = AppTest.from_function(_head_start_app, default_timeout=60).run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    waited = at.session_state["after_main"] - at.session_state["_main_chart_sent_at"]
    assert waited >= charts.HEAD_START
    assert len(sleeps) == 1 and 0 < sleeps[0] <= charts.HEAD_START  # the chart below: no wait
