"""Guidance (issue 24): the guided score against autograd of its log-density, the tilted
density's normaliser against closed forms and Monte Carlo, and what the Guidance page shows."""

import math

import numpy as np
import pytest
import torch

from scoreviz.distributions import get_distribution
from scoreviz.errors import ConfigError
from scoreviz.figures.dots import image_points
from scoreviz.figures.guidance import curve_figure, guidance_figure, shares_figure
from scoreviz.figures.raster import is_image
from scoreviz.pipelines import guidance as G
from scoreviz.problem import Problem
from scoreviz.processes import get_process
from scoreviz.score import full_t, guided_score_fn

SMALL = dict(n_particles=300, n_steps=40)


def test_guided_score_is_the_gradient_of_the_tilted_noised_log_density():
    """s_u + w (s_c - s_u) = grad [w log p_t(x|c) + (1 - w) log p_t(x)] (autograd of the mixture's
    log-densities) at several t and w, and the ends w = 0, 1 are s_u and s_c."""
    dist, process = get_distribution("two_moons"), get_process("vp_linear")
    problem = Problem.builtin("two_moons", "vp_linear")
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for t in (0.05, 0.3, 0.8):
        tt64 = torch.tensor(t, dtype=torch.float64)
        a, s = float(process.alpha(tt64)), float(process.sigma(tt64))
        tt = full_t(t, len(x), torch.float64)
        for w in (0.0, 0.5, 1.0, 3.0):
            y = x.clone().requires_grad_(True)
            log_q = w * dist.given(1).log_prob(y, a, s) + (1 - w) * dist.log_prob(y, a, s)
            (expected,) = torch.autograd.grad(log_q.sum(), y)
            got = G.guided_exact(problem, 1, w)(x, tt)
            torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(G.guided_exact(problem, 1, 0.0)(x, tt), dist.score(x, a, s))
        torch.testing.assert_close(
            G.guided_exact(problem, 1, 1.0)(x, tt), dist.given(1).score(x, a, s)
        )


def test_guided_score_formula_on_plain_functions():
    su = lambda x, t: torch.ones_like(x)  # noqa: E731
    sc = lambda x, t: 3 * torch.ones_like(x)  # noqa: E731
    x = torch.zeros(4, 2)
    assert torch.equal(guided_score_fn(su, sc, 2.5)(x, None), torch.full((4, 2), 6.0))


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0, 2.0, 3.0])
def test_tilted_normaliser_of_separated_modes_is_pi_to_the_one_minus_w(w):
    """Eight well-separated Gaussians: near mode c, p(x) = pi_c p(x|c), and p(x|c)^w ~ 0 near
    the others (w > 0), so Z_w = pi_c^(1 - w); at w = 0 the tilted density is p itself, Z = 1."""
    dist = get_distribution("eight_gaussians")
    tl = G.tilted_density(dist, 2, w)
    assert math.exp(tl.log_z) == pytest.approx(1.0 if w == 0 else 0.125 ** (1 - w), rel=0.01)
    assert float(tl.density.sum()) * tl.cell**2 == pytest.approx(1.0, rel=1e-9)
    expected = np.full(8, 0.125) if w == 0 else np.eye(8)[2]
    np.testing.assert_allclose(tl.class_mass, expected, atol=0.002)


def test_tilted_normaliser_matches_monte_carlo():
    """Z_w = E_{x ~ p(x|c)} [(p(x) / p(x|c))^(1 - w)], from 50,000 exact class samples (the
    ratio p / p(x|c) is at least pi_c = 1/2, so the average converges fast)."""
    dist = get_distribution("two_moons")
    part = dist.given(0)
    x = part.sample(50_000, torch.Generator().manual_seed(1), dtype=torch.float64)
    for w in (0.5, 2.0, 4.0):
        mc = torch.exp((1 - w) * (dist.log_prob(x) - part.log_prob(x))).mean()
        assert math.exp(G.tilted_density(dist, 0, w).log_z) == pytest.approx(float(mc), rel=0.02)


