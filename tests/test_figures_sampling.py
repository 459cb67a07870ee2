"""Sampling animation: frames in t order showing exactly the trajectory, x0_hat under x_t,
fading trails of the last 10 frames, a normalised score field, axes shared by the panels and
following the run (VE included), step labels for plain Langevin, x0_hat hidden while
alpha_t / sigma_t is small, and a figure light enough to send (<= 1.5 MB at the page's
defaults)."""

import dataclasses

import numpy as np
import pytest
import torch

from scoreviz import analysis, metrics, pipelines, samplers
from scoreviz.distributions import get_distribution
from scoreviz.figures.sampling import (
    TRAIL,
    X0_MIN_SNR,
    SamplingPanel,
    _field_arrows,
    mode_weights_figure,
    sampling_animation,
    sampling_figure,
    trail_window,
)
from scoreviz.figures.style import PALETTE
from scoreviz.grids import make_grid
from scoreviz.problem import Problem
from scoreviz.processes import get_process
from scoreviz.score import exact_score_fn

DIST = get_distribution("eight_gaussians")
PROC = get_process("vp_linear")


def _panel(traj, label="exact", color="exact", score_fn=None):
    fr = analysis.light_frames(traj.times, traj.xs, traj.x0_hats)
    ranges = analysis.run_ranges(fr.xs)
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
        trail = d[k_x + 1]  # the highlighted particles' last TRAIL frames, then a NaN gap
        first = np.asarray(trail.x, float).reshape(8, TRAIL + 1)[0]
        np.testing.assert_allclose(first[:-1], traj.xs[trail_window(k), 0, 0], atol=5e-4)
    # the initial traces are frame 0; x_t on the left, x0_hat on the right panel
    x_trace = fig.data[moving[k_x]]
    np.testing.assert_allclose(x_trace.x, traj.xs[0, :, 0], atol=5e-4)
    assert x_trace.xaxis in (None, "x") and fig.data[moving[k_x0]].xaxis == "x2"  # row 2
    assert x_trace.marker.color == PALETTE["exact"]
    play = fig.layout.updatemenus[0].buttons[0]
    assert play.method == "animate" and "Play" in play.label


def test_learned_and_exact_rows_share_frames(traj):
    learned = _panel(traj, "learned", "learned")
    fig = sampling_animation([learned, _panel(traj)])
    assert len(fig.frames) == len(traj.times)
    # x_t: field, particles, trails, highlights; x0_hat: particles, highlights, the note
    assert len(fig.frames[0].data) == len(fig.frames[0].traces) == 2 * (4 + 3)
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


def test_the_view_follows_the_particles_and_shrinks_under_ve():
    rng = np.random.default_rng(2)
    scale = np.linspace(10, 1, 40)[:, None, None]  # VE-like: from +-30 down to +-3
    xs = (rng.normal(size=(40, 500, 2)) * scale).astype(np.float32)
    r = analysis.run_ranges(xs)
    assert r.shape == (40,) and r[0] > 5 * r[-1]
    final = max(3.0, 1.15 * np.quantile(np.abs(xs[-1]), 0.99))
    assert 0.9 * final <= r[-1] <= 1.1 * final  # holds the final samples (+-3 up to 3.3)
    q = 1.15 * np.quantile(np.abs(xs).reshape(40, -1), 0.99, axis=1)
    assert (r >= np.minimum(q, 3.0)).all() and (r[q > 3.3] >= q[q > 3.3]).all()
    still = analysis.run_ranges(xs[-5:] * 0.1)  # tiny data: at least +-3
    assert (still == 3.0).all()
    assert analysis.shared_ranges([r, still.repeat(8)]).tolist() == r.tolist()


