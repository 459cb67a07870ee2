"""DSM loss: the exact score pays exactly the floor, anything else pays more; benign forms agree."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from scoreviz import analysis
from scoreviz.distributions import get_distribution
from scoreviz.errors import ConfigError
from scoreviz.losses import (
    WEIGHTINGS,
    dsm_loss,
    loss_floor,
    output_loss,
    training_floor,
    weight,
)
from scoreviz.models import ModelConfig, build_model
from scoreviz.processes import get_process
from scoreviz.score import exact_score_fn, full_t
from scoreviz.training import sample_times, time_density


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
    "kind, param",
    [("score", "eps"), ("score", "score"), ("score", "x0"), ("score", "v"), ("dae", "eps")],
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
    expected["v"] = s**2 * (a + s) ** 2 / a**2  # ||v_hat - v||^2 = ((a + s)/a)^2 ||eps err||^2
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


def test_v_weighting_is_the_flow_matching_loss():
    """On the linear path the v-MSE weighting is ||v_hat - (eps - x0)||^2: the plain flow-matching
    loss of the pair's straight-line velocity, for a v model and for an eps model alike."""
    process = get_process("linear")
    x0, eps = draw(get_distribution("two_moons"), 256, seed=4)
    t = torch.linspace(process.t_min, 1, 256, dtype=torch.float64)
    for param in ("v", "eps"):
        model = random_model(ModelConfig(parameterization=param, width=32, depth=2), process)
        loss = dsm_loss(model.score, process, x0, t, eps, "v")
        v_hat = model.velocity(process.marginal(x0, t, eps), t)
        assert torch.allclose(loss, ((v_hat - (eps - x0)) ** 2).sum(1), rtol=1e-8, atol=0)


def test_unknown_weighting_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="'sigma2'.*'min_snr'"):
        weight("snr", get_process("ve"), torch.tensor([0.5]))
    assert set(WEIGHTINGS) == {"sigma2", "one", "x0", "min_snr", "v"}


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


# ----------------------------------------------------------------------------- exact floors
# Reference maths in numpy: the schedule above, the mixture posterior below, the outer
# expectation over x_t ~ p_t by Gauss-Hermite quadrature per component (no sampling), and a
# trapezoid on a very fine t grid. The numbers: the first bin under lambda = 1 was drawn
# at 0.63x on vp_linear, 0.18x on sub-VP; the training average at 0.25x and 0.015x.
PROCESSES = ["vp_linear", "vp_cosine", "ve", "sub_vp"]
N_MC = 1024


def _floor_one_np(dist, name: str, t: np.ndarray, n_gh: int = 16, chunk: int = 100) -> np.ndarray:
    """lambda = 1 floor alpha^2/sigma^4 E tr Cov[X0 | x_t] at each t (numpy, float64)."""
    mu, s2 = dist.means.numpy(), dist.stds.numpy() ** 2
    w = dist.weights.numpy()
    z, gw = np.polynomial.hermite_e.hermegauss(n_gh)  # nodes for N(0, 1), weights sum sqrt(2 pi)
    y = np.stack(np.meshgrid(z, z), -1).reshape(-1, 2)
    wy = np.outer(gw, gw).ravel() / (2 * np.pi)
    out = []
    for i in range(0, len(t), chunk):
        a, s = _schedule_np(name, t[i : i + chunk])
        a3, s3 = a[:, None, None], s[:, None, None]
        v = a3**2 * s2 + s3**2  # (T, 1, K): x_t | k ~ N(alpha mu_k, v_k I)
        # quadrature points x (T, K*G, 2): each component's G points, weight w_k wy_g
        sd = np.sqrt(v)[:, 0, :, None, None]  # (T, K, 1, 1)
        x = (a[:, None, None, None] * mu[:, None, :] + sd * y).reshape(len(a), -1, 2)
        pw = (w[:, None] * wy).ravel()
        d2 = ((x[:, :, None, :] - a[:, None, None, None] * mu) ** 2).sum(-1)  # (T, P, K)
        logr = np.log(w) - d2 / (2 * v) - np.log(v)
        r = np.exp(logr - logr.max(-1, keepdims=True))
        r /= r.sum(-1, keepdims=True)
        m_k = mu + (a3 * s2 / v)[..., None] * (x[:, :, None, :] - a[:, None, None, None] * mu)
        m = (r[..., None] * m_k).sum(2)
        var_k = s2 * s3**2 / v  # per coordinate
        tr = (r * (2 * var_k + ((m_k - m[:, :, None, :]) ** 2).sum(-1))).sum(-1)
        out.append(a**2 / s**4 * (tr * pw).sum(1))
    return np.concatenate(out)


def _lambda_np(name: str, w: str, t: np.ndarray) -> np.ndarray:
    a, s = _schedule_np(name, t)
    snr = a**2 / s**2
    return {
        "sigma2": s**2,
        "one": np.ones_like(s),
        "x0": s**4 / a**2,
        "min_snr": np.minimum(snr, 5.0) * s**4 / a**2,
        # v - v_hat = (1 + sigma/alpha)(eps - eps_hat) and eps_hat - eps = -sigma (s + eps/sigma)
        "v": s**2 * (a + s) ** 2 / a**2,
    }[w]


