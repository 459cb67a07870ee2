"""The flow-matching view (`scoreviz.flow`): the exact velocity against independent oracles (a
Gaussian's closed-form posterior, the continuity equation of the exact p_t, finite differences
of a Gaussian's exact transport map), the linear path's ODE moving particles along u v, and the
straightness number on paths whose length is known."""

import math

import numpy as np
import pytest
import torch

from scoreviz import flow
from scoreviz.distributions import get_distribution
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import PROCESSES, get_process
from scoreviz.score import exact_score_fn

F64 = torch.float64


def one_gaussian(mu=(0.7, -0.4), std=0.3) -> GaussianMixture:
    return GaussianMixture(
        torch.tensor([mu], dtype=F64), torch.tensor([std], dtype=F64), torch.ones(1, dtype=F64)
    )


def points(n=200, seed=0, scale=1.5):
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, 2, generator=gen, dtype=F64)


@pytest.mark.parametrize("process_name", list(PROCESSES))
def test_exact_velocity_of_a_gaussian_is_its_closed_form_posterior(process_name):
    """X0 ~ N(mu, s^2 I), x = a X0 + sigma eps: with c = a^2 s^2 + sigma^2,
    E[x0 | x] = mu + a s^2 (x - a mu) / c and E[eps | x] = sigma (x - a mu) / c."""
    process, dist = get_process(process_name), one_gaussian()
    v_fn = flow.exact_velocity_fn(dist, process)
    x = points()
    for t in (process.t_min, 0.1, 0.5, 0.9, 1.0):
        tt = torch.full((len(x),), t, dtype=F64)
        a, s = float(process.alpha(tt)[0]), float(process.sigma(tt)[0])
        mu, c = dist.means[0], a**2 * 0.09 + s**2
        x0 = mu + a * 0.09 * (x - a * mu) / c
        eps = s * (x - a * mu) / c
        torch.testing.assert_close(v_fn(x, tt), eps - x0, rtol=1e-8, atol=1e-8)


def _log_p(dist, process, x, t: float):
    tt = torch.tensor(t, dtype=F64)
    return dist.log_prob(x, process.alpha(tt), process.sigma(tt))


@pytest.mark.parametrize("name", ["eight_gaussians", "two_moons", "skewed"])
@pytest.mark.parametrize("t", [0.05, 0.3, 0.7, 0.95])
def test_exact_velocity_solves_the_continuity_equation(name, t):
    """d/dt log p_t = -div(u v) - u v . grad log p_t on the linear path (dx/dt = u v): the
    left side by central differences of the exact mixture density in t, the right side from
    the exact velocity with its divergence by autograd."""
    process, dist = get_process("linear"), get_distribution(name)
    x = points(128, seed=1, scale=1.0)
    h = 1e-4
    dlogp = (_log_p(dist, process, x, t + h) - _log_p(dist, process, x, t - h)) / (2 * h)
    xg = x.clone().requires_grad_(True)
    tt = torch.full((len(x),), t, dtype=F64)
    v = flow.exact_velocity_fn(dist, process)(xg, tt)
    div = sum(torch.autograd.grad(v[:, i].sum(), xg, retain_graph=True)[0][:, i] for i in range(2))
    score = exact_score_fn(dist, process)(x, tt)
    rhs = -process.speed * (div.detach() + (v.detach() * score).sum(1))
    torch.testing.assert_close(dlogp, rhs, rtol=1e-4, atol=1e-4 * float(rhs.abs().max()))


def test_exact_velocity_is_the_time_derivative_of_the_exact_transport():
    """For one Gaussian the exact flow carries z to x_t = a mu + sqrt(a^2 s^2 + sigma^2) z (the
    monotone map between Gaussians): its central difference in t is u v(x_t, t)."""
    process, dist = get_process("linear"), one_gaussian(std=0.2)
    z = points(64, seed=2, scale=1.0)
    mu = dist.means[0]

    def x_at(t: float):
        tt = torch.tensor(t, dtype=F64)
        a, s = process.alpha(tt), process.sigma(tt)
        return a * mu + torch.sqrt(a**2 * 0.04 + s**2) * z

    v_fn = flow.exact_velocity_fn(dist, process)
    for t in (0.02, 0.4, 0.8, 0.99):
        h = 1e-5
        dxdt = (x_at(t + h) - x_at(t - h)) / (2 * h) if t + h <= 1 else None
        if dxdt is None:
            continue
        v = v_fn(x_at(t), torch.full((64,), t, dtype=F64))
        torch.testing.assert_close(dxdt, process.speed * v, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("t", [0.01, 0.5, 1.0])
def test_the_linear_paths_ode_moves_along_the_velocity(t):
    """dx/dt = f x - g^2 s / 2 (what every ODE sampler integrates) equals u v: the samplers need
    no flow-matching branch, for the exact velocity and for any field read as a score."""
    process, dist = get_process("linear"), get_distribution("pinwheel")
    x, tt = points(100, seed=3), torch.full((100,), t, dtype=F64)
    s = exact_score_fn(dist, process)(x, tt)
    drift = process.f(x, tt) - 0.5 * process.g2(tt)[:, None] * s
    v = flow.exact_velocity_fn(dist, process)(x, tt)
    torch.testing.assert_close(drift, process.speed * v, rtol=1e-9, atol=1e-9)


def test_straightness_of_known_paths():
    """A straight line is 1 whatever its sampling; a half circle is pi/2; a path that goes out
    and comes most of the way back is long against its chord."""
    s = np.linspace(0, 1, 51)[:, None, None]
    line = np.concatenate([s * [[1.0, 2.0]], s * [[-3.0, 0.5]]], axis=1)
    assert flow.path_straightness(line) == pytest.approx(1.0, rel=1e-12)
    ang = np.linspace(math.pi, 0, 2001)
    half = np.stack([np.cos(ang), np.sin(ang)], -1)[:, None, :]
    assert flow.path_straightness(half) == pytest.approx(math.pi / 2, rel=1e-6)
    back = np.concatenate([s * [[2.0, 0.0]], [[2.0, 0.0]] - s * [[1.0, 0.0]]])
    assert flow.path_straightness(back) == pytest.approx(3.0, rel=1e-12)


def test_exact_linear_paths_bend_and_vp_paths_bend_less():
    """The independent coupling's exact flow on the linear path is not straight: p_t's variance
    dips to ~1/2 at t ~ 1/2 (alpha^2 + sigma^2), so paths go in and out again; VP keeps the
    variance, and its exact paths are straighter. Both above 1, both finite."""
    dist = get_distribution("eight_gaussians")
    lin, vp = get_process("linear"), get_process("vp_linear")
    s_lin = flow.ode_straightness(exact_score_fn(dist, lin), lin, n_particles=200, n_steps=50)
    s_vp = flow.ode_straightness(exact_score_fn(dist, vp), vp, n_particles=200, n_steps=50)
    assert 1.0 < s_vp < s_lin < 5.0
