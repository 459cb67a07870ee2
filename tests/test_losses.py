"""DSM loss: the exact score pays exactly the floor, anything else pays more; benign forms agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scoreviz.distributions import get_distribution
from scoreviz.errors import ConfigError
from scoreviz.losses import WEIGHTINGS, dsm_loss, loss_floor, output_loss, weight
from scoreviz.models import ModelConfig, build_model
from scoreviz.processes import get_process
from scoreviz.score import exact_score_fn, full_t


def draw(dist, n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x0 = dist.sample(n, generator=gen, dtype=torch.float64)
    return x0, torch.randn(x0.shape, generator=gen, dtype=torch.float64)


def random_model(config: ModelConfig, process):
    model = build_model(config, process, seed=3)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        model.net.out.weight.copy_(0.3 * torch.randn(model.net.out.weight.shape, generator=gen))
    model.net.double()
    return model


def paired_excess(loss_fn, exact, process, x0, t, eps, weighting):
    """Mean and standard error of loss(perturbed) - loss(exact) on the same samples."""
    d = dsm_loss(loss_fn, process, x0, t, eps, weighting) - dsm_loss(
        exact, process, x0, t, eps, weighting
    )
    return float(d.mean()), float(d.std()) / math.sqrt(len(d))


@pytest.mark.parametrize("process_name", ["vp_linear", "ve"])
@pytest.mark.parametrize("weighting", ["sigma2", "min_snr"])
def test_exact_score_pays_exactly_the_floor_and_a_perturbed_one_pays_more(process_name, weighting):
    dist, process = get_distribution("eight_gaussians"), get_process(process_name)
    exact = exact_score_fn(dist, process)
    ts = [0.05, 0.3, 0.8]
    floor = loss_floor(dist, process, torch.tensor(ts), weighting, n_mc=16384, seed=1)
    rot = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)  # 90 degrees
    for i, t_val in enumerate(ts):
        x0, eps = draw(dist, 8000, seed=10 + i)
        t = full_t(t_val, len(x0), dtype=torch.float64)
        loss = dsm_loss(exact, process, x0, t, eps, weighting)
        se = float(loss.std()) / math.sqrt(len(loss))
        assert abs(float(loss.mean()) - float(floor[i])) < 4 * se + 0.02 * float(floor[i])
        # E[loss(s + d)] - E[loss(s*)] = lambda E||d||^2 > 0: checked on paired samples
        sigma = float(process.sigma(torch.tensor(t_val)))
        for worse in (lambda x, t: exact(x, t) + 0.2 / sigma, lambda x, t: exact(x, t) @ rot):
            excess, se_d = paired_excess(worse, exact, process, x0, t, eps, weighting)
            assert excess > 5 * se_d and excess > 0


def test_sigma2_weighting_is_the_eps_mse():
    """sigma^2 ||s + eps/sigma||^2 = ||eps_hat - eps||^2 for s = -eps_hat/sigma (float64)."""
    process = get_process("vp_linear")
    model = random_model(ModelConfig(parameterization="eps", width=32, depth=2), process)
    x0, eps = draw(get_distribution("two_moons"), 512, seed=0)
    t = torch.linspace(process.t_min, 1, 512, dtype=torch.float64)
    loss = dsm_loss(model.score, process, x0, t, eps, "sigma2")
    eps_hat = model.eps(process.marginal(x0, t, eps), t)
    assert torch.allclose(loss, ((eps_hat - eps) ** 2).sum(1), rtol=1e-10, atol=0)
    assert loss.shape == (512,) and loss.min() > 0


def test_x0_weighting_is_the_x0_mse():
    process = get_process("vp_cosine")
    model = random_model(ModelConfig(parameterization="x0", width=32, depth=2), process)
    x0, eps = draw(get_distribution("grid"), 256, seed=1)
    t = torch.linspace(0.05, 0.95, 256, dtype=torch.float64)
    loss = dsm_loss(model.score, process, x0, t, eps, "x0")
    x0_hat = model.denoise(process.marginal(x0, t, eps), t)
    assert torch.allclose(loss, ((x0_hat - x0) ** 2).sum(1), rtol=1e-9, atol=0)


@pytest.mark.parametrize("weighting", list(WEIGHTINGS))
@pytest.mark.parametrize(
    "kind, param", [("score", "eps"), ("score", "score"), ("score", "x0"), ("dae", "eps")]
)
def test_training_form_equals_dsm_loss(kind, param, weighting):
    """`output_loss` (what training minimises) is the DSM loss without the 1/sigma blow-up."""
    process = get_process("sub_vp")
    model = random_model(ModelConfig(kind=kind, parameterization=param, width=32), process)
    x0, eps = draw(get_distribution("eight_gaussians"), 300, seed=2)
    t = torch.linspace(process.t_min, 1, 300, dtype=torch.float64)
    t_loss = full_t(model.dae_t, 300, torch.float64) if kind == "dae" else t
    expected = dsm_loss(model.score_with_grad, process, x0, t_loss, eps, weighting)
    got = output_loss(model, x0, t, eps, weighting)
    assert torch.allclose(got, expected, rtol=1e-8, atol=0)
    assert got.requires_grad


def _schedule_np(name: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, sigma) of the default processes, written out in numpy (independent of scoreviz)."""
    if name == "ve":
        return np.ones_like(t), 0.01 * 1000.0**t
    if name == "vp_cosine":
        phi = lambda u: (0.9937 * u + 0.008) / 1.008 * np.pi / 2  # noqa: E731
        a2 = np.cos(phi(t)) ** 2 / np.cos(phi(0.0)) ** 2
        return np.sqrt(a2), np.sqrt(1 - a2)
    a2 = np.exp(-(0.1 * t + 0.5 * 19.9 * t**2))  # vp_linear and sub_vp share alpha
    return np.sqrt(a2), (1 - a2) if name == "sub_vp" else np.sqrt(1 - a2)


