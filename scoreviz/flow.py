"""The flow-matching view of a score: the velocity v = E[eps - x_0 | x_t], exact and learned,
and how straight the probability-flow ODE's paths are.

For x_t = alpha_t x_0 + sigma_t eps, v reads one object in one more way (`scoreviz.conversions`):

    v = eps_hat - x0_hat = -sigma_t s - (x_t + sigma_t^2 s) / alpha_t      (s = grad log p_t)

so the exact velocity of a Gaussian mixture follows from its exact score (Tweedie), and on the
linear path (`processes.LinearPath`, x = (1 - tau) x_0 + tau eps, tau = u t) the probability-flow
ODE is dx/dt = f x - g^2 s / 2 = u v: the particles move along v. With independent pairing the
learned v converges to this exact one; with minibatch OT pairing (`scoreviz.couplings`) it
converges to another field with the same endpoints and no closed form.

Straightness (path length / chord, >= 1, 1 = straight lines): over the particles of a PF-ODE
run, the total length of their polylines over every step divided by the total distance from
start to end (Liu et al. 2022 measure straightness by the same transport: a flow whose
paths are straight is integrated exactly by one Euler step). Shapes: x (N, 2), t (N,).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from scoreviz.conversions import score_to_v
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess
from scoreviz.samplers import SamplerConfig, sample
from scoreviz.score import ScoreFn, exact_score_fn

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> v (N, 2)
STRAIGHT_PARTICLES, STRAIGHT_STEPS = 500, 100


def velocity_from_score(score_fn: ScoreFn, process: NoiseProcess) -> VelocityFn:
    """v(x_t, t) = E[eps - x_0 | x_t] from any score function (`conversions.score_to_v`)."""

    def velocity(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x_t.dtype).expand(x_t.shape[0])
        return score_to_v(score_fn(x_t, t), x_t, process.alpha(t), process.sigma(t))

    return velocity


def exact_velocity_fn(dist: GaussianMixture, process: NoiseProcess) -> VelocityFn:
    """The exact velocity E[eps - x_0 | x_t] of the mixture under `process` (independent
    pairing)."""
    return velocity_from_score(exact_score_fn(dist, process), process)


def model_velocity_fn(model) -> VelocityFn:
    """A trained model's velocity: its own output for a v model, else converted from its output."""
    return model.velocity


def path_straightness(xs: np.ndarray) -> float:
    """Total path length / total chord of states xs (S+1, N, 2), every step recorded.

    A ratio of sums, not a mean of ratios: a particle that ends near where it started (chord ~0)
    would make a mean of ratios as large as it likes. Non-finite particles are left out; nan if
    nothing moved.
    """
    xs = np.asarray(xs, dtype=np.float64)
    length = np.linalg.norm(np.diff(xs, axis=0), axis=2).sum(0)
    chord = np.linalg.norm(xs[-1] - xs[0], axis=1)
    ok = np.isfinite(length) & np.isfinite(chord)
    total = chord[ok].sum()
    return float(length[ok].sum() / total) if total > 1e-9 else float("nan")


def ode_straightness(
    score_fn: ScoreFn,
    process: NoiseProcess,
    seed: int = 0,
    n_particles: int = STRAIGHT_PARTICLES,
    n_steps: int = STRAIGHT_STEPS,
) -> float:
    """Path length / chord of the probability-flow ODE (Heun, n_steps, every state recorded)."""
    config = SamplerConfig(
        name="pf_ode_heun", n_steps=n_steps, n_particles=n_particles, n_frames=n_steps + 1,
        seed=seed,
    )  # fmt: skip
    return path_straightness(sample(score_fn, process, config).xs)