def test_training_points_are_drawn_over_every_x0_panel():
    cfg = samplers.SamplerConfig("ddim", n_steps=10, n_particles=50, n_frames=5)
    traj = samplers.sample(exact_score_fn(DIST, PROC), PROC, cfg)
    train = DIST.sample(17).numpy()
    fig = sampling_animation([_panel(traj, "learned", "learned"), _panel(traj)], train_points=train)
    crosses = [tr for tr in fig.data if tr.legendgroup == "train"]
    assert len(crosses) == 2  # one per row, on the x0_hat axes (right column)
    assert {tr.xaxis for tr in crosses} == {"x3", "x4"}  # row 2: x0_hat under x_t
    for tr in crosses:
        assert np.allclose(np.c_[tr.x, tr.y], train, atol=6e-4)  # sent rounded to 3 decimals
    assert sum(tr.showlegend is not False for tr in crosses) == 1
    assert "17 training points" in crosses[0].name
    moving = {i for f in fig.frames for i in f.traces}
    assert not moving & {i for i, tr in enumerate(fig.data) if tr.legendgroup == "train"}


def _xt_ranges(fig, k: int, n_panels: int) -> list[tuple]:
    lay = fig.frames[k].layout
    return [tuple(lay[f"xaxis{'' if c == 1 else c}"].range) for c in range(1, n_panels + 1)]


def test_ve_axes_shrink_with_the_samples_and_are_shared_by_the_panels():
    """VE starts at +-48: the x_t axes of both panels follow the run down to the data's +-3."""
    proc = get_process("ve")
    cfg = samplers.SamplerConfig("reverse_sde", n_steps=60, n_particles=300, n_frames=20)
    traj = samplers.sample(exact_score_fn(DIST, proc), proc, cfg)
    fr = analysis.light_frames(traj.times, traj.xs, traj.x0_hats)
    wide = analysis.run_ranges(fr.xs)
    narrow = wide * 0.5  # a row whose own ranges were smaller: the figure shows the widest
    xy, s = analysis.field_frames(exact_score_fn(DIST, proc), fr.times, wide)
    panels = [
        SamplingPanel("a", "learned", fr, xy, s, narrow),
        SamplingPanel("b", "exact", fr, xy, s, wide),
    ]
    fig = sampling_animation(panels, x0_hat=False)
    assert fig.layout.sliders[0].steps[0].args[1]["frame"]["redraw"] is True  # layouts apply
    first, last = _xt_ranges(fig, 0, 2), _xt_ranges(fig, len(fig.frames) - 1, 2)
    for k in range(len(fig.frames)):
        ranges = _xt_ranges(fig, k, 2)
        assert ranges[0] == ranges[1] == (-wide[k], wide[k])  # shared, the widest
        assert fig.frames[k].layout.yaxis2.range == fig.frames[k].layout.xaxis.range
    assert first[0][1] > 5 * last[0][1] and last[0][1] <= 3.5


def test_constant_ranges_need_no_redraw(traj):
    fig = sampling_animation([_panel(traj), _panel(traj, "learned", "learned")])
    assert all(fr.layout.xaxis.range is None for fr in fig.frames)
    assert fig.layout.sliders[0].steps[0].args[1]["frame"]["redraw"] is False
    assert fig.layout.xaxis.range == fig.layout.xaxis2.range


def test_trails_keep_the_last_10_frames_and_fade(traj):
    panel = _panel(traj)
    fig = sampling_animation([panel], x0_hat=False)
    moving = fig.frames[0].traces
    j = next(j for j, i in enumerate(moving) if fig.data[i].legendgroup == "trails")
    trail = fig.data[moving[j]]
    opacity = np.asarray(trail.marker.opacity).reshape(8, TRAIL + 1)[0, :-1]
    assert (np.diff(opacity) > 0).all()  # oldest faint, newest strong
    xs = panel.frames.xs
    for k in range(len(fig.frames)):
        pts = np.c_[fig.frames[k].data[j].x, fig.frames[k].data[j].y].reshape(8, TRAIL + 1, 2)
        assert np.isnan(pts[:, -1]).all()  # a gap between particles
        window = trail_window(k)
        assert len(set(window.tolist())) <= TRAIL and window.max() == k
        assert window.min() >= max(0, k - TRAIL + 1)
        np.testing.assert_allclose(pts[:, :-1], np.swapaxes(xs[window][:, :8], 0, 1), atol=5e-4)
    off = sampling_animation([panel], x0_hat=False, trails=False)
    assert not [tr for tr in off.data if tr.legendgroup == "trails"]


