"""The built-in distributions: registry, standardisation, and the promises their docstrings make."""

import math

import numpy as np
import pytest
import torch

from scoreviz import distributions as D
from scoreviz.distributions import DISTRIBUTIONS, distribution_labels, get_distribution
from scoreviz.errors import ConfigError
from scoreviz.mixture import GaussianMixture

NAMES = list(DISTRIBUTIONS)


def test_registry_labels():
    labels = distribution_labels()
    assert list(labels) == NAMES and len(NAMES) >= 10
    for name, label in labels.items():
        assert isinstance(label, str) and label.strip(), name
    assert len(set(labels.values())) == len(labels)  # select-box labels are distinguishable


@pytest.mark.parametrize("name", NAMES)
def test_standardised_mean_zero_unit_spread(name):
    dist = get_distribution(name)
    assert isinstance(dist, GaussianMixture)
    torch.testing.assert_close(dist.mean(), torch.zeros(2, dtype=torch.float64), atol=1e-12, rtol=0)
    assert math.sqrt(float(torch.trace(dist.cov())) / 2) == pytest.approx(1.0, abs=1e-12)
    assert float(dist.stds.min()) > 0  # a density exists at sigma = 0
    assert float(dist.weights.sum()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_standardisation_checked_by_sampling(name):
    """Independent of `cov()`: the sample spread of 50k draws is 1 within MC error."""
    x = get_distribution(name).sample(50_000, generator=torch.Generator().manual_seed(0))
    x = x.double()
    assert float(x.mean(0).abs().max()) < 0.025
    assert math.sqrt(float(x.var(0).sum()) / 2) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("name", NAMES)
def test_curves_are_smooth_bands(name):
    """Neighbouring components are closer than two widths, so density ripples stay < ~2 %.

    (Sum of Gaussians of width s spaced d apart ripples by ~2 exp(-2 pi^2 s^2 / d^2).)
    Skipped for the distributions made of separate modes.
    """
    dist = get_distribution(name)
    if dist.n_components < 50:
        pytest.skip("separate modes, not a chain")
    d = torch.cdist(dist.means, dist.means)
    d.fill_diagonal_(float("inf"))
    nn = d.min(1).values
    assert float((nn / dist.stds).max()) <= 2.0 + 1e-9


def test_get_distribution_is_cached():
    assert get_distribution("rings") is get_distribution("rings")


def test_unknown_distribution_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        get_distribution("banana")
    msg = str(err.value)
    assert "'banana'" in msg
    for name in NAMES:
        assert repr(name) in msg
    assert isinstance(err.value, ValueError)


def test_skewed_weights():
    dist = get_distribution("skewed")
    w = sorted(dist.weights.tolist(), reverse=True)
    assert w == pytest.approx([0.8, 0.2], abs=1e-12)
    # the modes are well separated: > 6 widths apart
    gap = float((dist.means[0] - dist.means[1]).norm())
    assert gap > 6 * float(dist.stds.max())


def test_eight_gaussians_geometry():
    dist = get_distribution("eight_gaussians")
    r = dist.means.norm(dim=1)
    torch.testing.assert_close(r, torch.full_like(r, float(r[0])))  # all on one circle
    torch.testing.assert_close(dist.weights, torch.full((8,), 1 / 8, dtype=torch.float64))


def test_word_has_many_components_and_is_deterministic():
    dist = get_distribution("word")
    assert dist.n_components > 100
    D.text_points.cache_clear()
    again = D._standardise(*D.word())
    assert torch.equal(again.means, dist.means)
    assert torch.equal(again.stds, dist.stds)
    # the ink spans a wide word, not a blob: width > 3 x height
    extent = dist.means.max(0).values - dist.means.min(0).values
    assert float(extent[0]) > 3 * float(extent[1])


def test_text_points_respects_max_points():
    pts = D.text_points("SCORE", max_points=100)
    assert pts.shape == (100, 2)
    assert np.isfinite(pts).all()


@pytest.mark.parametrize("name", NAMES)
def test_builders_return_consistent_arrays(name):
    means, stds, weights = DISTRIBUTIONS[name][1]()
    k = len(means)
    assert np.shape(means) == (k, 2) and np.shape(stds) == (k,) and np.shape(weights) == (k,)
    assert np.all(np.asarray(stds) > 0) and np.all(np.asarray(weights) > 0)
