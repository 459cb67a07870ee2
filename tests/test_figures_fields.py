"""Score-field figures draw exactly the numbers they claim: arrows, density, error, all finite."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from scoreviz import exact_score_fn, get_distribution, get_process
from scoreviz.figures.arrows import CORNERS
from scoreviz.figures.fields import (
    MASS_LEVELS,
    arrow_vectors,
    contour_crossings,
    mass_fraction,
    score_difference_figure,
    score_field_figure,
)
from scoreviz.figures.polygons import polygons_of
from scoreviz.forward import view_range
from scoreviz.grids import make_grid, score_field
from tests.apptest_utils import decode, tiny_result

DIST = get_distribution("eight_gaussians")
PROC = get_process("vp_linear")


def _exact_at(points: np.ndarray, t: float, dist=DIST, proc=PROC) -> np.ndarray:
    """Independent oracle: the mixture's own score at (alpha_t, sigma_t), float64."""
    tt = torch.tensor(t, dtype=torch.float64)
    x = torch.as_tensor(points, dtype=torch.float64)
    return dist.score(x, float(proc.alpha(tt)), float(proc.sigma(tt))).numpy()


def _sigma(t: float, proc=PROC) -> float:
    return float(proc.sigma(torch.tensor(t, dtype=torch.float64)))


def _fake_learned(x, t):
    """A 'network' that is wrong in a known way: 0.8 x exact + a constant push."""
    return 0.8 * exact_score_fn(DIST, PROC)(x, t) + torch.tensor([0.3, -0.1])


def _check_arrows(fig, name, expected_vectors, points, panel=1):
    tails, drawn = arrow_vectors(fig, name, panel)
    scale, cap = fig.layout.meta["arrow_scale"], fig.layout.meta["arrow_cap"]
    np.testing.assert_allclose(tails, points, atol=1e-3)
    want = scale * expected_vectors
    short = np.linalg.norm(want, axis=1) < 0.99 * cap
    assert short.mean() > 0.8  # most arrows are drawn at true length
    np.testing.assert_allclose(drawn[short], want[short], atol=2e-3, rtol=1e-3)
    # capped arrows keep the direction and have exactly the cap length
    long = ~short
    if long.any():
        np.testing.assert_allclose(np.linalg.norm(drawn[long], axis=1), cap, atol=2e-3)
        cos = (drawn[long] * want[long]).sum(1) / (
            np.linalg.norm(drawn[long], axis=1) * np.linalg.norm(want[long], axis=1)
        )
        assert (cos > 0.999).all()


def test_grid_is_row_major_with_y_as_row():
    g = make_grid(4, (-2.0, 2.0))
    pts = g.points.reshape(4, 4, 2)
    np.testing.assert_allclose(pts[1, 2], [g.xs[2], g.ys[1]])
    assert g.xs[0] > -2 and g.xs[-1] < 2  # cell centres: no arrow on the frame


@pytest.mark.parametrize("t", [0.05, 0.3, 0.9])
def test_exact_only_panel_draws_the_exact_score(t):
    xy = view_range(PROC, t)
    field = score_field(DIST, PROC, t, None, xy)
    fig = score_field_figure(field, xy, scaled=True)
    assert len(fig.data) == 1 and len(fig.layout.shapes) == 1  # heatmap, arrows: one panel
    pts = field.grid.points
    _check_arrows(fig, "exact score", _sigma(t) * _exact_at(pts, t), pts)


def test_learned_and_exact_panels_share_one_scale_and_show_their_own_fields():
    t = 0.2
    xy = view_range(PROC, t)
    field = score_field(DIST, PROC, t, _fake_learned, xy)
    fig = score_field_figure(field, xy, scaled=True)
    assert len(fig.data) == len(fig.layout.shapes) == 2  # two panels of heatmap + arrows
    pts, s = field.grid.points, _sigma(t)
    exact = _exact_at(pts, t)
    learned = 0.8 * exact + np.array([0.3, -0.1])
    _check_arrows(fig, "learned score", s * learned, pts)  # left panel: learned
    _check_arrows(fig, "exact score", s * exact, pts, panel=2)  # right panel: exact
    left, right = fig.layout.shapes
    assert left.fillcolor != right.fillcolor
    assert (left.xref, left.yref, right.xref, right.yref) == ("x", "y", "x2", "y2")


