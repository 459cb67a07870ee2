"""The forward-process core (prior check, trajectories, view range) and its figures' data."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from scoreviz import GaussianMixture, get_distribution, get_process, pipelines
from scoreviz.figures.dots import image_points, is_cloud_image
from scoreviz.figures.fields import SOFT_BLUES
from scoreviz.figures.forward import (
    data_figure,
    forward_animation,
    samples_density_figure,
    schedule_figure,
)
from scoreviz.figures.raster import colorize, image_rgb
from scoreviz.figures.style import PALETTE
from scoreviz.figures.training import loss_curve_figure, smooth
from scoreviz.forward import (
    KL_THRESHOLD,
    forward_trajectory,
    prior_mismatch,
    schedule_at,
    schedule_table,
    view_range,
)
from scoreviz.grids import log_density_grid, make_grid
from scoreviz.problem import Problem

DIST = get_distribution("eight_gaussians")


def assert_density_image(image, xs, ys, oracle):
    """`image` (a layout image) shows `oracle` (G, G), rows = y, on the grid xs, ys: one pixel
    per grid point, centred on it, coloured as Plotly colours a heatmap of it."""
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    assert (image.xanchor, image.yanchor, image.sizing) == ("left", "top", "stretch")
    np.testing.assert_allclose([image.x, image.y], [xs[0] - dx / 2, ys[-1] + dy / 2], rtol=1e-5)
    np.testing.assert_allclose([image.sizex, image.sizey], [len(xs) * dx, len(ys) * dy], rtol=1e-5)
    rgb = image_rgb(image.to_plotly_json()).astype(int)
    assert rgb.shape == (*oracle.shape, 3)
    assert np.abs(rgb - colorize(oracle, SOFT_BLUES).astype(int)).max() <= 1
    # the darkest pixel is the density's peak (the colorscale darkens with the density)
    peak = np.unravel_index(np.argmax(oracle), oracle.shape)
    assert rgb.sum(-1)[peak] == rgb.sum(-1).min()


# ----------------------------------------------------------------------------- prior check
@pytest.mark.parametrize("name", ["eight_gaussians", "two_moons", "skewed"])
@pytest.mark.parametrize("proc", ["vp_linear", "vp_cosine", "ve", "sub_vp"])
def test_default_processes_reach_the_prior(name, proc):
    pm = prior_mismatch(get_distribution(name), get_process(proc))
    assert not pm.mismatched and pm.kl < KL_THRESHOLD / 5


@pytest.mark.parametrize("name", ["eight_gaussians", "two_moons"])
def test_ve_with_small_sigma_max_is_flagged(name):
    pm = prior_mismatch(get_distribution(name), get_process("ve", sigma_max=1.0))
    assert pm.mismatched
    assert pm.alpha_1 == pytest.approx(1.0) and pm.sigma_1 == pytest.approx(1.0)
    assert pm.kl > 0.2


def test_short_vp_schedule_reports_alpha_1():
    proc = get_process("vp_linear", beta_max=2.0)
    pm = prior_mismatch(DIST, proc)
    want = math.exp(-0.5 * (0.1 + 0.5 * (2.0 - 0.1)))
    assert pm.alpha_1 == pytest.approx(want, rel=1e-6)
    assert pm.mismatched


@pytest.mark.parametrize("s", [0.5, 1.0, 2.0])
def test_kl_matches_closed_form_for_one_gaussian(s):
    """p_1 = N(0, (s^2 + sigma^2) I) vs prior N(0, sigma^2 I): KL = r - 1 - log r in 2D."""
    dist = GaussianMixture(torch.zeros(1, 2), torch.tensor([s]), torch.ones(1))
    proc = get_process("ve", sigma_max=1.5)
    pm = prior_mismatch(dist, proc, n=20_000)
    r = (s**2 + 1.5**2) / 1.5**2
    assert pm.kl == pytest.approx(r - 1 - math.log(r), abs=4 * pm.kl_stderr + 1e-3)


# ----------------------------------------------------------------------------- trajectories
def test_forward_trajectory_moves_each_particle_along_its_own_eps():
    proc = get_process("vp_linear")  # sigma(0) = 0: frame 0 is the clean data
    times = np.array([0.0, 0.2, 0.6, 1.0])
    traj = forward_trajectory(DIST, proc, times, n=300, seed=3)
    assert traj.shape == (4, 300, 2) and traj.dtype == np.float32
    x0 = traj[0].astype(np.float64)
    eps = []
    for k in (1, 2, 3):
        s = schedule_at(proc, times[k])
        eps.append((traj[k] - s["alpha"] * x0) / s["sigma"])
    np.testing.assert_allclose(eps[0], eps[1], atol=1e-4)
    np.testing.assert_allclose(eps[0], eps[2], atol=1e-4)
    assert abs(eps[0].std() - 1) < 0.1


def test_view_range_is_fixed_for_vp_and_grows_for_ve():
    vp, ve = get_process("vp_linear"), get_process("ve")
    assert view_range(vp, 0.01) == view_range(vp, 1.0) == (-3.0, 3.0)
    assert view_range(ve, 1.0)[1] > 25 and view_range(ve, 0.0) == (-3.0, 3.0)


# ----------------------------------------------------------------------------- figures
def test_samples_figure_draws_exact_density_and_the_given_points():
    proc = get_process("vp_linear")
    t = 0.3
    s = schedule_at(proc, t)
    grid = make_grid(40, view_range(proc, t))
    dens = np.exp(log_density_grid(DIST, proc, t, grid))
    traj = forward_trajectory(DIST, proc, [0.0, t], n=200)
    fig = samples_density_figure(
        traj[0], traj[1], grid, dens, t, s["alpha"], s["sigma"], view_range(proc, t)
    )
    xx, yy = np.meshgrid(grid.xs, grid.ys)
    pts = torch.as_tensor(np.stack([xx.ravel(), yy.ravel()], 1), dtype=torch.float64)
    oracle = torch.exp(DIST.log_prob(pts, s["alpha"], s["sigma"])).numpy().reshape(40, 40)
    image, clean, noisy = fig.layout.images  # drawn in this order: density, x_0, x_t on top
    assert image.name == "exact p_t" and not is_cloud_image(image.to_plotly_json())
    assert_density_image(image, grid.xs, grid.ys, oracle)
    assert noisy.name == "noised samples x_t" and "stroke-width" in noisy.source  # dark rims
    np.testing.assert_allclose(image_points(noisy.to_plotly_json()), traj[1], atol=6e-4)
    np.testing.assert_allclose(image_points(clean.to_plotly_json()), traj[0], atol=6e-4)
    assert all(tr.x == (None,) for tr in fig.data)  # only the legend's stand-ins are traces
    assert [tr.name for tr in fig.data] == ["clean samples x₀", "noised samples x_t"]
    assert fig.layout.legend.itemclick is False  # a key: clicking could not hide an image
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_data_figure_draws_exact_p0_and_the_samples():
    grid = make_grid(30, (-3.0, 3.0))
    dens = np.exp(log_density_grid(DIST, get_process("vp_linear"), 0.0, grid))
    x0 = DIST.sample(100, generator=torch.Generator().manual_seed(0)).numpy()
    fig = data_figure(x0, grid, dens, (-3.0, 3.0))
    xx, yy = np.meshgrid(grid.xs, grid.ys)
    pts = torch.as_tensor(np.stack([xx.ravel(), yy.ravel()], 1), dtype=torch.float64)
    oracle = torch.exp(DIST.log_prob(pts)).numpy().reshape(30, 30)  # alpha = 1, sigma = 0
    image, dots = fig.layout.images
    assert_density_image(image, grid.xs, grid.ys, oracle)
    np.testing.assert_allclose(image_points(dots.to_plotly_json()), x0, atol=6e-4)
    assert PALETTE["data"].replace("#", "%23") in dots.source
    assert (dots.xref, dots.yref) == ("x", "y") and not fig.layout.shapes


@pytest.mark.parametrize("proc_key", ["vp_linear", "ve"])
def test_schedule_figure_marks_the_current_t(proc_key):
    proc = get_process(proc_key)
    t = 0.37
    fig = schedule_figure(schedule_table(proc), t)
    now = schedule_at(proc, t)
    markers = [tr for tr in fig.data if tr.mode == "markers"]
    assert [tr.x[0] for tr in markers] == [t, t, t]
    got = [tr.y[0] for tr in markers]
    assert got == pytest.approx([now["alpha"], now["sigma"], now["snr"]], rel=1e-3)
    assert fig.layout.yaxis2.type == "log"


@pytest.mark.parametrize("proc_key", ["vp_linear", "ve"])
def test_forward_animation_frames_in_t_order(proc_key):
    proc = get_process(proc_key)
    times = np.linspace(0, 1, 11)
    traj = forward_trajectory(DIST, proc, times, n=150)
    ranges = np.array([view_range(proc, t) for t in times])
    fig = forward_animation(traj, times, ranges)
    assert len(fig.frames) == 11
    frame_t = [float(f.name) for f in fig.frames]
    assert frame_t == sorted(frame_t) and frame_t[0] == 0 and frame_t[-1] == 1
    for k in (0, 5, 10):
        np.testing.assert_allclose(fig.frames[k].data[0].x, traj[k][:, 0], atol=1e-3)
    steps = fig.layout.sliders[0].steps
    assert [s.args[0][0] for s in steps] == [f.name for f in fig.frames]
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert labels == ["Play", "Pause"]
    moving = fig.frames[-1].layout.xaxis.range
    if proc_key == "ve":  # axes follow the growing spread
        assert moving[1] > 25
    else:
        assert moving is None
    assert len(fig.to_json()) < 150_000


def test_loss_curve_figure_data_and_floor():
    hist = pd.DataFrame({"step": [1, 2, 3, 4], "loss": [2.0, 1.0, float("nan"), 0.5]})
    fig = loss_curve_figure(hist, total_steps=10, floor=0.3)
    assert list(fig.data[0].x) == [1, 2, 4] and list(fig.data[0].y) == [2.0, 1.0, 0.5]
    np.testing.assert_allclose(fig.data[1].y, smooth(np.array([2.0, 1.0, 0.5])), rtol=1e-6)
    assert list(fig.data[2].y) == [0.3, 0.3]  # the floor, drawn across the whole x range
    assert fig.layout.yaxis.type == "log" and list(fig.layout.xaxis.range) == [0, 10]
    empty = loss_curve_figure(pd.DataFrame({"step": [], "loss": []}))
    json.loads(empty.to_json())


def test_smooth_is_bias_corrected():
    np.testing.assert_allclose(smooth(np.ones(5)), np.ones(5))


def test_forward_animation_frames_carry_their_own_title():
    """Issue 10: the title follows the slider: each frame's layout has its t and sigma_t, and
    the slider and Play redraw (without redraw Plotly skips frame layouts)."""
    proc = get_process("vp_linear")
    times = np.linspace(0, 1, 6)
    traj = forward_trajectory(DIST, proc, times, n=50)
    ranges = np.array([view_range(proc, t) for t in times])
    sigmas = np.array([schedule_at(proc, t)["sigma"] for t in times])
    fig = forward_animation(traj, times, ranges, sigmas=sigmas)
    titles = [f.layout.title.text for f in fig.frames]
    assert len(set(titles)) == len(times)
    for t, s, title in zip(times, sigmas, titles, strict=True):
        assert f"t = {t:.2f}" in title and f"σ_t = {s:.3g}" in title
    assert fig.layout.title.text == titles[0]
    steps = fig.layout.sliders[0].steps
    assert all(step.args[1]["frame"]["redraw"] for step in steps)
    assert fig.layout.updatemenus[0].buttons[0].args[1]["frame"]["redraw"]


def test_forward_pair_figure_draws_data_and_noised_in_two_panels():
    from scoreviz.figures.forward import forward_pair_figure
    from scoreviz.pipelines import ForwardSettings, forward_view
    from scoreviz.problem import Problem

    view = forward_view(Problem.builtin("eight_gaussians", "vp_linear"), ForwardSettings(0.3))
    fig = forward_pair_figure(view)
    images = {(im.name, im.xref): im for im in fig.layout.images}
    density = {"x": images["exact p₀", "x"], "x2": images["exact p_t", "x2"]}
    assert (density["x"].yref, density["x2"].yref) == ("y", "y2")
    for image, panel in ((density["x"], view.data), (density["x2"], view.noisy)):
        assert_density_image(image, panel.grid.xs, panel.grid.ys, panel.density)
    dots = {key: image_points(im.to_plotly_json()) for key, im in images.items()}
    np.testing.assert_allclose(dots["noised samples x_t", "x2"], view.xt, atol=6e-4)
    np.testing.assert_allclose(dots["clean samples x₀", "x2"], view.x0, atol=6e-4)
    np.testing.assert_allclose(dots["samples x₀ ~ p₀", "x"], view.x0, atol=6e-4)
    assert fig.layout.yaxis2.scaleanchor == "x2" and fig.layout.height <= 470
    assert f"t = {view.t:.3g}" in fig.layout.annotations[1].text


# ----------------------------------------------------------------------------- sized for the data
def test_view_box_fits_wide_data_and_keeps_the_prior_square():
    """Issue 20: the word sat in a square +-3 panel, using a sixth of its height."""
    from scoreviz.forward import FIT_MAX_ASPECT, view_box

    word, vp = get_distribution("word"), get_process("vp_linear")
    (x0, x1), (y0, y1) = view_box(word, vp, 0.0)
    means, stds = word.means.numpy(), word.stds.numpy()
    assert x1 >= np.abs(means[:, 0]).max() + 3 * stds.max()  # every component inside
    assert y1 >= np.abs(means[:, 1]).max() + 3 * stds.max()
    assert 3.0 <= (x1 - x0) / (y1 - y0) <= FIT_MAX_ASPECT  # wide, as the word
    assert y1 < 1.0 and x1 < 3.0  # tighter than the old +-3 square
    box = view_box(word, vp, 1.0)  # the prior N(0, I): the +-3 square again
    assert box == ((-3.0, 3.0), (-3.0, 3.0))
    ring = view_box(get_distribution("eight_gaussians"), vp, 0.0)
    assert ring[0] == ring[1]  # round data: a square
    two = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])
    thin = view_box(
        GaussianMixture(two, torch.tensor([0.01, 0.01]), torch.tensor([0.5, 0.5])), vp, 0
    )
    assert (thin[0][1] - thin[0][0]) == pytest.approx(FIT_MAX_ASPECT * (thin[1][1] - thin[1][0]))


def test_forward_view_densities_cover_their_fitted_box():
    from scoreviz.forward import finest_width

    problem = Problem.builtin("word", "vp_linear")
    view = pipelines.forward_view(problem, pipelines.ForwardSettings(0.01, 300, 80, 60, 0))
    d = view.data
    (x0, x1), (y0, y1) = d.box
    assert d.y_range is not None and (y1 - y0) < (x1 - x0) / 3
    assert d.grid.xs.min() > x0 and d.grid.xs.max() < x1
    assert d.grid.ys.min() > y0 and d.grid.ys.max() < y1
    cells = (x1 - x0) / 60 * (y1 - y0) / 60  # rectangular cells: the density still integrates
    assert d.density.sum() * cells == pytest.approx(1.0, abs=0.03)
    assert view.finest == pytest.approx(finest_width(problem.dist, problem.process))
    assert view.finest == pytest.approx(float(problem.dist.stds.min()), rel=0.01)


def _dot_radii(fig) -> list[float]:
    """Radii (data units) of the figure's cloud images: the circles' r, or half the stroke."""
    import re
    from urllib.parse import unquote

    out = []
    for im in fig.layout.images:
        svg = unquote(im.source)
        m = re.search(r'r="([0-9.e-]+)"', svg) or re.search(r'stroke-width="([0-9.e-]+)"', svg)
        if m and "<circle" in svg:
            out.append(float(m.group(1)))
        elif m:
            out.append(float(m.group(1)) / 2)
    return out


def test_forward_pair_stacks_wide_data_and_keeps_dots_finer_than_the_strokes():
    from scoreviz.figures.forward import DOT_FILL, forward_pair_figure

    view = pipelines.forward_view(Problem.builtin("word", "vp_linear"),
                                  pipelines.ForwardSettings(0.01, 300, 80, 60, 0))  # fmt: skip
    low = forward_pair_figure(view)  # 400 px: side by side, each panel fitted to the word
    assert low.layout.xaxis.domain[1] < low.layout.xaxis2.domain[0]
    assert list(low.layout.yaxis.range) == list(view.data.box[1])
    fig = forward_pair_figure(view, height=800)  # a tall figure: one above the other
    top, bottom = fig.layout.yaxis.domain, fig.layout.yaxis2.domain
    assert bottom[1] < top[0]  # one above the other
    assert fig.layout.xaxis.domain == fig.layout.xaxis2.domain == (0, 1)  # each the full width
    assert list(fig.layout.yaxis.range) == list(view.data.box[1])  # fitted, not +-3
    assert fig.layout.yaxis.scaleanchor == "x"  # still equal aspect
    finest_t = np.hypot(view.alpha * view.finest, view.sigma)
    radii = _dot_radii(fig)
    assert radii and max(radii) <= DOT_FILL * max(view.finest, finest_t) / 2 + 1e-9
    ring = pipelines.forward_view(Problem.builtin("eight_gaussians", "vp_linear"),
                                  pipelines.ForwardSettings(0.1, 300, 80, 60, 0))  # fmt: skip
    side = forward_pair_figure(ring)
    assert side.layout.xaxis.domain[1] < side.layout.xaxis2.domain[0]  # round data: side by side


def test_dot_px_caps_dots_at_the_finest_width():
    from scoreviz.figures.forward import DOT_FILL, MIN_DOT, dot_px

    assert dot_px(6, 0.01, None) == 6  # nothing known: as asked
    assert dot_px(6, 0.01, 0.2) == 6  # 20 px of detail: a 6 px dot fits
    # the word's strokes (std 0.074) at 50 px a unit: 3.7 px of detail
    assert dot_px(6, 0.02, 0.074) == pytest.approx(DOT_FILL * 3.7)
    assert dot_px(6, 0.02, 0.074) < 6
    assert dot_px(6, 0.1, 0.074) == MIN_DOT  # never invisible


def test_fill_aspect_gives_the_box_a_figure_fills():
    """Issue 20: at 1920 px the pages drew 280-px panels with a wide gap in a 400-px figure.
    `fill_aspect` is the width/height at which the panels fill the figure: a page can size the
    chart to it. Checked against the panel geometry it must produce."""
    from scoreviz.figures.forward import forward_pair_figure
    from scoreviz.figures.style import fill_aspect, filled_height

    ring = pipelines.forward_view(Problem.builtin("eight_gaussians", "vp_linear"),
                                  pipelines.ForwardSettings(0.1, 300, 80, 60, 0))  # fmt: skip
    fig = forward_pair_figure(ring)
    m = fig.layout.margin
    dom = fig.layout.xaxis.domain
    width = 1600.0
    panel = (dom[1] - dom[0]) * (width - m.l - m.r)  # a square panel as wide as its domain
    assert filled_height(fig, width) == pytest.approx(panel + m.t + m.b)
    assert fill_aspect(fig, width) == pytest.approx(width / (panel + m.t + m.b))
    assert 1.7 < fill_aspect(fig, width) < 2.4  # two squares side by side, and margins
    word = pipelines.forward_view(Problem.builtin("word", "vp_linear"),
                                  pipelines.ForwardSettings(0.01, 300, 80, 60, 0))  # fmt: skip
    assert 4.0 < fill_aspect(forward_pair_figure(word), width) < 6.0  # two wide, side by side
    stacked = forward_pair_figure(word, height=800)
    assert 1.0 < fill_aspect(stacked, width) < 2.0  # two wide panels, one above the other
    assert fill_aspect(go.Figure(go.Scatter(x=[0], y=[0]))) is None  # stretches: no aspect


def test_projector_markers_stop_at_the_datas_finest_width():
    """Issue 20: presentation mode's thicker markers blurred the word "SCORE" (and the
    checkerboard): a trace's meta cap (`marker_cap`, from the data's finest width) bounds them."""
    from scoreviz.figures.forward import forward_animation_figure
    from scoreviz.figures.style import MAX_MARKER, PROJECTOR, for_projector, marker_cap

    assert marker_cap(None, 0.01) == {} and marker_cap(0.074, 0.0) == {}
    assert marker_cap(0.074, 0.02) == {MAX_MARKER: 3.7}
    word = pipelines.forward_animation_view(Problem.builtin("word", "vp_linear"), 6, 200)
    fig = forward_animation_figure(word)
    caps = [tr.meta[MAX_MARKER] for tr in fig.data]
    assert caps[0] == caps[1] < 5 * PROJECTOR["marker_scale"]  # below what thickening gives
    big = for_projector(fig)
    assert [tr.marker.size for tr in big.data] == [max(3, caps[0]), max(5, caps[1])]
    ring = pipelines.forward_animation_view(Problem.builtin("eight_gaussians", "vp_linear"), 6)
    roomy = for_projector(forward_animation_figure(ring))  # wider modes: room to grow
    assert roomy.data[1].marker.size > big.data[1].marker.size
    plain = go.Figure(go.Scatter(x=[0], y=[0], marker=dict(size=4)))
    assert for_projector(plain).data[0].marker.size == max(PROJECTOR["min_marker"], 4 * 1.6)
