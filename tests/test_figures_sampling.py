"""Sampling animation: frames in t order showing exactly the trajectory, x0_hat beside x_t,
trails, a normalised score field, and a figure light enough to send (< 5 MB)."""

import numpy as np
import pytest

from scoreviz import analysis, metrics, samplers
from scoreviz.distributions import get_distribution
from scoreviz.figures.sampling import (
    SamplingPanel,
    _field_arrows,
    mode_weights_figure,
    sampling_animation,
)
from scoreviz.figures.style import PALETTE
from scoreviz.grids import make_grid
from scoreviz.processes import get_process
from scoreviz.score import exact_score_fn

DIST = get_distribution("eight_gaussians")
PROC = get_process("vp_linear")


def _panel(traj, label="exact", color="exact", score_fn=None):
    fr = analysis.light_frames(traj.times, traj.xs, traj.x0_hats)
    ranges = analysis.view_ranges(fr.xs)
    xy, s = analysis.field_frames(score_fn or exact_score_fn(DIST, PROC), fr.times, ranges)
    return SamplingPanel(label, color, fr, xy, s, ranges)


@pytest.fixture(scope="module")
def traj():
    cfg = samplers.SamplerConfig("reverse_sde", n_steps=80, n_particles=200, n_frames=30)
    return samplers.sample(exact_score_fn(DIST, PROC), PROC, cfg)


def test_frames_show_the_trajectory_in_decreasing_t(traj):
    panel = _panel(traj)
    fig = sampling_animation([panel], data=DIST.sample(300).numpy())
    f = len(traj.times)
    assert len(fig.frames) == f == 30
    assert [fr.name for fr in fig.frames] == [str(k) for k in range(f)]
    labels = [float(s.label) for s in fig.layout.sliders[0].steps]
    assert labels == pytest.approx(list(np.round(traj.times, 3)))
    assert (np.diff(traj.times) < 0).all()
    moving = fig.frames[0].traces
    by_name = {fig.data[i].name: j for j, i in enumerate(moving)}
    k_x, k_x0 = by_name["x_t, exact"], by_name["x̂₀, exact"]
    for k in (0, 7, f - 1):
        d = fig.frames[k].data
        np.testing.assert_allclose(d[k_x].x, traj.xs[k, :, 0], atol=5e-4)
        np.testing.assert_allclose(d[k_x].y, traj.xs[k, :, 1], atol=5e-4)
        np.testing.assert_allclose(d[k_x0].x, traj.x0_hats[k, :, 0], atol=5e-4)
        np.testing.assert_allclose(d[k_x0].y, traj.x0_hats[k, :, 1], atol=5e-4)
        trail = d[k_x + 1]  # the first highlighted particle's path up to frame k
        np.testing.assert_allclose(trail.x, traj.xs[: k + 1, 0, 0], atol=5e-4)
    # the initial traces are frame 0; x_t on the left, x0_hat on the right panel
    x_trace = fig.data[moving[k_x]]
    np.testing.assert_allclose(x_trace.x, traj.xs[0, :, 0], atol=5e-4)
    assert x_trace.xaxis in (None, "x") and fig.data[moving[k_x0]].xaxis == "x2"
    assert x_trace.marker.color == PALETTE["exact"]
    play = fig.layout.updatemenus[0].buttons[0]
    assert play.method == "animate" and "Play" in play.label


def test_learned_and_exact_rows_share_frames(traj):
    learned = _panel(traj, "learned", "learned")
    fig = sampling_animation([learned, _panel(traj)])
    assert len(fig.frames) == len(traj.times)
    assert len(fig.frames[0].data) == len(fig.frames[0].traces) == 2 * (5 + 8)
    colors = {tr.marker.color for tr in fig.data if tr.name and tr.name.startswith("x_t,")}
    assert colors == {PALETTE["learned"], PALETTE["exact"]}
    assert fig.layout.yaxis3.scaleanchor == "x3"


def test_light_frames_drop_non_finite_and_decimate():
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(200, 1500, 2)).astype(np.float32)
    x0 = xs.copy()
    xs[50, 3] = np.nan
    x0[10, 7, 1] = np.inf
    fr = analysis.light_frames(np.linspace(1, 0, 200), xs, x0, max_frames=60, max_particles=1000)
    assert fr.xs.shape == (60, 1000, 2) and fr.xs.dtype == np.float32
    assert fr.n_dropped == 2 and fr.n_total == 1500
    assert np.isfinite(fr.xs).all() and np.isfinite(fr.x0_hats).all()
    assert fr.times[0] == 1 and fr.times[-1] == 0
    np.testing.assert_array_equal(fr.xs, np.round(fr.xs, 3))


