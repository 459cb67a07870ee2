"""Samplers, driven by the EXACT mixture score, checked against exact ground truth.

Oracles: fresh exact samples (energy distance within a small multiple of its noise floor), the
exact mean radius of the ring and the true mode weights; for plain Langevin, the exact p_t
re-weighted by the share of its start box that drains into each mode (computed independently);
Tweedie via `conversions` for the recorded x0_hats; DDIM(eta=1) == DDPM and PC without
corrector == reverse SDE as algebraic identities; a process class the samplers have never seen.
"""

import math

import numpy as np
import pytest
import torch

from scoreviz.conversions import score_to_x0
from scoreviz.distributions import get_distribution
from scoreviz.errors import ConfigError, ScorevizError
from scoreviz.metrics import energy_distance, energy_noise_floor, mode_weights
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess, get_process
from scoreviz.samplers import (
    SAMPLERS,
    SamplerConfig,
    SamplerDivergedError,
    Trajectory,
    sample,
    sampler_labels,
)
from scoreviz.score import exact_score_fn

N = 2000  # particles for the distribution checks: ED's power grows with N, cost stays < 0.3 s
ED_FACTOR = 4.0  # exact samples exceed 4x the floor in ~1 % of seeds; observed here: <= 3.1x
DIFFUSION = ["reverse_sde", "pf_ode_euler", "pf_ode_heun", "ddpm", "ddim", "pc"]
# Under VE, Euler's first-order error shrinks the ring by ~1 % at 200 steps; Heun stands for it.
VE_CHECKED = ["reverse_sde", "pf_ode_heun", "ddpm", "ddim", "pc", "annealed_langevin"]


@pytest.fixture(scope="module")
def ring():
    return get_distribution("eight_gaussians")


@pytest.fixture(scope="module")
def floor(ring):
    return energy_noise_floor(ring, N, seed=0, repeats=20)


@pytest.fixture(scope="module")
def ring_radius(ring):
    """E|X0| of the ring by a large Monte-Carlo sample (standard error ~ 3e-4)."""
    big = ring.sample(200_000, torch.Generator().manual_seed(3), dtype=torch.float64)
    return float(big.norm(dim=1).mean())


def _run(dist, process_name, name, **kw) -> Trajectory:
    process = get_process(process_name)
    return sample(exact_score_fn(dist, process), process, SamplerConfig(name=name, **kw))


def _ref(dist, n, seed=10_000, alpha=1.0, sigma=0.0):
    gen = torch.Generator().manual_seed(seed)
    return dist.sample(n, gen, alpha=alpha, sigma=sigma, dtype=torch.float64)


def _assert_ring(x, ring, floor, ring_radius, weights=None):
    """x reproduces the ring: ED near its floor, mean radius and mode shares right."""
    x = torch.as_tensor(x, dtype=torch.float64)
    ed = energy_distance(x, _ref(ring, len(x)))
    assert ed < ED_FACTOR * floor, f"energy distance {ed:.2e} vs floor {floor:.2e}"
    assert abs(float(x.norm(dim=1).mean()) - ring_radius) < 0.015  # ~5 standard errors
    target = ring.weights.numpy() if weights is None else weights
    np.testing.assert_allclose(mode_weights(x, ring), target, atol=0.04)


# ----------------------------------------------------------------------------- distributions
@pytest.mark.slow
@pytest.mark.parametrize(
    "process_name, name",
    [("vp_linear", s) for s in [*DIFFUSION, "annealed_langevin"]] + [("ve", s) for s in VE_CHECKED],
)
def test_exact_score_reproduces_eight_gaussians(ring, floor, ring_radius, process_name, name):
    tr = _run(ring, process_name, name, n_particles=N, seed=1)
    _assert_ring(tr.final, ring, floor, ring_radius)


def test_a_process_the_samplers_have_never_seen(ring, floor, ring_radius):
    """No branching on the process type: a brand-new schedule works through alpha/sigma/f/g2."""

    class Quadratic(NoiseProcess):  # log alpha = -5 t^2, sigma^2 = 1 - alpha^2
        def _log_alpha(self, t):
            return -5 * t**2

        def _dlog_alpha(self, t):
            return -10 * t

        def _sigma2(self, t):
            return -torch.expm1(-10 * t**2)

        def _dsigma2(self, t):
            return 20 * t * torch.exp(-10 * t**2)

    process = Quadratic()
    for name in ["reverse_sde", "ddpm", "pf_ode_heun"]:
        config = SamplerConfig(name=name, n_particles=N, seed=2)
        tr = sample(exact_score_fn(ring, process), process, config)
        _assert_ring(tr.final, ring, floor, ring_radius)


