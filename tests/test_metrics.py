"""Metrics against closed-form answers and exact samples of the mixtures.

Oracles: ED of two single points (= 2 |a - b|), the V-statistic's exact bias 2 E|X - X'| / n
for the noise floor, the mixture weights for mode shares, a large independent Monte-Carlo
estimate of minus the entropy for the log-likelihood, the exact score for `score_error`.
"""

import numpy as np
import pytest
import torch

import scoreviz.metrics as metrics
from scoreviz.distributions import get_distribution
from scoreviz.errors import DataError
from scoreviz.metrics import (
    energy_distance,
    energy_noise_floor,
    mean_log_likelihood,
    mean_score_error,
    mode_weights,
    sample_report,
)
from scoreviz.mixture import empirical
from scoreviz.processes import get_process
from scoreviz.score import exact_score_fn


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def ring():
    return get_distribution("eight_gaussians")


# ----------------------------------------------------------------------------- energy distance
def test_energy_distance_of_two_points_is_twice_their_distance():
    assert energy_distance([[0.0, 0.0]], [[3.0, 4.0]]) == pytest.approx(10.0)


def test_energy_distance_zero_for_identical_sets_and_symmetric(ring):
    x = ring.sample(500, _gen(1))
    y = ring.sample(400, _gen(2))
    assert energy_distance(x, x.clone()) == pytest.approx(0.0, abs=1e-12)
    assert energy_distance(x, y) == pytest.approx(energy_distance(y, x), rel=1e-12)
    assert energy_distance(x.numpy(), y) == pytest.approx(energy_distance(x, y), rel=1e-12)


def test_energy_distance_grows_with_a_shift(ring):
    x, y = ring.sample(1000, _gen(1)), ring.sample(1000, _gen(2))
    eds = [energy_distance(x, y + torch.tensor([d, 0.0])) for d in (0.0, 0.2, 0.5, 1.0)]
    assert eds[0] > 0 and all(a < b for a, b in zip(eds, eds[1:], strict=False))
    assert eds[1] > 3 * eds[0]


def test_energy_distance_chunking_changes_nothing(ring, monkeypatch):
    x, y = ring.sample(300, _gen(1)), ring.sample(200, _gen(2))
    whole = energy_distance(x, y)
    monkeypatch.setattr(metrics, "_CDIST_PAIRS", 1000)  # 5 rows of y's 200 per chunk
    assert energy_distance(x, y) == pytest.approx(whole, rel=1e-12)


def test_energy_distance_needs_points():
    with pytest.raises(DataError):
        energy_distance(np.zeros((0, 2)), [[0.0, 0.0]])


def test_noise_floor_matches_the_v_statistic_bias(ring):
    """E[ED_V] between two independent n-samples is exactly 2 E|X - X'| / n."""
    n = 400
    big = ring.sample(4000, _gen(9), dtype=torch.float64)
    mean_dist = float(torch.cdist(big[:2000], big[2000:]).mean())
    floor = energy_noise_floor(ring, n, seed=0, repeats=60)
    assert floor == pytest.approx(2 * mean_dist / n, rel=0.25)
    assert energy_noise_floor(ring, n, seed=0, repeats=3) == energy_noise_floor(
        ring, n, seed=0, repeats=3
    )


# ----------------------------------------------------------------------------- modes, density
@pytest.mark.parametrize("name", ["skewed", "eight_gaussians", "grid"])
def test_mode_weights_of_exact_samples_are_the_weights(name):
    dist = get_distribution(name)
    w = mode_weights(dist.sample(20_000, _gen(4)), dist)
    assert w.shape == (dist.n_components,) and w.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(w, dist.weights.numpy(), atol=0.015)


def test_log_likelihood_estimates_minus_entropy_and_drops_off_target(ring):
    x = ring.sample(2000, _gen(5))
    big = ring.sample(100_000, _gen(6), dtype=torch.float64)
    log_p = ring.log_prob(big)
    minus_entropy, se = float(log_p.mean()), float(log_p.std()) / np.sqrt(2000)
    assert mean_log_likelihood(x, ring) == pytest.approx(minus_entropy, abs=4 * se)
    shifted = mean_log_likelihood(x + torch.tensor([0.3, 0.0]), ring)
    assert shifted < mean_log_likelihood(x, ring) - 1.0


def test_zero_width_mixture_falls_back_to_a_small_sigma():
    pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    dist = empirical(pts)
    assert np.isfinite(mean_log_likelihood(pts, dist))
    np.testing.assert_allclose(mode_weights(pts + 0.01, dist), [1 / 3] * 3)
    assert mean_log_likelihood(pts, dist) > mean_log_likelihood(pts + 0.2, dist)


