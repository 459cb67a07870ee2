"""The PF-ODE likelihood against independent formulas: the autograd divergence against the
mixture's closed-form Hessian trace and against finite differences, the exact score's ODE
density against the mixture's log p on every process, RK4's order, and the Likelihood pipeline
(an untrained prior-skip model is exactly the score of N(0, I) data, so its ODE density is the
standard normal's)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from scoreviz import likelihood as L
from scoreviz.distributions import get_distribution
from scoreviz.errors import ConfigError
from scoreviz.mixture import GaussianMixture
from scoreviz.models import ModelConfig, build_model
from scoreviz.pipelines import (
    LikelihoodSettings,
    entropy_estimate,
    likelihood_learned,
    likelihood_truth,
    likelihood_view,
)
from scoreviz.pipelines.likelihood import heldout_points, likelihood_grid
from scoreviz.problem import Problem
from scoreviz.processes import PROCESSES, get_process
from scoreviz.score import exact_score_fn, full_t
from scoreviz.training import TrainConfig, TrainResult

TARGET_NATS = 0.02  # issue 23: the exact score's ODE within 0.02 nats of the mixture's log p


def _points(dist: GaussianMixture, n: int, seed: int) -> torch.Tensor:
    return dist.sample(n, torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("process_key", list(PROCESSES))
@pytest.mark.parametrize("t", [0.01, 0.3, 0.9])
def test_autograd_divergence_matches_the_closed_form(process_key, t):
    dist, process = get_distribution("two_moons"), get_process(process_key)
    x = dist.sample(300, torch.Generator().manual_seed(1), alpha=process.at(t).alpha,
                    sigma=process.at(t).sigma, dtype=torch.float64)  # fmt: skip
    _, tr = L.score_divergence(exact_score_fn(dist, process), x, t)
    at = process.at(t)
    closed = L.exact_divergence(dist, x, at.alpha, at.sigma)
    np.testing.assert_allclose(tr.numpy(), closed.numpy(), rtol=1e-8, atol=1e-8)


def test_divergence_matches_finite_differences_of_the_exact_score():
    dist, process, t = get_distribution("eight_gaussians"), get_process("vp_linear"), 0.05
    score = exact_score_fn(dist, process)
    x = _points(dist, 50, 2)
    h = 1e-5
    fd = torch.zeros(50, dtype=torch.float64)
    for j in range(2):
        e = torch.zeros(1, 2, dtype=torch.float64)
        e[0, j] = h
        tt = full_t(t, 50, torch.float64)
        fd += (score(x + e, tt)[:, j] - score(x - e, tt)[:, j]) / (2 * h)
    _, tr = L.score_divergence(score, x, t)
    np.testing.assert_allclose(tr.numpy(), fd.numpy(), rtol=1e-5, atol=1e-4)


def test_divergence_of_a_network_matches_finite_differences():
    """The learned path: a (random, untrained) network in float64, its trace by autograd."""
    model = build_model(ModelConfig(), get_process("vp_linear"), seed=3)
    model.net.double()
    torch.nn.init.normal_(model.net.out.weight, std=0.3)  # not the zero start: a real network
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t, h = 0.2, 1e-6
    tt = full_t(t, 40, torch.float64)
    fd = sum(
        (model.score(x + h * e, tt)[:, j] - model.score(x - h * e, tt)[:, j]) / (2 * h)
        for j, e in enumerate(torch.eye(2, dtype=torch.float64)[:, None, :])
    )
    _, tr = L.score_divergence(model.score_with_grad, x, t)
    np.testing.assert_allclose(tr.numpy(), fd.numpy(), rtol=1e-5, atol=1e-5)


def test_drift_divergence_is_the_trace_of_the_drift_jacobian():
    """div v against central differences of v = f(t) x - g^2 s / 2 itself, on sub-VP."""
    dist, process, t = get_distribution("skewed"), get_process("sub_vp"), 0.4
    score = exact_score_fn(dist, process)
    x = _points(dist, 20, 3)
    g2 = float(process.g2(torch.tensor(t, dtype=torch.float64)))

    def drift(z):
        return process.f(z, t) - 0.5 * g2 * score(z, full_t(t, len(z), torch.float64))

    v, div = L.drift_divergence(score, process, x, t)
    np.testing.assert_allclose(v.numpy(), drift(x).numpy())
    h = 1e-5
    fd = sum(
        (drift(x + h * e)[:, j] - drift(x - h * e)[:, j]) / (2 * h)
        for j, e in enumerate(torch.eye(2, dtype=torch.float64)[:, None, :])
    )
    np.testing.assert_allclose(div.numpy(), fd.numpy(), rtol=1e-5, atol=1e-4)


def _ode_error(dist_key: str, process_key: str, n_steps: int) -> tuple[torch.Tensor, float]:
    """|ODE - exact log p_{t_min}| (N,) of the exact score's ODE ended at the exact p_1, at 200
    held-out points, and the mean gap of the ODE to the clean log p_0 (t_min's cost too)."""
    dist, process = get_distribution(dist_key), get_process(process_key)
    x = _points(dist, 200, 11)
    p1 = L.mixture_log_prob_at(dist, process, 1.0)
    out = L.ode_log_density(exact_score_fn(dist, process), process, x, n_steps, p1)
    exact = L.start_log_prob(dist, process)(x)
    return (out.log_p - exact).abs(), float((out.log_p - dist.log_prob(x)).mean().abs())


@pytest.mark.parametrize("process_key", list(PROCESSES))
def test_exact_score_ode_at_the_default_steps(process_key):
    """The page's default: the exact score's ODE within the target everywhere on the eight
    Gaussians, a tenth of it on average, on every process the app offers."""
    err, gap0 = _ode_error("eight_gaussians", process_key, L.ODE_STEPS)
    assert float(err.max()) < TARGET_NATS, float(err.max())
    assert float(err.mean()) < TARGET_NATS / 10
    assert gap0 < TARGET_NATS


@pytest.mark.slow
@pytest.mark.parametrize("process_key", list(PROCESSES))
@pytest.mark.parametrize("dist_key", ["two_moons", "word", "two_spirals"])
def test_exact_score_ode_gives_the_mixture_log_density(process_key, dist_key):
    """Thin shapes: at the default steps a few points between the arms miss by up to ~0.03
    nats (sub-VP) while the mean stays ~1e-4; at 64 steps every point is within the target."""
    err, gap0 = _ode_error(dist_key, process_key, L.ODE_STEPS)
    assert float(err.mean()) < TARGET_NATS / 10
    assert float(torch.quantile(err, 0.95)) < TARGET_NATS
    err64, _ = _ode_error(dist_key, process_key, 64)
    assert float(err64.max()) < TARGET_NATS, float(err64.max())
    assert gap0 < TARGET_NATS


def test_rk4_is_fourth_order():
    dist, process = get_distribution("eight_gaussians"), get_process("vp_cosine")
    x = _points(dist, 100, 5)
    p1 = L.mixture_log_prob_at(dist, process, 1.0)
    exact = L.start_log_prob(dist, process)(x)
    score = exact_score_fn(dist, process)
    errs = [
        float((L.ode_log_density(score, process, x, n, p1).log_p - exact).abs().mean())
        for n in (16, 32)
    ]
    assert errs[0] / errs[1] > 8, errs  # 2^4 = 16 for a 4th-order method, in its regime


def test_gaussian_prior_log_prob_is_the_normal_density():
    process = get_process("ve")
    x = torch.randn(30, 2, dtype=torch.float64)
    ref = torch.distributions.Normal(0.0, process.prior_std).log_prob(x).sum(1)
    np.testing.assert_allclose(L.gaussian_prior_log_prob(process)(x).numpy(), ref.numpy())


def test_ode_times_run_from_t_min_to_1_with_short_first_steps():
    process = get_process("vp_linear")
    ts = L.ode_times(process, 10)
    assert float(ts[0]) == process.t_min and float(ts[-1]) == 1.0
    steps = ts.diff()
    assert bool((steps > 0).all()) and float(steps[0]) < float(steps[-1]) / 10
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError):
            L.ode_times(process, bad)