def _box_shares_of_ring() -> np.ndarray:
    """Share of the square [-b, b]^2 in each mode's angular sector (modes at angles k pi/4)."""
    axis = math.tan(math.pi / 8) / 4  # sector of half-angle pi/8 around an axis
    return np.array([axis, 0.25 - axis] * 4)


def test_langevin_samples_p_t_with_the_weights_of_its_start(ring, floor, ring_radius):
    """Plain Langevin = exact p_t inside each mode, but weighted by the start box's basins."""
    config = SamplerConfig(name="langevin", n_particles=N, seed=3)
    process = get_process("vp_linear")
    x = sample(exact_score_fn(ring, process), process, config).final
    t = torch.tensor(config.t_langevin, dtype=torch.float64)
    a, s = float(process.alpha(t)), float(process.sigma(t))
    shares = _box_shares_of_ring()
    assert abs(float(ring.means[0, 1])) < 1e-9 < float(ring.means[0, 0])  # component 0 on x axis
    oracle = GaussianMixture(ring.means, ring.stds, torch.as_tensor(shares))
    ed = energy_distance(x, _ref(oracle, N, alpha=a, sigma=s))
    assert ed < ED_FACTOR * energy_noise_floor(oracle, N, repeats=10)
    np.testing.assert_allclose(mode_weights(x, ring), shares, atol=0.03)
    assert abs(np.linalg.norm(x, axis=1).mean() - a * ring_radius) < 0.015


# ----------------------------------------------------------------------------- mode weights
def _langevin_basin_share(dist, process, t_langevin: float) -> float:
    """Share of the start box [-b, b]^2 that drains into the heavy (right) mode.

    The skewed modes lie on the x axis, so the basins are split by the vertical line where the
    exact score's x component vanishes between the modes (found by bisection).
    """
    t = torch.tensor([t_langevin], dtype=torch.float64)
    a, s = process.alpha(t), process.sigma(t)
    lo, hi = float(dist.means[:, 0].min()), float(dist.means[:, 0].max())
    for _ in range(60):
        mid = (lo + hi) / 2
        sx = dist.score(torch.tensor([[mid, 0.0]], dtype=torch.float64), a, s)[0, 0]
        lo, hi = (mid, hi) if sx < 0 else (lo, mid)  # score < 0: left of the saddle
    b = 3 * process.prior_std
    return (b - lo) / (2 * b)


@pytest.mark.slow
def test_annealing_recovers_mode_weights_plain_langevin_cannot():
    dist = get_distribution("skewed")
    heavy = int(dist.weights.argmax())
    assert float(dist.weights[heavy]) == pytest.approx(0.8)
    assert float(dist.means[heavy, 0]) > float(dist.means[1 - heavy, 0])  # heavy mode on the right
    n = 10_000  # two components only, so cheap; standard error of a share ~ 0.005
    share = {
        name: mode_weights(_run(dist, "vp_linear", name, n_particles=n, seed=4).final, dist)[heavy]
        for name in ["annealed_langevin", "reverse_sde", "langevin"]
    }
    assert share["annealed_langevin"] == pytest.approx(0.8, abs=0.05)
    assert share["reverse_sde"] == pytest.approx(0.8, abs=0.05)
    # Plain Langevin keeps the basin share of its symmetric start box, not the true weight.
    basin = _langevin_basin_share(dist, get_process("vp_linear"), SamplerConfig().t_langevin)
    assert share["langevin"] == pytest.approx(basin, abs=0.03)
    assert share["langevin"] < 0.7
    assert share["annealed_langevin"] - share["langevin"] > 0.1


# ----------------------------------------------------------------------------- trajectories
@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("process_name", ["vp_linear", "ve"])
def test_trajectory_shape_times_and_frames(ring, name, process_name):
    tr = _run(ring, process_name, name, n_steps=10, n_particles=7, n_frames=4)
    assert tr.xs.shape == tr.x0_hats.shape == (4, 7, 2)
    assert tr.xs.dtype == tr.x0_hats.dtype == np.float32
    assert tr.times.shape == (4,) and np.array_equal(tr.final, tr.xs[-1])
    assert np.isfinite(tr.xs).all() and np.isfinite(tr.x0_hats).all()
    if name == "langevin":
        np.testing.assert_allclose(tr.times, tr.config.t_langevin, rtol=1e-6)
    else:
        t_min = get_process(process_name).t_min
        assert tr.times[0] == 1.0 and tr.times[-1] == pytest.approx(t_min)
        assert (np.diff(tr.times) < 0).all()