@pytest.fixture(scope="module")
def reference_floors():
    """Per process: (fine grid incl. 20 bin edges, lambda = 1 floor on it, the edges)."""
    dist = get_distribution("eight_gaussians")
    out = {}
    for name in PROCESSES:
        t_min = get_process(name).t_min
        edges = np.linspace(t_min, 1.0, 21)
        geo = t_min + np.geomspace(1e-9, 1 - t_min, 800)
        grid = np.unique(np.concatenate([np.linspace(t_min, 1, 800), geo, edges]))
        out[name] = (grid, _floor_one_np(dist, name, grid), edges)
    return dist, out


def _trapezoid(y: np.ndarray, t: np.ndarray) -> float:
    return float(((y[1:] + y[:-1]) / 2 * np.diff(t)).sum())


@pytest.mark.slow  # the float64 quadrature reference: ~10 s of CPU for the four processes
@pytest.mark.parametrize("name", PROCESSES)
def test_training_floor_is_the_t_average_of_the_floor(reference_floors, name):
    """The dashed line on the loss charts, E_q L*(t) for training's t density q, every weighting,
    within 1 %. uniform: (1/(1 - t_min)) int L* dt; mixed: half that, half the average of L* over
    u = log sigma_t uniform (trapezoid with log sigma as the variable)."""
    dist, refs = reference_floors
    grid, one, _ = refs[name]
    process = get_process(name)
    log_sigma = np.log(_schedule_np(name, grid)[1])
    mixed = functools.partial(time_density, process, scheme="mixed")
    for w in WEIGHTINGS:
        y = _lambda_np(name, w, grid) * one
        uniform = _trapezoid(y, grid) / (1 - process.t_min)
        per_log_sigma = _trapezoid(y, log_sigma) / (log_sigma[-1] - log_sigma[0])
        got = training_floor(dist, process, w, n_mc=N_MC)
        assert got == pytest.approx(uniform, rel=0.01), (name, w)
        got = training_floor(dist, process, w, density=mixed, n_mc=N_MC)
        assert got == pytest.approx((uniform + per_log_sigma) / 2, rel=0.01), (name, w)


@pytest.mark.slow  # the float64 quadrature reference: ~10 s of CPU for the four processes
@pytest.mark.parametrize("name", PROCESSES)
def test_floor_per_bin_and_its_curve_match_the_reference(reference_floors, name):
    """Loss-vs-t page: each bin's floor is the bin average of L*(t) (< 1 %, the steep first bin
    included), and the drawn curve is L*(t) itself at its nodes."""
    dist, refs = reference_floors
    grid, one, edges = refs[name]
    process = get_process(name)
    curve, by_bin = analysis.floor_by_bin(dist, process, list(WEIGHTINGS), edges, n_mc=N_MC)
    for w in WEIGHTINGS:
        y = _lambda_np(name, w, grid) * one
        ref = [
            _trapezoid(y[(grid >= lo) & (grid <= hi)], grid[(grid >= lo) & (grid <= hi)])
            / (hi - lo)
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
        got = by_bin[by_bin["weighting"] == w].sort_values("bin")["floor"].to_numpy()
        np.testing.assert_allclose(got, ref, rtol=0.01, err_msg=f"{name} {w}")
        c = curve[curve["weighting"] == w]
        t = c["t"].to_numpy()
        expected = _lambda_np(name, w, t) * _floor_one_np(dist, name, t)
        # pointwise, the QMC estimate of E_x_t is within ~1.2 % where posteriors switch modes
        np.testing.assert_allclose(c["floor"].to_numpy(), expected, rtol=0.015)


@pytest.mark.parametrize("scheme", ["uniform", "mixed", "log_sigma"])
@pytest.mark.parametrize("name", PROCESSES)
def test_exact_score_training_loss_averages_to_the_drawn_floor(name, scheme):
    """What training would measure with the exact score (sample_times + dsm_loss, batch means)
    agrees with training_floor within 3 standard errors, under every weighting."""
    dist, process = get_distribution("eight_gaussians"), get_process(name)
    exact = exact_score_fn(dist, process)
    density = functools.partial(time_density, process, scheme=scheme)
    gen = torch.Generator().manual_seed(7)
    means = {w: [] for w in WEIGHTINGS}
    for _ in range(48):
        t = sample_times(2048, process, gen, scheme)
        x0 = dist.sample(2048, generator=gen, dtype=torch.float64)
        eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        for w in WEIGHTINGS:
            means[w].append(float(dsm_loss(exact, process, x0, t, eps, w).mean()))
    for w, m in means.items():
        mc, se = np.mean(m), np.std(m, ddof=1) / np.sqrt(len(m))
        drawn = training_floor(dist, process, w, density=density)
        assert abs(mc - drawn) < 3 * se, (name, w, mc, se, drawn)