def test_plain_langevin_frames_count_steps():
    proc = get_process("vp_linear")
    cfg = samplers.SamplerConfig("langevin", n_steps=200, n_particles=100, n_frames=50)
    view = pipelines.sampling_view(
        Problem.builtin("eight_gaussians", "vp_linear"), pipelines.SamplingSettings(cfg, ("exact",))
    )
    assert np.ptp(view.rows[0].frames.times) == 0
    fig = sampling_figure(view)
    slider = fig.layout.sliders[0]
    labels = [int(s.label) for s in slider.steps]
    assert labels[0] == 0 and labels[-1] == 200 and (np.diff(labels) > 0).all()
    assert slider.currentvalue.prefix == "step "
    reverse = samplers.SamplerConfig("reverse_sde", n_steps=20, n_particles=50, n_frames=5)
    settings = pipelines.SamplingSettings(reverse, ("exact",))
    fig = sampling_figure(
        pipelines.sampling_view(Problem.builtin("eight_gaussians", proc.name), settings)
    )
    assert fig.layout.sliders[0].currentvalue.prefix == "t = "


def test_x0_hat_starts_where_alpha_over_sigma_is_large_enough(traj):
    panel = _panel(traj)
    at = PROC.at(torch.as_tensor(panel.frames.times, dtype=torch.float64))
    panel = dataclasses.replace(panel, alphas=at.alpha.numpy(), sigmas=at.sigma.numpy())
    fig = sampling_animation([panel])
    moving = fig.frames[0].traces
    names = [fig.data[i].name for i in moving]
    k_x0, k_note = names.index("x̂₀, exact"), names.index("x̂₀ note")
    snr = at.alpha.numpy() / at.sigma.numpy()
    assert (snr < X0_MIN_SNR).any() and (snr >= X0_MIN_SNR).any()  # both kinds of frame
    for k, frame in enumerate(fig.frames):
        hidden = snr[k] < X0_MIN_SNR
        assert (len(frame.data[k_x0].x) == 0) == hidden
        assert (len(frame.data[k_note].x) == 1) == hidden
        if not hidden:
            np.testing.assert_allclose(frame.data[k_x0].x, traj.x0_hats[k, :, 0], atol=5e-4)
    assert "α_t/σ_t" in fig.data[moving[k_note]].text[0]


@pytest.mark.parametrize("proc_key", ["vp_linear", "ve"])
def test_the_default_figure_is_at_most_1_5_mb(proc_key):
    """The page's defaults: learned and exact panels (two exact rows here), reverse SDE, 200
    steps, 1,000 particles, 50 frames, x0_hat off, trails on (issue 11: <= 1.5 MB)."""
    cfg = samplers.SamplerConfig("reverse_sde", n_steps=200, n_particles=1000, n_frames=50)
    problem = Problem.builtin("eight_gaussians", proc_key)
    view = pipelines.sampling_view(problem, pipelines.SamplingSettings(cfg, ("exact", "exact")))
    fig = sampling_figure(view, x0_hat=False)
    size = len(fig.to_json())
    assert len(fig.frames) == 50
    assert size <= 1_500_000, size
    assert len(fig.frames[-1].data[1].x) == 500  # particles on the wire (the table uses 1,000)


