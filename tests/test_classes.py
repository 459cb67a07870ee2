"""Classes of the built-ins: p(x | c) and p(x) are exact mixtures at every noise level.

Oracles: an independent log-density written here from the means, widths, weights and labels
(log-sum-exp over the class's components, nothing from `GaussianMixture`), differentiated by
autograd for the scores; Bayes' rule for P(c | x); the posterior-weighted average of the
conditional scores for the unconditional one.
"""

import math

import pytest
import torch

from scoreviz.distributions import CLASSES, DISTRIBUTIONS, get_distribution
from scoreviz.errors import DataError
from scoreviz.mixture import GaussianMixture, empirical

NAMES = list(DISTRIBUTIONS)
LEVELS = [(1.0, 0.02), (0.9, 0.3), (0.4, 0.9), (1.0, 1.5)]


def _log_density(dist, x, alpha, sigma, keep=None):
    """log sum_{k in keep} w_k N(x; alpha mu_k, (alpha^2 s_k^2 + sigma^2) I), unnormalised by the
    class weight when `keep` selects one class; written out from the arrays (float64)."""
    mu, s, w = dist.means, dist.stds, dist.weights
    if keep is not None:
        mu, s, w = mu[keep], s[keep], w[keep]
    v = alpha**2 * s**2 + sigma**2
    d2 = ((x[:, None, :] - alpha * mu[None]) ** 2).sum(-1)
    return torch.logsumexp(torch.log(w) - torch.log(2 * math.pi * v) - d2 / (2 * v), dim=1)


def _points(dist, alpha, sigma):
    gen = torch.Generator().manual_seed(3)
    on = dist.sample(96, generator=gen, alpha=alpha, sigma=sigma, dtype=torch.float64)
    return torch.cat([on, (torch.rand(32, 2, generator=gen, dtype=torch.float64) - 0.5) * 5])


def _grad(f, x):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x).sum(), x)
    return g


def test_every_builtin_has_classes():
    assert set(CLASSES) == set(DISTRIBUTIONS)


@pytest.mark.parametrize("name", NAMES)
def test_classes_partition_the_components(name):
    dist = get_distribution(name)
    assert dist.n_classes >= 2
    assert len(set(dist.class_names)) == dist.n_classes
    counts = torch.bincount(dist.labels, minlength=dist.n_classes)
    assert int(counts.sum()) == dist.n_components and int(counts.min()) >= 1
    pi = dist.class_weights()
    assert float(pi.sum()) == pytest.approx(1.0, abs=1e-12)
    for c in range(dist.n_classes):
        part = dist.given(c)
        assert part.n_components == int(counts[c])
        assert float(part.weights.sum()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_conditional_scores_are_autograd_of_the_class_log_density(name):
    dist = get_distribution(name)
    for alpha, sigma in LEVELS:
        x = _points(dist, alpha, sigma)
        for c in range(dist.n_classes):
            keep = dist.labels == c
            expected = _grad(lambda y: _log_density(dist, y, alpha, sigma, keep), x)
            got = dist.given(c).score(x, alpha, sigma)
            torch.testing.assert_close(got, expected, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_unconditional_score_is_autograd_and_the_posterior_average(name):
    dist = get_distribution(name)
    for alpha, sigma in LEVELS:
        x = _points(dist, alpha, sigma)
        expected = _grad(lambda y: _log_density(dist, y, alpha, sigma), x)
        torch.testing.assert_close(dist.score(x, alpha, sigma), expected, rtol=1e-7, atol=1e-7)
        # Bayes: P(c | x) = pi_c p(x | c) / p(x), from the independent densities
        log_px = _log_density(dist, x, alpha, sigma)
        joint = torch.stack(
            [_log_density(dist, x, alpha, sigma, dist.labels == c) for c in range(dist.n_classes)],
            1,
        )  # log (pi_c p(x | c)): the weights were not renormalised
        post = dist.class_posterior(x, alpha, sigma)
        torch.testing.assert_close(post, (joint - log_px[:, None]).exp(), rtol=1e-7, atol=1e-9)
        scores = torch.stack(
            [dist.given(c).score(x, alpha, sigma) for c in range(dist.n_classes)], 1
        )  # (N, C, 2)
        average = (post[:, :, None] * scores).sum(1)
        torch.testing.assert_close(average, expected, rtol=1e-6, atol=1e-6)


def test_mixture_of_the_classes_is_the_whole():
    dist = get_distribution("rings")
    x = _points(dist, 0.8, 0.3)
    pi = dist.class_weights()
    mix = sum(pi[c] * dist.given(c).log_prob(x, 0.8, 0.3).exp() for c in range(2))
    torch.testing.assert_close(mix, dist.log_prob(x, 0.8, 0.3).exp(), rtol=1e-10, atol=0)


def test_word_classes_are_the_letters_left_to_right():
    dist = get_distribution("word")
    assert dist.class_names == tuple("SCORE")
    spans = [(float(dist.given(c).means[:, 0].min()), float(dist.given(c).means[:, 0].max()))
             for c in range(5)]  # fmt: skip
    for (_, right), (left, _) in zip(spans, spans[1:], strict=False):
        assert right < left  # each letter lies wholly left of the next


def test_labelled_samples_are_the_plain_samples_with_their_classes():
    dist = get_distribution("two_moons")
    x, c = dist.sample_labelled(500, torch.Generator().manual_seed(5))
    assert torch.equal(x, dist.sample(500, torch.Generator().manual_seed(5)))
    # each sample's class is the class of the component nearest to it (widths 0.07 apart)
    near = torch.cdist(x.double(), dist.means).argmin(1)
    assert float((dist.labels[near] == c).double().mean()) > 0.97


def test_unlabelled_data_is_one_class():
    dist = empirical(torch.randn(20, 2, generator=torch.Generator().manual_seed(0)), 0.1)
    assert dist.n_classes == 1 and dist.class_names == ("all data",)
    torch.testing.assert_close(dist.class_weights(), torch.ones(1, dtype=torch.float64))
    x = torch.randn(10, 2, dtype=torch.float64)
    torch.testing.assert_close(dist.given(0).score(x, 1.0, 0.2), dist.score(x, 1.0, 0.2))


def test_bad_labels_are_refused():
    means, stds, w = torch.zeros(3, 2), torch.ones(3), torch.ones(3)
    with pytest.raises(DataError):
        GaussianMixture(means, stds, w, torch.tensor([0, 1]))  # one short
    with pytest.raises(DataError):
        GaussianMixture(means, stds, w, torch.tensor([0, 2, 2]))  # class 1 has no component
    with pytest.raises(DataError):
        get_distribution("rings").given(2)
