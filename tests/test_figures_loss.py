"""Loss-vs-t analysis and figures: the floor trace is losses.loss_floor, the exact score sits on
its floor, loss - floor is the weighted score error, and lambda = sigma^2 keeps every t O(1)."""

import numpy as np
import pandas as pd
import pytest
import torch

from scoreviz import analysis, losses
from scoreviz.distributions import get_distribution
from scoreviz.figures.loss import loss_vs_t_figure, weighting_floor_figure
from scoreviz.figures.style import PALETTE
from scoreviz.figures.training import loss_curve_figure
from scoreviz.processes import get_process, stratified_u
from scoreviz.score import exact_score_fn

DIST = get_distribution("eight_gaussians")
PROC = get_process("vp_linear")
WS = ("sigma2", "one")


@pytest.fixture(scope="module")
def floors():
    edges = analysis.t_bins(PROC, 20)
    return (edges, *analysis.floor_by_bin(DIST, PROC, WS, edges, n_mc=512))


def test_floor_trace_equals_losses_loss_floor(floors):
    edges, fine, by_bin = floors
    binned = analysis.binned_loss(exact_score_fn(DIST, PROC), DIST, PROC, WS, 20, 64)
    fig = loss_vs_t_figure(binned, fine, by_bin, losses.WEIGHTINGS, WS)
    floor_traces = [t for t in fig.data if t.name.startswith("exact floor")]
    assert len(floor_traces) == 2
    for w, tr in zip(WS, floor_traces, strict=True):
        oracle = losses.loss_floor(DIST, PROC, torch.as_tensor(tr.x), w, n_mc=512, seed=0)
        np.testing.assert_allclose(tr.y, oracle.numpy(), rtol=1e-9)
        assert tr.line.color == PALETTE["exact"]
    assert fig.layout.yaxis.type == "log"
    loss_traces = [t for t in fig.data if t.name.startswith("model's loss")]
    assert len(loss_traces) == 2 and all(len(t.x) == 20 for t in loss_traces)


def test_binned_loss_has_the_bins_and_weightings_asked_for():
    df = analysis.binned_loss(exact_score_fn(DIST, PROC), DIST, PROC, WS, n_bins=24, per_bin=32)
    assert len(df) == 48 and set(df["weighting"]) == set(WS)
    b = df[df["weighting"] == "sigma2"]
    assert (np.diff(b["t"]) > 0).all() and b["t_lo"].iloc[0] == PROC.t_min
    assert b["t_hi"].iloc[-1] == pytest.approx(1.0)


def test_exact_score_sits_on_its_floor(floors):
    edges, fine, by_bin = floors
    df = analysis.binned_loss(exact_score_fn(DIST, PROC), DIST, PROC, ["sigma2"], 20, 512, seed=4)
    assert (df["score_err"] == 0).all()  # the exact score against itself
    floor = by_bin[by_bin["weighting"] == "sigma2"]["floor"].to_numpy()
    excess = df["loss"].to_numpy() - floor
    assert np.abs(excess).mean() < 0.05 * floor.mean()
    assert (np.abs(excess) < 5 * df["loss_se"].to_numpy() + 0.05 * floor).all()


def test_excess_is_the_weighted_score_error():
    """s = exact + c: loss - floor = lambda E||c||^2 per bin, which score_err gives directly."""
    exact = exact_score_fn(DIST, PROC)
    shift = torch.tensor([0.3, -0.2])

    def wrong(x, t):
        return exact(x, t) + shift

    df = analysis.binned_loss(wrong, DIST, PROC, ["sigma2"], n_bins=20, per_bin=512, seed=5)
    t = torch.tensor(df["t"].to_numpy())
    expected = (losses.weight("sigma2", PROC, t) * (shift**2).sum()).numpy()
    np.testing.assert_allclose(df["score_err"], expected, rtol=0.2)
    edges = analysis.t_bins(PROC, 20)
    _, by_bin = analysis.floor_by_bin(DIST, PROC, ["sigma2"], edges, n_mc=512)
    excess = df["loss"].to_numpy() - by_bin["floor"].to_numpy()
    assert abs(excess.mean() - df["score_err"].mean()) < 0.15 * df["score_err"].mean()