# ----------------------------------------------------------------------------- the pipeline
def _untrained(process_key: str) -> TrainResult:
    """A score model that was never trained: with prior_skip its score is -x / (alpha^2 +
    sigma^2), the exact score of N(0, I) data under every process."""
    cfg = TrainConfig(distribution="eight_gaussians", process=process_key, steps=1)
    model = build_model(cfg.model, get_process(process_key), seed=0)
    history = pd.DataFrame({"step": [], "loss": [], "elapsed": []})
    return TrainResult(cfg, model, history, "untrained-" + process_key, 0.0, False, None)


@pytest.mark.parametrize("process_key", ["vp_linear", "vp_cosine", "sub_vp"])
def test_untrained_model_density_is_the_standard_normal(process_key):
    problem = Problem.builtin("eight_gaussians", process_key).with_model(
        "u", _untrained(process_key)
    )
    s = LikelihoodSettings(n_grid=12, n_heldout=50)
    learned = likelihood_learned(problem, s)
    process = problem.process
    at = process.at(process.t_min)
    var = at.alpha**2 + at.sigma**2  # N(0, I) data at t_min
    pts = np.concatenate([likelihood_grid(problem, 12).points, heldout_points(problem, 50, 0)])
    ref = -(pts**2).sum(1) / (2 * var) - math.log(2 * math.pi * var)
    got = np.concatenate([learned.log_p.ravel(), learned.heldout_log_p])
    near = (pts**2).sum(1) < 9
    np.testing.assert_allclose(got[near], ref[near], atol=TARGET_NATS)


