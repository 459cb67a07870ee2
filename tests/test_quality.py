"""quality.assess: nats lost and the diagnosis, checked with score functions whose answer is known.

The exact score loses nothing; the exact score of the eight Gaussians without one of them misses
exactly that mode (1/8 of the mass, at its place); the exact score of a blurred copy puts
samples where the data has no mass.
"""

from __future__ import annotations

import math

import pytest
import torch

from scoreviz import exact_score_fn, get_distribution, get_process, quality
from scoreviz.losses import WEIGHTING_HELP, WEIGHTINGS, eps_weight_skew, weighting_note
from scoreviz.mixture import GaussianMixture
from scoreviz.quality import CLOSE, CLOSE_ENERGY, WELL, WELL_ENERGY, Quality, assess
from scoreviz.training import TrainConfig

PROC = get_process("vp_linear")
RING = get_distribution("eight_gaussians")


def test_the_exact_score_loses_nothing_and_is_learned_well():
    q = assess(exact_score_fn(RING, PROC), RING, PROC)
    assert q.nats_lost == pytest.approx(0.0, abs=1e-12)
    assert q.verdict == "learned well" and q.diagnosis() == ""
    assert q.energy_ratio < 3 and q.n == 2000 * q.seeds and q.seeds == quality.N_SEEDS
    assert q.strays == q.expected_strays and q.nats_spread == 0.0
    assert "0.00 nats lost" in q.summary()


def test_a_missing_mode_is_found_where_it_is():
    keep = torch.arange(1, 8)
    seven = GaussianMixture(RING.means[keep], RING.stds[keep], RING.weights[keep])
    q = assess(exact_score_fn(seven, PROC), RING, PROC)
    assert q.verdict == "keep training"
    # nats lost cannot see it (the other seven modes are sampled perfectly); the energy can
    assert q.nats_lost < WELL and q.energy_ratio > CLOSE_ENERGY
    # the missing mode's share, 1/8, falls on one to three cells of the coarse grid
    assert 0.03 <= q.missing_share <= 0.13
    x, y = q.missing_at
    assert math.hypot(x - float(RING.means[0, 0]), y - float(RING.means[0, 1])) < 0.8
    assert "gets" in q.diagnosis() and "too few samples" in q.diagnosis()


def test_a_blurred_model_puts_samples_where_the_data_has_no_mass():
    blurred = GaussianMixture(RING.means, RING.stds * 3, RING.weights)
    q = assess(exact_score_fn(blurred, PROC), RING, PROC)
    assert q.nats_lost > CLOSE and q.verdict == "keep training"
    assert q.off_data > 0.1
    assert "no mass" in q.diagnosis()


@pytest.mark.parametrize(
    "nats, energy, verdict",
    [
        (0.0, 1.0, "learned well"),
        (WELL, WELL_ENERGY, "learned well"),
        (0.2, 1.0, "close"),
        (0.0, 5.0, "close"),
        (1.0, 1.0, "keep training"),
        (0.0, 20.0, "keep training"),
    ],
)
def test_verdict_needs_both_nats_and_energy(nats, energy, verdict):
    q = Quality(nats, energy, 0.01, 0.01, 0.0, (0.0, 0.0), 2000)
    assert q.verdict == verdict


def test_a_diverged_model_is_reported_not_raised():
    q = assess(lambda x, t: torch.full_like(x, float("nan")), RING, PROC)
    assert q.verdict == "keep training" and q.n == 0 and math.isinf(q.nats_lost)
    assert "diverged" in q.summary() and "infinity" in q.diagnosis()