def test_weighting_one_explodes_while_sigma2_stays_bounded():
    sig = analysis.sigma_grid(PROC, 30, smallest=1e-3)
    t = PROC.t_from_sigma(torch.as_tensor(sig)).numpy()
    df = analysis.floor_curve(DIST, PROC, tuple(losses.WEIGHTINGS), t, n_mc=512)
    one = df[df["weighting"] == "one"]
    s2 = df[df["weighting"] == "sigma2"]
    small = one["sigma"].to_numpy() < 0.02
    assert small.any()
    ratio = one["floor"].to_numpy()[small] / (2 / one["sigma"].to_numpy()[small] ** 2)
    np.testing.assert_allclose(ratio, 1.0, rtol=0.1)  # ~ 2 / sigma^2 as sigma -> 0
    assert one["floor"].max() > 1e4  # sigma(t_min) = 0.0105 on vp_linear
    assert (s2["floor"] <= 2.0 + 1e-6).all() and s2["floor"].max() > 0.5  # O(1) everywhere
    fig = weighting_floor_figure(df, losses.WEIGHTINGS)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    names = [tr.name for tr in fig.data]
    assert losses.WEIGHTINGS["one"] in names and losses.WEIGHTINGS["sigma2"] in names


def test_loss_history_figure_decimates_and_draws_the_floor():
    hist = pd.DataFrame(
        {"step": np.arange(1, 3001), "loss": np.linspace(2, 1, 3000), "elapsed": np.zeros(3000)}
    )
    hist.loc[10, "loss"] = np.nan
    fig = loss_curve_figure(hist, floor=0.9)
    raw, smooth, floor = fig.data
    assert len(raw.x) <= 600 and np.isfinite(raw.y).all()
    assert list(floor.y) == [0.9, 0.9] and floor.line.color == PALETTE["exact"]
    assert fig.layout.yaxis.type == "log"


def test_exact_score_sits_on_the_lambda_one_floor_and_is_drawn(floors):
    """lambda = 1, where the floor is ~2/sigma^2 and steep near t_min: the exact score's binned
    loss equals the bin-averaged floor in every bin, the first included (it was 0.63x the loss
    there before the floor was integrated by quadrature), and the figure draws it."""
    edges, fine, by_bin = floors
    df = analysis.binned_loss(exact_score_fn(DIST, PROC), DIST, PROC, WS, 20, 512, seed=6)
    one = df[df["weighting"] == "one"]
    floor = by_bin[by_bin["weighting"] == "one"]["floor"].to_numpy()
    excess = one["loss"].to_numpy() - floor
    assert (np.abs(excess) < 4 * one["loss_se"].to_numpy() + 0.02 * floor).all()
    fig = loss_vs_t_figure(df, fine, by_bin, losses.WEIGHTINGS, WS, exact_binned=df)
    exact = [t for t in fig.data if t.name.startswith("exact score's loss")]
    assert len(exact) == 2 * len(WS)  # the loss (top) and its excess (bottom) per weighting
    assert all(t.marker.line.color == PALETTE["exact"] for t in exact)


