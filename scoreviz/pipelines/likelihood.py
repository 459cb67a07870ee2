"""The Likelihood page's pipeline: the model's own density log p(x) from the probability-flow ODE
(`scoreviz.likelihood`) on a grid, beside the exact log p_0 of the mixture and their difference,
and the NLL of held-out exact samples against the exact entropy (`views/likelihood.py`,
`figures/likelihood.py`).

Two parts, cached apart in the app: `likelihood_truth` depends on the data and process only
(exact log p_0 on the grid, held-out points, the exact score's own ODE on them, the entropy);
`likelihood_learned` runs the model's ODE on the grid and the same held-out points. What the
exact score's ODE gets wrong is not the model's fault, and the view says how much of it is which:

    NLL(exact ODE) - entropy = t_min cost + prior cost + solver error
      t_min cost:   E[log p_0(x) - log p_{t_min}(x)]  (the ODE starts at t_min, like samplers stop)
      prior cost:   E[log p_1(x_1) - log N(x_1; 0, prior_std^2)]  (the prior is not exactly p_1)
      solver error: E[ODE with the exact p_1 at its end - log p_{t_min}(x)]  (RK4's own error)
    NLL(learned) - NLL(exact ODE): the model's error, in nats

    view = likelihood_view(problem, LikelihoodSettings())
    figures.likelihood.likelihood_figure(view)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from scoreviz import forward, grids
from scoreviz.errors import ConfigError
from scoreviz.likelihood import (
    ODE_STEPS,
    mixture_log_prob_at,
    ode_log_density,
    start_log_prob,
)
from scoreviz.problem import Problem
from scoreviz.score import ScoreFn, exact_score_fn

ENTROPY_SAMPLES = 100_000  # exact samples in the Monte Carlo entropy (its std error ~0.003 nats)
FLOOR_NATS = 12.0  # the heatmaps show log p down to the exact peak minus this (e^-12 ~ 6e-6)
ODE_STEP_CHOICES = (8, 16, 32, 64, 128)  # the page's slider (RK4 steps; 4 score calls each)


@dataclass(frozen=True)
class LikelihoodSettings:
    """Grid points per side, RK4 steps of the ODE, held-out exact samples for the NLL, and the
    seed that draws them (the entropy's samples use seed + 1)."""

    n_grid: int = 60
    n_steps: int = ODE_STEPS
    n_heldout: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("n_grid", 8, 200, "grid points per side"),
            ("n_steps", 1, 512, "ODE steps"),
            ("n_heldout", 10, 20_000, "held-out samples"),
            ("seed", 0, 2**31 - 1, "seed"),
        ]
        for name, lo, hi, what in checks:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ConfigError(f"The number of {what} must be a whole number in [{lo}, {hi}].")


@dataclass(frozen=True, eq=False)
class LikelihoodTruth:
    """What only the data and process decide.

    grid: the G x G grid (rows = y); log_p0 (G, G): exact log p_0 there; heldout (N, 2): fresh
    exact samples; at those, log_p0, log_ptmin (`start_log_prob`: x_{t_min} / alpha), ode (the exact
    score's ODE ending at the Gaussian prior: the exact model's density) and ode_p1 (the same
    paths ending at the exact p_1: only the solver's error is left), all (N,) float64;
    entropy, entropy_se: Monte Carlo of -log p_0 over n_entropy exact samples and its standard
    error; t_min, sigma_min: where the ODE starts; n_steps: its RK4 steps; seconds: the time
    the exact ODE took.
    """

    grid: grids.Grid
    log_p0: np.ndarray
    heldout: np.ndarray
    heldout_log_p0: np.ndarray
    heldout_log_ptmin: np.ndarray
    ode: np.ndarray
    ode_p1: np.ndarray
    entropy: float
    entropy_se: float
    n_entropy: int
    t_min: float
    sigma_min: float
    n_steps: int
    seconds: float

    @property
    def solver_error(self) -> np.ndarray:
        """(N,) the exact score's ODE (ending at the exact p_1) minus the exact log p_{t_min}."""
        return self.ode_p1 - self.heldout_log_ptmin

    @property
    def tmin_cost(self) -> float:
        """Mean log p_0 - log p_{t_min} over the held-out points (nats): starting at t_min."""
        return float(np.mean(self.heldout_log_p0 - self.heldout_log_ptmin))

    @property
    def prior_cost(self) -> float:
        """Mean exact-p_1 minus Gaussian-prior ending of the exact ODE (nats)."""
        return float(np.mean(self.ode_p1 - self.ode))

    @property
    def nll_exact_ode(self) -> float:
        """NLL of the held-out points under the exact score's ODE density (nats)."""
        return float(-np.mean(self.ode))


@dataclass(frozen=True, eq=False)
class LikelihoodLearned:
    """The model's ODE density: log_p (G, G) on the truth's grid, heldout_log_p (N,) at its
    held-out points (float64), and the seconds it took."""

    log_p: np.ndarray
    heldout_log_p: np.ndarray
    seconds: float

    @property
    def nll(self) -> float:
        return float(-np.mean(self.heldout_log_p))