def test_the_mode_weights_bars_survive_presentation_mode():
    """for_projector thickens markers that have a size; a bar's marker has none."""
    from scoreviz.figures.style import for_projector

    fig = mode_weights_figure(np.full(8, 1 / 8), {"exact score": np.full(8, 1 / 8)})
    big = for_projector(fig)
    assert big.layout.font.size >= 18 and len(big.data) == 2


def test_mode_bars_beside_the_panels_show_each_rows_final_weights(traj):
    """The projected figure carries the mode weights (issue 20): one horizontal bar per mixture
    component for the true weights and for each row's final samples, right of the panels, whose
    x domains shrink so that nothing overlaps."""
    from scoreviz.figures.sampling import BARS_WIDTH, add_mode_bars

    fig = sampling_animation([_panel(traj, "learned", "learned"), _panel(traj)])
    n_data = len(fig.data)
    final = torch.as_tensor(traj.xs[-1])
    shares = metrics.mode_weights(final, DIST)
    add_mode_bars(fig, DIST.weights.numpy(), {"learned": shares, "exact": shares[::-1]},
                  {"learned": "learned", "exact": "exact"})  # fmt: skip
    bars = fig.data[n_data:]
    assert [b.type for b in bars] == ["bar"] * 3
    np.testing.assert_allclose(bars[0].x, DIST.weights.numpy())
    np.testing.assert_allclose(bars[1].x, shares)
    np.testing.assert_allclose(bars[2].x, shares[::-1])
    assert list(bars[0].y) == [str(k) for k in range(1, 9)]
    assert bars[1].marker.color == PALETTE["learned"] and bars[2].marker.color == PALETTE["exact"]
    assert bars[0].text is None  # 8 components: no text (too small to read), hover only
    axis = fig.layout[bars[0].xaxis.replace("x", "xaxis")]
    assert axis.domain == (1 - BARS_WIDTH, 1)
    panels = [ax for ax in fig.select_xaxes() if ax is not axis]
    assert max(ax.domain[1] for ax in panels) < axis.domain[0]  # the panels end before the bars
    assert axis.range[1] > max(max(b.x) for b in bars)  # every bar inside its axis
    # frames still move only the panels' traces (the bars are static)
    assert max(fig.frames[0].traces) < n_data


def test_sampling_figure_puts_the_langevin_weights_on_the_figure():
    """Two modes (0.8 / 0.2) under plain Langevin: the bars carry the report's shares as text."""
    problem = Problem.builtin("skewed", "vp_linear")
    config = samplers.config_from_knobs("langevin", 60, 300, 20, 0, step_size=0.5, t_langevin=0.01)
    view = pipelines.sampling_view(problem, pipelines.SamplingSettings(config, ("exact",)))
    bars = [tr for tr in sampling_figure(view, x0_hat=False).data if tr.type == "bar"]
    weights = view.rows[0].report["mode_weights"]
    np.testing.assert_allclose(bars[1].x, weights)
    assert list(bars[1].text) == [f"{w:.2f}" for w in weights]
    assert not [tr for tr in sampling_figure(view, mode_bars=False).data if tr.type == "bar"]


def test_sampling_particles_carry_the_projector_cap_of_their_data():
    from scoreviz.figures.style import MAX_MARKER, for_projector

    problem = Problem.builtin("word", "vp_linear")
    config = samplers.config_from_knobs("reverse_sde", 30, 200, 10, 0)
    view = pipelines.sampling_view(problem, pipelines.SamplingSettings(config, ("exact",)))
    assert view.finest == pytest.approx(float(problem.dist.stds.min()), rel=0.01)
    fig = sampling_figure(view, x0_hat=False)
    (particles,) = [tr for tr in fig.data if tr.name == "x_t, exact score"]
    cap = particles.meta[MAX_MARKER]
    assert 3.5 <= cap < 3.5 * 1.6
    big = for_projector(fig)
    (shown,) = [tr for tr in big.data if tr.name == "x_t, exact score"]
    assert shown.marker.size == pytest.approx(cap)