def test_excess_band_is_two_standard_errors_of_the_per_sample_losses(floors):
    """Issue 10: the excess panel draws excess ± 2 SE per bin, the SE from the spread of the
    per-sample losses (pipelines.with_excess), and the band brackets the excess; for the exact
    score (true excess 0) most bins' bands contain 0, so negative points are noise."""
    from scoreviz.pipelines import with_excess

    edges, fine, by_bin = floors
    score = exact_score_fn(DIST, PROC)
    binned = with_excess(analysis.binned_loss(score, DIST, PROC, WS, 20, 64, seed=3), by_bin)
    # the SE, independently: the same samples' per-sample losses
    gen = torch.Generator().manual_seed(3)
    t = PROC.t_uniform(stratified_u(20, gen, 64)).float()
    x0 = DIST.sample(t.shape[0], generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    per = losses.dsm_loss(score, PROC, x0, t, eps, WS[0]).double().reshape(20, 64)
    se = (per.std(1) / 8).numpy()
    b = binned[binned["weighting"] == WS[0]].sort_values("bin")
    np.testing.assert_allclose(b["excess_se"], se, rtol=1e-6)
    fig = loss_vs_t_figure(binned, fine, by_bin, losses.WEIGHTINGS, WS)
    upper = next(tr for tr in fig.data if tr.name == "+2 SE")
    lower = next(tr for tr in fig.data if tr.name.startswith("±2 SE"))
    excess = next(tr for tr in fig.data if tr.name.startswith("excess"))
    assert lower.fill == "tonexty"
    assert (np.asarray(lower.y) <= np.asarray(excess.y)).all()
    assert (np.asarray(excess.y) <= np.asarray(upper.y)).all()
    np.testing.assert_allclose(np.asarray(upper.y) - np.asarray(excess.y), 2 * se, rtol=1e-6)
    inside = (np.asarray(lower.y) <= 0) & (np.asarray(upper.y) >= 0)
    assert inside.mean() >= 0.8  # the exact score's excess is 0 up to Monte Carlo noise


def test_log_dtick_keeps_at_most_five_labels():
    from scoreviz.figures.loss import log_dtick

    assert log_dtick([1e-4, 1.5]) == 1  # 4.2 decades: every decade labelled
    assert log_dtick([1e-4, 900.0]) == 2  # lambda = 1: 7 decades, every second one
    assert log_dtick([1e-4], [1e4, np.nan, -1.0]) == 2  # non-finite and non-positive ignored
    assert log_dtick([1.0]) == 1


def test_robust_range_leaves_a_lone_monte_carlo_bin_out():
    from scoreviz.figures.loss import robust_range

    excess = np.array([-196.0, 2.2, -0.7, -0.2, 0.2, 0.01, 0.0])
    se = np.array([70.0, 1.5, 0.4, 0.1, 0.1, 0.01, 0.01])
    lo, hi, kept = robust_range(excess - 2 * se, excess + 2 * se)
    assert not kept[0] and kept[1:].all()
    assert lo < (excess - 2 * se)[1:].min() and hi > (excess + 2 * se)[1:].max()
    assert hi - lo < 15  # the other bins fill the panel (was 400+ tall with the lone one)
    # bins that are large together stay (lambda = sigma^2's first bins are all ~0.2)
    wide = np.array([0.25, 0.2, 0.22, 0.01, 0.001])
    lo, hi, kept = robust_range(-wide, wide)
    assert kept.all() and hi >= 0.25 and lo <= -0.25


def test_loss_figure_excess_axis_ignores_the_lone_bin_and_marks_it(floors):
    """Issue 20: lambda = 1's excess axis was scaled by one Monte Carlo point at the smallest t."""
    edges, fine, by_bin = floors
    binned = analysis.binned_loss(exact_score_fn(DIST, PROC), DIST, PROC, WS, 20, 64)
    one = binned["weighting"] == "one"
    first = binned.index[one][0]
    binned.loc[first, "loss"] += 500.0  # one wild Monte Carlo bin
    fig = loss_vs_t_figure(binned, fine, by_bin, losses.WEIGHTINGS, WS)
    excess_axis = fig.layout.yaxis4  # row 2, column 2 (lambda = 1)
    assert excess_axis.range[1] < 100
    off = [tr for tr in fig.data if tr.name == "off scale (hover: value)"]
    assert len(off) == 1 and off[0].y[0] == excess_axis.range[1]
    assert off[0].customdata[0] > excess_axis.range[1]
    assert fig.layout.yaxis2.dtick >= 2  # lambda = 1's loss axis: at most five labels


def test_panel_titles_are_the_weightings_formulas(floors):
    """Issue 20: the full label ("λ = 1 (raw score MSE: high noise never learned)") ran off a
    projected panel; a title is the formula before the parenthesis."""
    edges, fine, by_bin = floors
    binned = analysis.binned_loss(exact_score_fn(DIST, PROC), DIST, PROC, WS, 8, 32)
    fig = loss_vs_t_figure(binned, fine, by_bin, losses.WEIGHTINGS, WS)
    titles = [a.text for a in fig.layout.annotations if a.text]
    assert titles == [losses.WEIGHTINGS[w].split(" (")[0] for w in WS]
    assert "λ = 1" in titles and all("(" not in t for t in titles)