def test_raw_score_mode_draws_unscaled_scores():
    t = 0.5
    xy = view_range(PROC, t)
    field = score_field(DIST, PROC, t, None, xy)
    fig = score_field_figure(field, xy, scaled=False)
    _check_arrows(fig, "exact score", _exact_at(field.grid.points, t), field.grid.points)


def test_heatmap_is_the_exact_density_on_the_grid():
    t = 0.15
    xy = view_range(PROC, t)
    field = score_field(DIST, PROC, t, None, xy)
    fig = score_field_figure(field, xy)
    hm = fig.data[0]
    xx, yy = np.meshgrid(hm.x, hm.y)
    pts = torch.as_tensor(np.stack([xx.ravel(), yy.ravel()], 1), dtype=torch.float64)
    tt = torch.tensor(t, dtype=torch.float64)
    dens = torch.exp(DIST.log_prob(pts, float(PROC.alpha(tt)), float(PROC.sigma(tt))))
    np.testing.assert_allclose(
        np.asarray(hm.z), dens.numpy().reshape(len(hm.y), len(hm.x)), rtol=1e-4, atol=1e-7
    )


def test_difference_and_error_heatmap():
    t = 0.3
    xy = view_range(PROC, t)
    field = score_field(DIST, PROC, t, _fake_learned, xy)
    fig = score_difference_figure(field, xy)
    s = _sigma(t)
    pts = field.grid.points
    exact = _exact_at(pts, t)
    diff = -0.2 * exact + np.array([0.3, -0.1])
    _check_arrows(fig, "learned − exact", s * diff, pts)
    err = fig.data[1]
    xx, yy = np.meshgrid(err.x, err.y)
    e_pts = np.stack([xx.ravel(), yy.ravel()], 1)
    ex = _exact_at(e_pts, t)
    want = s**2 * ((-0.2 * ex + np.array([0.3, -0.1])) ** 2).sum(1)
    np.testing.assert_allclose(np.asarray(err.z).ravel(), want, rtol=2e-3, atol=1e-5)
    assert field.mean_error == pytest.approx(want.mean(), rel=2e-3)
    dens = np.asarray(fig.data[0].z, dtype=np.float64).ravel()  # exact p_t, same grid
    assert field.weighted_error == pytest.approx((dens * want).sum() / dens.sum(), rel=2e-3)
    assert f"{field.mean_error:.3g}" in fig.layout.annotations[1].text


def _numbers(obj):
    """Every number in a piece of figure JSON (lists, nested dicts, base64 typed arrays)."""
    if isinstance(obj, dict):
        if "bdata" in obj:
            yield from decode(obj).ravel().tolist()
            return
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def _assert_drawn_numbers_finite(spec: dict) -> None:
    """All numbers finite, in the traces and in the arrows' paths (layout shapes)."""
    for shape in spec["layout"].get("shapes", []):
        assert not set(shape["path"].lower()) & set("nif"), shape["name"]  # no nan, inf
    for trace in spec["data"]:
        trace = dict(trace)
        for axis in ("x", "y"):
            if axis in trace:
                assert np.isfinite(decode(trace.pop(axis))).all(), trace.get("name")
        nums = list(_numbers(trace))
        assert all(math.isfinite(v) for v in nums), trace.get("type")