def test_exact_samples_are_kept_per_data_and_large_mixtures_use_fewer_particles(monkeypatch):
    import scoreviz.quality as quality
    from scoreviz.mixture import empirical

    calls = []
    real = quality.sample
    monkeypatch.setattr(quality, "sample", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    exact = exact_score_fn(RING, PROC)
    assess(exact, RING, PROC, cache_key=("eight_gaussians", "vp_linear", "test"))
    assess(exact, RING, PROC, cache_key=("eight_gaussians", "vp_linear", "test"))
    assert len(calls) == 3 * quality.N_SEEDS  # exact once, then the "learned" score twice
    big = empirical(torch.randn(2000, 2, generator=torch.Generator().manual_seed(0)), 0.05)
    assert quality.n_samples(big) == 500 and quality.n_samples(RING) == 2000


def test_strays_are_counted_against_the_exact_scores_own():
    """The exact score of the eight Gaussians plus a 1 % component at (6, 0), far from the data:
    its samples put ~1 % of the points where the data's log-density is below its own 0.1 %
    quantile; the exact score of the data itself puts ~0.1 % there."""
    far = GaussianMixture(
        torch.cat([RING.means, torch.tensor([[6.0, 0.0]], dtype=RING.means.dtype)]),
        torch.cat([RING.stds, RING.stds[:1]]),
        torch.cat([RING.weights * 0.99, torch.tensor([0.01], dtype=RING.weights.dtype)]),
    )
    q = assess(exact_score_fn(far, PROC), RING, PROC)
    excess = q.strays - q.expected_strays
    assert 0.006 * q.n <= excess <= 0.015 * q.n
    assert q.expected_strays <= 0.005 * q.n
    assert q.verdict != "learned well"
    assert f"{q.strays:,} of {q.n:,} samples far from the data" in q.summary()


def test_the_wording_never_says_zero_percent_too_few():
    """Issue 20: 'the data near (..) gets 0% too few samples' when the energy alone was high."""
    q = Quality(0.05, 5.0, 0.01, 0.01, 0.001, (0.5, -1.0), 2000)
    assert "0%" not in q.diagnosis() and "gets too few samples" in q.diagnosis()
    q = Quality(0.05, 5.0, 0.01, 0.01, 0.12, (0.5, -1.0), 2000)
    assert "(12% of all samples short)" in q.diagnosis()


def test_stray_text_counts_strays_in_words():
    old = Quality(0.05, 1.0, 0.01, 0.01, 0.0, (0.0, 0.0), 2000)  # stored before strays counted
    assert old.stray_text() == "" and "far from the data" not in old.summary()
    q = Quality(0.05, 1.0, 0.01, 0.01, 0.0, (0.0, 0.0), 6000, strays=3, expected_strays=1)
    assert q.stray_text() == "3 of 6,000 samples far from the data (the exact score: 1)"
    none = Quality(0.0, 1.0, 0.01, 0.01, 0.0, (0, 0), 6000, strays=0)
    assert none.stray_text().startswith("none of 6,000")
    many = Quality(0.05, 1.0, 0.01, 0.01, 0.0, (0.0, 0.0), 6000, strays=70, expected_strays=10)
    assert many.verdict == "close" and "far from the data" in many.diagnosis()
    assert many.summary().count("70 of 6,000") == 1


def test_a_memorising_model_is_told_it_memorised_not_to_keep_training():
    """Issue 20: a 20-point model was told to 'keep training'; training longer memorises more."""
    cause, note = quality.cause_of(TrainConfig(n_train=20))
    q = Quality(1.5, 9.0, 0.2, 0.01, 0.1, (0.0, 0.0), 6000, cause=cause, note=note)
    assert q.verdict == "memorised its training points"
    assert "20 fixed points" in q.summary() and "memorises" in q.summary()
    assert "keep training" not in q.summary()
    # the same numbers from infinite data are a model that needs more training
    assert quality.cause_of(TrainConfig()) == ("", "")
    assert Quality(1.5, 9.0, 0.2, 0.01, 0.1, (0.0, 0.0), 6000).verdict == "keep training"
    # a model that learned well from a large fixed set is just learned well
    good = Quality(0.02, 1.0, 0.01, 0.01, 0.0, (0, 0), 6000, cause=cause, note=note)
    assert good.verdict == "learned well" and good.diagnosis() == ""


def test_lambda_one_is_told_where_its_weight_goes():
    """lambda = 1 weighs the eps-MSE by 1/sigma^2: (sigma(1)/sigma(t_min))^2 ~ 10^4 on VP linear,
    so the verdict says the high-noise score was never learned, with that number."""
    cause, note = quality.cause_of(TrainConfig(weighting="one"))
    assert cause == "weighting_high" and "~10⁴× the weight on the smallest noise level" in note
    assert "never learned" in note
    sigma = PROC.sigma(torch.tensor([PROC.t_min, 1.0], dtype=torch.float64))
    assert eps_weight_skew("one", PROC) == pytest.approx(float(sigma[1] / sigma[0]) ** 2)
    assert eps_weight_skew("sigma2", PROC) == pytest.approx(1.0)
    assert weighting_note("sigma2", PROC) == ""
    q = Quality(2.0, 9.0, 0.2, 0.01, 0.1, (0.0, 0.0), 6000, cause=cause, note=note)
    assert q.verdict == "high noise not learned" and note in q.summary()
    assert "10⁴×" in WEIGHTING_HELP["one"] and "never learned" in WEIGHTINGS["one"]
    # the x0-MSE weighting is lopsided the other way: the fine detail is what it misses
    cause, note = quality.cause_of(TrainConfig(weighting="x0"))
    assert cause == "weighting_low" and "the largest noise level" in note
    assert Quality(2.0, 9.0, 0.2, 0.01, 0.1, (0, 0), 6000, cause=cause).verdict == (
        "fine detail not learned"
    )