def test_frames_are_capped_by_the_steps(ring):
    tr = _run(ring, "vp_linear", "reverse_sde", n_steps=5, n_particles=3, n_frames=60)
    assert tr.xs.shape == (6, 3, 2)  # every state: steps + 1
    np.testing.assert_allclose(tr.times, np.linspace(1, 1e-3, 6), rtol=1e-6)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_deterministic_under_seed(ring, name):
    a, b = (_run(ring, "vp_linear", name, n_steps=20, n_particles=50) for _ in range(2))
    c = _run(ring, "vp_linear", name, n_steps=20, n_particles=50, seed=1)
    assert np.array_equal(a.xs, b.xs) and np.array_equal(a.x0_hats, b.x0_hats)
    assert not np.allclose(a.final, c.final)


def test_x0_hats_are_tweedie_of_the_score_at_the_recorded_states(ring):
    process = get_process("vp_linear")
    score = exact_score_fn(ring, process)
    for name in ["reverse_sde", "annealed_langevin", "langevin"]:
        tr = sample(score, process, SamplerConfig(name=name, n_steps=30, n_particles=100))
        for f in (1, len(tr.times) // 2, -1):
            x = torch.as_tensor(tr.xs[f])
            t = torch.full((100,), float(tr.times[f]))
            expect = score_to_x0(score(x, t), x, process.alpha(t), process.sigma(t))
            np.testing.assert_allclose(tr.x0_hats[f], expect.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_one_step_and_one_particle(ring, name):
    for steps, n in [(1, 5), (3, 1)]:
        tr = _run(ring, "vp_linear", name, n_steps=steps, n_particles=n)
        assert tr.xs.shape == (steps + 1, n, 2) and np.isfinite(tr.xs).all()


def test_ode_solvers_converge_to_one_flow_map_at_their_order(ring):
    """Same prior draw: Euler and DDIM(eta=0) converge at order 1 to the PF-ODE map, Heun at 2."""
    ref = _run(ring, "ve", "pf_ode_heun", n_steps=1000, n_particles=200).final

    def err(name, steps):
        return np.abs(_run(ring, "ve", name, n_steps=steps, n_particles=200).final - ref).max()

    for name, lo, hi in [("pf_ode_euler", 1.6, 2.4), ("ddim", 1.6, 2.4), ("pf_ode_heun", 3.3, 5)]:
        ratio = err(name, 50) / err(name, 100)  # halving the step divides the error by 2^order
        assert lo < ratio < hi, (name, ratio)


def test_ddim_with_eta_one_is_ddpm(ring):
    """sqrt(sigma_s^2 - c^2) eps_hat + alpha_s x0_hat == the DDPM posterior mean when eta = 1."""
    a = _run(ring, "ve", "ddpm", n_steps=25, n_particles=200)
    b = _run(ring, "ve", "ddim", n_steps=25, n_particles=200, eta=1.0)
    np.testing.assert_allclose(a.xs, b.xs, atol=1e-4)


def test_pc_without_corrector_is_the_reverse_sde(ring):
    a = _run(ring, "vp_linear", "reverse_sde", n_steps=25, n_particles=200)
    b = _run(ring, "vp_linear", "pc", n_steps=25, n_particles=200, n_corrector=0)
    np.testing.assert_allclose(a.xs, b.xs, atol=1e-5)


def test_exploding_langevin_step_raises_a_friendly_error(ring):
    with pytest.raises(SamplerDivergedError, match="step size") as info:
        _run(ring, "vp_linear", "langevin", step_size=100.0, n_particles=50)
    assert isinstance(info.value, ScorevizError) and "step 1" not in str(info.value)


def test_annealed_langevin_too_big_a_step_raises_before_overflow(ring):
    with pytest.raises(SamplerDivergedError, match="blew up"):
        _run(ring, "ve", "annealed_langevin", step_size=10.0, n_particles=50, n_steps=50)


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kw",
    [
        {"n_steps": 0},
        {"n_particles": 0},
        {"n_frames": 1},
        {"step_size": 0.0},
        {"step_size": -1.0},
        {"step_size": float("nan")},
        {"snr": 0.0},
        {"t_langevin": 0.0},
        {"t_langevin": 1.5},
        {"eta": 1.5},
        {"n_corrector": -1},
        {"n_steps": 2.5},
    ],
)
def test_config_rejects_bad_values(kw):
    with pytest.raises(ConfigError):
        SamplerConfig(**kw)


def test_unknown_sampler_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="'ddim'") as info:
        SamplerConfig(name="euler_maruyama")
    assert all(repr(k) in str(info.value) for k in SAMPLERS)


def test_registry_labels_and_hashable_config():
    assert list(sampler_labels()) == list(SAMPLERS)
    assert set(SAMPLERS) == {"langevin", "annealed_langevin", *DIFFUSION}
    assert len({SamplerConfig(), SamplerConfig(), SamplerConfig(seed=1)}) == 2