@pytest.mark.parametrize("proc_key", ["vp_linear", "vp_cosine", "ve", "sub_vp"])
def test_no_non_finite_numbers_are_drawn_at_the_extremes(proc_key):
    proc = get_process(proc_key)

    def broken(x, t):  # a diverged network: NaN, +inf, huge values
        out = exact_score_fn(DIST, proc)(x, t) * 1e12
        out[::7] = float("nan")
        out[1::7] = float("inf")
        return out

    for t in (proc.t_min, 1.0):
        xy = view_range(proc, t)
        for scaled in (True, False):
            field = score_field(DIST, proc, t, broken, xy)
            for fig in (
                score_field_figure(field, xy, scaled),
                score_difference_figure(field, xy, scaled),
            ):
                spec = json.loads(fig.to_json())
                _assert_drawn_numbers_finite(spec)
                assert math.isfinite(spec["layout"]["meta"]["arrow_scale"])


def test_arrows_never_longer_than_the_cap_at_tiny_sigma():
    proc = get_process("sub_vp")  # sigma(t_min) ~ 1e-4: raw scores ~ 1e4
    t = proc.t_min
    xy = view_range(proc, t)
    field = score_field(DIST, proc, t, None, xy)
    fig = score_field_figure(field, xy, scaled=False)
    _, drawn = arrow_vectors(fig, "exact score")
    assert np.linalg.norm(drawn, axis=1).max() <= fig.layout.meta["arrow_cap"] + 1e-3


def test_figure_json_stays_small():
    t = 0.2
    xy = view_range(PROC, t)
    field = score_field(DIST, PROC, t, _fake_learned, xy)
    sizes = [
        len(f.to_json())
        for f in (score_field_figure(field, xy), score_difference_figure(field, xy))
    ]
    # one outline: 9 points per arrow and 1 back, float32 (25 x 25 arrows per panel here; the
    # page's default 15 x 15 field is ~85 kB)
    assert max(sizes) < 200_000, sizes


@pytest.mark.slow
def test_learned_panel_shows_a_trained_network():
    """With a real network, the learned arrows are σ·s_θ at the grid points (its redraw time is
    measured by benchmarks/bench.py, not asserted here)."""
    res = tiny_result()
    t = 0.25
    xy = view_range(PROC, t)
    field = score_field(DIST, PROC, t, res.score_fn(), xy)
    fig = score_field_figure(field, xy)
    pts = field.grid.points
    net = res.score_fn()(torch.as_tensor(pts), torch.full((len(pts),), t)).numpy()
    _check_arrows(fig, "learned score", _sigma(t) * net, pts)


# ----------------------------------------------------------------------------- issue 10, part 3
def test_raw_scores_share_one_arrow_scale_across_t_and_grow_as_t_shrinks():
    """Raw mode: the same data-units-per-score-unit at every t (set at t = 1), so the raw score's
    1/sigma growth shows as longer arrows; sigma*score mode rescales per t."""
    from scoreviz.figures.fields import field_figures
    from scoreviz.pipelines import score_field_view
    from scoreviz.problem import Problem

    problem = Problem.builtin("eight_gaussians", "vp_linear")
    figs = {t: field_figures(score_field_view(problem, t), scaled=False)[0] for t in (0.1, 1.0)}
    scales = {t: f.layout.meta["arrow_scale"] for t, f in figs.items()}
    assert scales[0.1] == scales[1.0] > 0
    assert all(f.layout.meta["fixed_scale"] for f in figs.values())
    lengths = {
        t: np.linalg.norm(arrow_vectors(f, "exact score")[1], axis=1) for t, f in figs.items()
    }
    assert np.median(lengths[0.1]) > 2 * np.median(lengths[1.0])
    scaled = [field_figures(score_field_view(problem, t))[0] for t in (0.1, 1.0)]
    assert scaled[0].layout.meta["arrow_scale"] != scaled[1].layout.meta["arrow_scale"]
    # the default grid is 15 x 15 (fewer, thicker arrows), and the density is adjustable
    assert len(arrow_vectors(scaled[0], "exact score")[0]) == 15 * 15
    nine = field_figures(score_field_view(problem, 0.5, 9))[0]
    assert len(arrow_vectors(nine, "exact score")[0]) == 81