def test_field_arrows_point_along_the_score_and_stay_inside_a_cell():
    xy = make_grid(15, (-3.0, 3.0)).points
    score = -xy * np.linspace(0.1, 50, len(xy))[:, None]  # wildly varying lengths
    score[5] = np.nan
    x, y, _ = _field_arrows(xy, score, 3.0, 15)
    start = np.stack([x[0::3], y[0::3]], 1)
    end = np.stack([x[1::3], y[1::3]], 1)
    vec = end - start
    cell = 6.0 / 15
    assert np.linalg.norm(vec, axis=1).max() <= cell * (1 + 1e-6)
    assert len(start) == len(xy) - 1  # the non-finite arrow is left out
    s = score[np.isfinite(score).all(1)]
    ok = np.linalg.norm(s, axis=1) > 0  # the centre point has score 0
    cos = (vec[ok] * s[ok]).sum(1) / (
        np.linalg.norm(vec[ok], axis=1) * np.linalg.norm(s[ok], axis=1)
    )
    assert np.allclose(cos, 1, atol=1e-4)


def test_full_size_animation_is_under_5_mb():
    """1000 particles, 50 frames, learned and exact rows (the page's default figure). Its build
    time is measured by benchmarks/bench.py, not asserted here."""
    cfg = samplers.SamplerConfig("pf_ode_euler", n_steps=60, n_particles=1000, n_frames=50)
    traj = samplers.sample(exact_score_fn(DIST, PROC), PROC, cfg)
    panels = [_panel(traj, "learned", "learned"), _panel(traj)]
    fig = sampling_animation(panels, data=DIST.sample(1000).numpy())
    size = len(fig.to_json())
    assert len(fig.frames) == 50
    assert size < 5_000_000, size


def test_frames_are_capped_so_the_figure_stays_small():
    """2 rows x 1000 particles allow 50 frames (POINT_BUDGET), first and last kept."""
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(60, 1000, 2)).astype(np.float32)
    times = np.linspace(1, 0.001, 60)
    fr = analysis.light_frames(times, xs, xs)
    field = np.zeros((60, 4, 2), np.float32)
    panel = SamplingPanel("exact", "exact", fr, field, field, np.full(60, 3.0))
    fig = sampling_animation([panel, panel])
    assert len(fig.frames) == 50
    steps = fig.layout.sliders[0].steps
    assert float(steps[0].label) == 1.0 and float(steps[-1].label) == 0.001
    assert len(sampling_animation([panel]).frames) == 60


def test_report_table_and_mode_weights_figure():
    x = DIST.sample(500).numpy()
    rep = metrics.sample_report(x, DIST, seed=0)
    table = analysis.report_table({"exact score": rep})
    assert "energy distance to exact samples" in table.index
    assert "mode-weight error ½Σ|ŵₖ − wₖ|" in table.index
    assert table.loc["samples used", "exact score"] == 500
    fig = mode_weights_figure(rep["true_weights"], {"exact score": rep["mode_weights"]},
                              {"exact score": "exact"})  # fmt: skip
    assert len(fig.data) == 2 and len(fig.data[1].y) == DIST.n_components
    assert fig.data[1].marker.color == PALETTE["exact"]


def test_one_fixed_view_holds_the_final_samples_and_zooms_out_at_most_3x():
    rng = np.random.default_rng(2)
    scale = np.linspace(10, 1, 40)[:, None, None]  # VE-like: from +-30 down to +-3
    xs = (rng.normal(size=(40, 500, 2)) * scale).astype(np.float32)
    r = analysis.view_ranges(xs)
    assert r.shape == (40,) and np.ptp(r) == 0
    final = max(3.0, 1.15 * np.quantile(np.abs(xs[-1]), 0.99))
    assert r[0] == pytest.approx(3 * final)
    still = analysis.view_ranges(xs[-5:] * 0.1)  # tiny data: at least +-3
    assert (still == 3.0).all()


def test_training_points_are_drawn_over_every_x0_panel():
    cfg = samplers.SamplerConfig("ddim", n_steps=10, n_particles=50, n_frames=5)
    traj = samplers.sample(exact_score_fn(DIST, PROC), PROC, cfg)
    train = DIST.sample(17).numpy()
    fig = sampling_animation([_panel(traj, "learned", "learned"), _panel(traj)], train_points=train)
    crosses = [tr for tr in fig.data if tr.legendgroup == "train"]
    assert len(crosses) == 2  # one per row, on the x0_hat axes (right column)
    assert {tr.xaxis for tr in crosses} == {"x2", "x4"}
    for tr in crosses:
        assert np.allclose(np.c_[tr.x, tr.y], train, atol=6e-4)  # sent rounded to 3 decimals
    assert sum(tr.showlegend is not False for tr in crosses) == 1
    assert "17 training points" in crosses[0].name
    moving = {i for f in fig.frames for i in f.traces}
    assert not moving & {i for i, tr in enumerate(fig.data) if tr.legendgroup == "train"}
