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
from scoreviz.mixture import GaussianMixture
from scoreviz.quality import CLOSE, CLOSE_ENERGY, WELL, WELL_ENERGY, Quality, assess

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