def test_tilted_samples_follow_the_gridded_density():
    tl = G.tilted_density(get_distribution("skewed"), 1, 0.5)
    x = G.tilted_samples(tl, 20_000, seed=0)
    xx, yy = np.meshgrid(tl.xs, tl.ys)
    mean = np.array([(tl.density * xx).sum(), (tl.density * yy).sum()]) * tl.cell**2
    np.testing.assert_allclose(x.mean(0), mean, atol=0.02)


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError):
        G.GuidanceSettings(w=-1.0)
    with pytest.raises(ConfigError):
        G.GuidanceSettings(sampler="heun")
    with pytest.raises(ConfigError):
        G.guidance_view(Problem.builtin("rings", "vp_linear"), G.GuidanceSettings(c=2, **SMALL))


def test_at_w_one_exact_guidance_samples_the_class_and_at_zero_the_whole():
    problem = Problem.builtin("eight_gaussians", "vp_linear")
    one = G.guidance_view(problem, G.GuidanceSettings(c=3, w=1.0, **SMALL))
    assert one.learned is None and one.learned_shares is None
    assert one.exact_shares[3] > 0.97
    assert one.ratio < 4  # the conditional score samples p(x | c) = the tilted density at w = 1
    zero = G.guidance_view(problem, G.GuidanceSettings(c=3, w=0.0, **SMALL))
    np.testing.assert_allclose(zero.exact_shares, 0.125, atol=0.06)


def test_weak_guidance_is_not_the_tilted_density():
    """w = 0.5: the tilted density has ~all its mass in class c, the guided samples leak."""
    problem = Problem.builtin("two_moons", "vp_linear")
    for seed in (0, 1):
        v = G.guidance_view(problem, G.GuidanceSettings(c=0, w=0.5, seed=seed, n_steps=40))
        assert v.tilted_shares[0] > 0.99
        assert v.exact_shares[0] < v.tilted_shares[0] - 0.03  # 3-8 % land on the other moon
        assert v.ratio > 4  # 1,000 points: the floor is ~0.005


def test_the_same_seed_drives_learned_and_exact(monkeypatch):
    """With a 'learned' guided score that is the exact one, both panels are the same samples."""
    problem = Problem.builtin("rings", "vp_linear")
    monkeypatch.setattr(G, "guided_learned", G.guided_exact)
    v = G.guidance_view(problem, G.GuidanceSettings(c=1, w=2.0, **SMALL))
    np.testing.assert_array_equal(v.learned, v.exact)


def test_figures_draw_what_the_view_holds(monkeypatch):
    problem = Problem.builtin("rings", "vp_linear")
    monkeypatch.setattr(G, "guided_learned", G.guided_exact)
    v = G.guidance_view(problem, G.GuidanceSettings(c=0, w=2.0, **SMALL))
    fig = guidance_figure(v)
    images = [im for im in fig.layout.images]
    assert sum(1 for im in images if im.name == "tilted density") == 1
    exact = next(im for im in images if im.name == "exact guided (DDPM)")
    np.testing.assert_allclose(image_points(exact.to_plotly_json()), v.exact, atol=2e-3)
    assert all(is_image(im.to_plotly_json()) for im in images)
    bars = shares_figure(v)
    assert [b.name for b in bars.data] == ["exact guided", "learned guided", "tilted density"]
    np.testing.assert_allclose(bars.data[2].y, np.round(v.tilted_shares, 4))
    curve = G.guidance_curve(problem.exact(), 0, ws=(0.0, 1.0, 3.0), n=150, n_steps=30)
    assert set(curve.ratio) == set(G.GUIDANCE_SAMPLERS)
    assert curve.tilted_share[1] == pytest.approx(1.0, abs=0.01)
    cfig = curve_figure(curve, 1.0)
    assert len(cfig.data) == 5