@pytest.mark.parametrize("process_name", ["vp_linear", "vp_cosine", "ve", "sub_vp"])
def test_weight_formulas(process_name):
    """Every weighting against its definition in numpy; Min-SNR-5 as Hang et al. define it: the
    x0-MSE (lambda_x0 = sigma^4/alpha^2) weighted by min(SNR, 5)."""
    process = get_process(process_name)
    t_np = np.array([0.001, 0.01, 0.036, 0.1, 0.3, 0.6, 0.823, 0.95])
    t = torch.tensor(t_np, dtype=torch.float64)
    a, s = _schedule_np(process_name, t_np)
    snr = a**2 / s**2
    lam_x0 = s**4 / a**2  # ||x0_hat - x0||^2 = (sigma^4/alpha^2) ||s + eps/sigma||^2
    expected = {"sigma2": s**2, "one": np.ones_like(s), "x0": lam_x0}
    expected["min_snr"] = np.minimum(snr, 5.0) * lam_x0
    for w in WEIGHTINGS:
        np.testing.assert_allclose(weight(w, process, t).numpy(), expected[w], rtol=1e-9)
    assert snr.max() > 5 > snr.min()  # both branches of min(SNR, 5) are exercised
    # the two measured points: the high-noise branch is sigma^2 (eps-MSE), not ~0
    if process_name == "sub_vp":
        assert float(weight("min_snr", process, t)[6]) == pytest.approx(s[6] ** 2, rel=1e-9)
        assert s[6] ** 2 > 0.99
    if process_name == "ve":
        assert float(weight("min_snr", process, t)[2]) == pytest.approx(1.35e-7, rel=0.01)
    assert weight("sigma2", process, torch.tensor([0.5])).dtype == torch.float32


def test_unknown_weighting_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="'sigma2'.*'min_snr'"):
        weight("snr", get_process("ve"), torch.tensor([0.5]))
    assert set(WEIGHTINGS) == {"sigma2", "one", "x0", "min_snr"}


def test_loss_floor_is_deterministic_by_seed_and_sensible():
    dist, process = get_distribution("eight_gaussians"), get_process("vp_linear")
    t = torch.linspace(0.01, 1, 9)
    a = loss_floor(dist, process, t, n_mc=1024, seed=0)
    assert torch.equal(a, loss_floor(dist, process, t, n_mc=1024, seed=0))
    assert not torch.equal(a, loss_floor(dist, process, t, n_mc=1024, seed=1))
    assert a.shape == (9,) and (a > 0).all()
    # sigma2 floor = E||eps - E[eps|x_t]||^2 <= E||eps||^2 = 2: near 2 at small sigma (x_t ~ x0
    # says little about eps), near 0 at t = 1 (x_t ~ sigma eps gives eps away), decreasing.
    assert (a <= 2.0 + 1e-9).all() and a[0] > 1.5 and a[-1] < 0.01
    assert (a[1:] < a[:-1]).all()