@dataclass(frozen=True, eq=False)
class LikelihoodView:
    """The truth, the model's part (None without a model), the colour floor of the log-density
    panels (the exact peak minus FLOOR_NATS) and the model's display name."""

    truth: LikelihoodTruth
    learned: LikelihoodLearned | None
    floor: float
    name: str = "learned"

    @property
    def difference(self) -> np.ndarray | None:
        """learned - exact log p (G, G), both raised to the floor first: where both densities
        are negligible the difference is 0, where only one is it shows (None without a model)."""
        if self.learned is None:
            return None
        lo = self.floor
        return np.maximum(self.learned.log_p, lo) - np.maximum(self.truth.log_p0, lo)

    @property
    def model_nats(self) -> float | None:
        """NLL(learned) - NLL(exact score's ODE): the model's share of the nats (None: no model)."""
        return None if self.learned is None else self.learned.nll - self.truth.nll_exact_ode


GRID_MARGIN = 1.25  # the grid's half-width over the data's reach (`forward.view_box`)


def likelihood_grid(problem: Problem, n: int) -> grids.Grid:
    """A square n x n grid holding the data with room around it: GRID_MARGIN times the widest
    half-width of `forward.view_box` (every component's mean + 3 widths), rounded up to 0.1."""
    (_, hx), (_, hy) = forward.view_box(problem.dist, problem.process, 0.0)
    half = math.ceil(GRID_MARGIN * max(hx, hy) * 10) / 10
    return grids.make_grid(n, (-half, half))


def heldout_points(problem: Problem, n: int, seed: int) -> torch.Tensor:
    """n fresh exact samples (n, 2) float64: held out, as no model trains on a seeded draw."""
    gen = torch.Generator().manual_seed(int(seed) + 7919)  # apart from data_samples' seeds
    return problem.dist.sample(n, gen, dtype=torch.float64)


def entropy_estimate(problem: Problem, n: int = ENTROPY_SAMPLES, seed: int = 1):
    """(H, standard error): H = mean -log p_0 over n exact samples, se = std / sqrt(n)."""
    gen = torch.Generator().manual_seed(int(seed))
    x = problem.dist.sample(n, gen, dtype=torch.float64)
    nlp = -problem.dist.log_prob(x)
    return float(nlp.mean()), float(nlp.std() / math.sqrt(n))


def likelihood_truth(problem: Problem, s: LikelihoodSettings) -> LikelihoodTruth:
    """The exact side of the view (the model is ignored: pass `problem.exact()`)."""
    dist, process = problem.dist, problem.process
    grid = likelihood_grid(problem, s.n_grid)
    log_p0 = dist.log_prob(torch.as_tensor(grid.points, dtype=torch.float64))
    x = heldout_points(problem, s.n_heldout, s.seed)
    start = time.perf_counter()
    exact = ode_log_density(exact_score_fn(dist, process), process, x, s.n_steps)
    seconds = time.perf_counter() - start
    ode_p1 = exact.integral + mixture_log_prob_at(dist, process, 1.0)(exact.x1)
    entropy, se = entropy_estimate(problem, seed=s.seed + 1)
    at = process.at(process.t_min)
    return LikelihoodTruth(
        grid=grid,
        log_p0=grids.finite(log_p0.numpy()).reshape(grid.size, grid.size).astype(np.float64),
        heldout=x.numpy(),
        heldout_log_p0=dist.log_prob(x).numpy(),
        heldout_log_ptmin=start_log_prob(dist, process)(x).numpy(),
        ode=exact.log_p.numpy(),
        ode_p1=ode_p1.numpy(),
        entropy=entropy,
        entropy_se=se,
        n_entropy=ENTROPY_SAMPLES,
        t_min=process.t_min,
        sigma_min=at.sigma,
        n_steps=s.n_steps,
        seconds=seconds,
    )


def learned_score(problem: Problem) -> ScoreFn:
    """The first model's score, differentiable in x (the ODE needs its Jacobian's trace)."""
    model = problem.model
    if model is None:
        raise ConfigError("The learned density needs a trained model: train one first.")
    if model.config.model.kind != "score":
        raise ConfigError(
            "A classical DAE knows the score at one noise level only, so it has no "
            "probability-flow ODE and no density: pick a score model."
        )
    return model.model.score_with_grad


def likelihood_learned(problem: Problem, s: LikelihoodSettings) -> LikelihoodLearned:
    """The model's log-density on the grid and at the held-out points: one ODE solve of both
    (float32, the network's dtype), ending at the Gaussian prior."""
    score_fn = learned_score(problem)
    grid = likelihood_grid(problem, s.n_grid)
    pts = torch.as_tensor(grid.points, dtype=torch.float32)
    held = heldout_points(problem, s.n_heldout, s.seed).float()
    start = time.perf_counter()
    out = ode_log_density(score_fn, problem.process, torch.cat([pts, held]), s.n_steps)
    seconds = time.perf_counter() - start
    log_p = grids.finite(out.log_p.numpy()).astype(np.float64)
    n = grid.size * grid.size
    return LikelihoodLearned(log_p[:n].reshape(grid.size, grid.size), log_p[n:], seconds)


def likelihood_view(
    problem: Problem,
    s: LikelihoodSettings,
    *,
    truth=likelihood_truth,
    learned=likelihood_learned,
) -> LikelihoodView:
    """The whole view (the model's part only if the problem has a model); the app passes its
    cached `truth` and `learned`."""
    exact = truth(problem.exact(), s)
    mine = learned(problem, s) if problem.model is not None else None
    floor = float(exact.log_p0.max()) - FLOOR_NATS
    name = problem.models[0].name if problem.models else "learned"
    return LikelihoodView(exact, mine, floor, name)