# ----------------------------------------------------------------------------- report
def test_sample_report_drops_and_counts_nonfinite(ring):
    x = ring.sample(500, _gen(7)).numpy()
    x[:3, 0] = np.nan
    x[3, 1] = np.inf
    r = sample_report(x, ring, seed=1)
    assert set(r) >= {
        "energy_distance",
        "energy_floor",
        "log_likelihood",
        "mode_weights",
        "true_weights",
        "n_nonfinite",
    }
    assert r["n_nonfinite"] == 4 and r["n"] == 496
    assert r["energy_distance"] < 5 * r["energy_floor"]
    np.testing.assert_allclose(r["true_weights"], ring.weights.numpy())
    np.testing.assert_allclose(r["mode_weights"], mode_weights(x[4:], ring))
    assert np.isfinite(r["log_likelihood"])
    assert sample_report(x, ring, seed=1)["energy_distance"] == r["energy_distance"]


def test_sample_report_sees_a_bad_sampler(ring):
    x = ring.sample(500, _gen(8)) * 1.5
    r = sample_report(x, ring)
    assert r["energy_distance"] > 10 * r["energy_floor"]


def test_sample_report_of_all_nan_is_a_friendly_error(ring):
    with pytest.raises(DataError, match="NaN"):
        sample_report(np.full((5, 2), np.nan), ring)


def test_score_error_of_the_exact_score_is_zero(ring):
    process = get_process("vp_linear")
    assert mean_score_error(exact_score_fn(ring, process), ring, process, n_t=4) < 1e-10


# ----------------------------------------------------------------------------- memorisation
def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(4)
    x, p = rng.normal(size=(300, 2)), rng.normal(size=(37, 2))
    brute = np.sort(np.linalg.norm(x[:, None] - p[None], axis=2), axis=1)
    assert np.allclose(metrics.nearest_distances(x, p), brute[:, 0])
    assert np.allclose(metrics.nearest_distances(x, p, k=2), brute[:, :2])
    with pytest.raises(DataError):
        metrics.nearest_distances(x, np.zeros((0, 2)))


def test_memorisation_report_tells_copying_from_generalising():
    """Sampling with the exact score of 50 training points (the memorising optimum) piles the
    samples onto those points; exact samples of the true distribution do not."""
    from scoreviz.samplers import SamplerConfig, sample

    dist, proc = get_distribution("eight_gaussians"), get_process("vp_linear")
    train = dist.sample(50, _gen(3), dtype=torch.float64)
    memorising = exact_score_fn(empirical(train), proc)
    traj = sample(memorising, proc, SamplerConfig("pf_ode_heun", 200, 1000, 2, seed=0))
    copied = metrics.memorisation_report(traj.final, train, dist, seed=1)
    fresh = dist.sample(1000, _gen(9), dtype=torch.float64)
    honest = metrics.memorisation_report(fresh, train, dist, seed=1)
    # measured: ratio 0.15 and 76 % copies (chance 9 %) vs ratio 1.00 and 9 %
    assert copied["memorisation_ratio"] < 0.3 and copied["copied_share"] > 0.5
    assert copied["copied_share"] > 4 * copied["fresh_copied_share"]
    assert 0.85 < honest["memorisation_ratio"] < 1.15
    assert abs(honest["copied_share"] - honest["fresh_copied_share"]) < 0.04
    # one training point: no second nearest, so no copy criterion, but distances still work
    one = metrics.memorisation_report(fresh[:10], train[:1], dist)
    assert np.isnan(one["copied_share"]) and one["train_distance"] > 0


# ----------------------------------------------------------------------------- spread ratio
@pytest.mark.parametrize("c", [0.8, 1.0, 1.3])
def test_spread_ratio_of_modes_scaled_by_c_is_c_squared(c):
    """Four modes of width 0.1, 4 apart: x = mu_k + c (x0 - mu_k) has within-mode variance
    c^2 * 2 * 0.1^2 (nearest means assign every point right), fresh samples 2 * 0.1^2."""
    from scoreviz.mixture import GaussianMixture

    means = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]])
    dist = GaussianMixture(means, torch.full((4,), 0.1), torch.tensor([0.1, 0.2, 0.3, 0.4]))
    gen = _gen(3)
    k = torch.multinomial(dist.weights, 20000, replacement=True, generator=gen)
    x0 = dist.means[k] + 0.1 * torch.randn(20000, 2, generator=gen, dtype=torch.float64)
    x = dist.means[k] + c * (x0 - dist.means[k])
    assert metrics.within_mode_variance(x0, dist) == pytest.approx(2 * 0.1**2, rel=0.03)
    assert metrics.spread_ratio(x.numpy(), dist, seed=1) == pytest.approx(c**2, rel=0.04)


def test_sample_report_has_the_spread_ratio(ring):
    fresh = ring.sample(4000, _gen(5))
    r = sample_report(fresh, ring, seed=2)
    assert r["spread_ratio"] == pytest.approx(1.0, abs=0.06)
    wide = sample_report(1.1 * fresh, ring, seed=2)  # radius 2.2, modes stretched too
    assert wide["spread_ratio"] > r["spread_ratio"] * 1.15