def test_truth_parts_add_up_and_match_the_mixture():
    problem = Problem.builtin("two_moons", "vp_linear")
    s = LikelihoodSettings(n_grid=10, n_heldout=100, seed=2)
    t = likelihood_truth(problem, s)
    pts = torch.as_tensor(t.grid.points, dtype=torch.float64)
    np.testing.assert_allclose(t.log_p0.ravel(), problem.dist.log_prob(pts).numpy(), rtol=1e-6)
    np.testing.assert_allclose(t.heldout_log_p0, problem.dist.log_prob(t.heldout).numpy())
    truth_nll = -t.heldout_log_p0.mean()
    parts = t.tmin_cost + t.prior_cost - t.solver_error.mean()
    assert t.nll_exact_ode - truth_nll == pytest.approx(parts, abs=1e-12)
    assert abs(t.solver_error).max() < TARGET_NATS
    assert abs(t.entropy - truth_nll) < 5 * t.heldout_log_p0.std() / math.sqrt(100)


def test_entropy_estimate_of_one_gaussian_is_its_entropy():
    s = 0.7
    problem = Problem(
        "one", GaussianMixture(torch.zeros(1, 2), torch.tensor([s]), torch.ones(1)), "vp_linear"
    )
    h, se = entropy_estimate(problem, n=40_000)
    assert abs(h - math.log(2 * math.pi * math.e * s**2)) < 4 * se
    assert 0 < se < 0.01


def test_view_without_model_and_difference_with_one():
    problem = Problem.builtin("eight_gaussians", "vp_linear")
    s = LikelihoodSettings(n_grid=10, n_heldout=20, n_steps=8)
    v = likelihood_view(problem, s)
    assert v.learned is None and v.difference is None and v.model_nats is None
    assert v.floor == pytest.approx(v.truth.log_p0.max() - 12)
    v2 = likelihood_view(problem.with_model("u", _untrained("vp_linear")), s)
    d = v2.difference
    lo = v2.floor
    np.testing.assert_allclose(
        d, np.maximum(v2.learned.log_p, lo) - np.maximum(v2.truth.log_p0, lo)
    )
    assert v2.model_nats == pytest.approx(v2.learned.nll - v2.truth.nll_exact_ode)


def test_settings_and_models_that_cannot_work_say_why():
    with pytest.raises(ConfigError):
        LikelihoodSettings(n_grid=3)
    with pytest.raises(ConfigError):
        LikelihoodSettings(n_steps=0)
    with pytest.raises(ConfigError):
        LikelihoodSettings(n_heldout=1.5)
    problem = Problem.builtin("eight_gaussians", "vp_linear")
    with pytest.raises(ConfigError, match="trained model"):
        likelihood_learned(problem, LikelihoodSettings(n_grid=8))
    cfg = TrainConfig(model=ModelConfig(kind="dae"), steps=1)
    history = _untrained("vp_linear").history
    model = build_model(cfg.model, get_process("vp_linear"))
    dae_result = TrainResult(cfg, model, history, "dae", 0.0, False, None)
    with pytest.raises(ConfigError, match="DAE"):
        likelihood_learned(problem.with_model("d", dae_result), LikelihoodSettings(n_grid=8))