def test_error_colours_end_at_the_p_t_weighted_quantile():
    from scoreviz.figures.fields import ERROR_QUANTILE

    t = 0.3
    xy = view_range(PROC, t)

    def corners_wrong(x, tt):  # a little off where the data is, very wrong in the corners
        far = (x.abs().max(1).values > 2.4)[:, None]
        return exact_score_fn(DIST, PROC)(x, tt) + 0.3 + 50 * far

    field = score_field(DIST, PROC, t, corners_wrong, xy)
    fig = score_difference_figure(field, xy)
    err = np.asarray(fig.data[1].z, dtype=np.float64).ravel()
    dens = np.asarray(field.density, dtype=np.float64).ravel()
    order = np.argsort(err)  # independent weighted quantile
    cum = np.cumsum(dens[order]) / dens.sum()
    q = err[order][np.searchsorted(cum, ERROR_QUANTILE)]
    zmax = fig.data[1].zmax
    assert zmax is not None and zmax <= q + 1e-9
    assert zmax < 0.01 * err.max()  # the empty corners no longer set the colour scale
    assert fig.layout.meta["error_zmax"] == zmax
    contour, labels = fig.data[2], fig.data[3]
    assert (contour.contours.start, contour.contours.end) == MASS_LEVELS
    assert set(labels.text) == {"50%", "90%"} and labels.mode == "text"
    # every label sits on its contour: the mass fraction there is the label's level
    eg, mass = field.err_grid, mass_fraction(field.density)
    for x, y, text in zip(labels.x, labels.y, labels.text, strict=True):
        level = float(text.rstrip("%")) / 100
        i, j = np.searchsorted(eg.ys, y) - 1, np.searchsorted(eg.xs, x) - 1
        near = mass[max(i, 0) : i + 2, max(j, 0) : j + 2]
        assert near.min() - 1e-3 <= level <= near.max() + 1e-3, (text, near)


def test_contour_crossings_lie_on_the_level_set():
    xs = ys = np.linspace(-2, 2, 41)
    z = xs[None, :] ** 2 + ys[:, None] ** 2  # circles; rows = y
    pts = contour_crossings(xs, ys, z, 1.0)
    assert len(pts) > 40
    np.testing.assert_allclose(np.linalg.norm(pts, axis=1), 1.0, atol=0.01)
    assert len(contour_crossings(xs, ys, z, 100.0)) == 0  # no crossing: no points


def test_mass_fraction_contours_enclose_the_stated_mass():
    from scoreviz.figures.fields import mass_fraction

    d = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(mass_fraction(d), [[1.0, 0.9], [0.7, 0.4]])


def test_overlay_draws_learned_under_exact_in_one_panel():
    t = 0.2
    xy = view_range(PROC, t)
    field = score_field(DIST, PROC, t, _fake_learned, xy)
    fig = score_field_figure(field, xy, overlay=True)
    assert {tr.xaxis for tr in fig.data} == {"x"}  # one panel
    arrows = fig.layout.shapes
    assert [a.name for a in arrows] == ["learned score", "exact score"]  # exact last, on top
    assert arrows[0].opacity < 1 and arrows[1].opacity == 1
    learned, exact = (polygons_of(a.path, CORNERS) for a in arrows)
    shaft = [np.linalg.norm(a[:, 0] - a[:, 6], axis=1) for a in (learned, exact)]
    # a thick shaft (5 px) under a thin one (1.5 px), to within the 1e-3 rounding of corners
    np.testing.assert_allclose(shaft[0] / shaft[1], 5 / 1.5, rtol=0.2)
    pts, s = field.grid.points, _sigma(t)
    _check_arrows(fig, "learned score", s * (0.8 * _exact_at(pts, t) + np.array([0.3, -0.1])), pts)
    _check_arrows(fig, "exact score", s * _exact_at(pts, t), pts)
