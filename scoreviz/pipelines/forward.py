"""The Data & forward page's pipeline: exact p_t on a grid, noised particles, the prior check, the
forward animation (`views/forward.py`, `figures/forward.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoreviz import forward, grids
from scoreviz.pipelines.common import tkey
from scoreviz.problem import Problem


@dataclass(frozen=True, eq=False)
class Density:
    """Exact p_t at `t` on `grid` (n*n points): `density` (n, n) float64, finite; x axis range
    `xy`, y axis range `y_range` (None: the same as x)."""

    t: float
    grid: grids.Grid
    density: np.ndarray
    xy: tuple[float, float]
    y_range: tuple[float, float] | None = None

    @property
    def box(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(x range, y range)."""
        return self.xy, self.y_range or self.xy


def density_at(problem: Problem, t: float, n: int, fit: bool = True) -> Density:
    """Exact p_t on an n x n grid over the view of time t: fitted to p_t's shape
    (`forward.view_box`: wide data, a wide box), or with fit=False the square `view_range`."""
    process = problem.process
    if fit:
        xy, y_range = forward.view_box(problem.dist, process, t)
    else:
        xy, y_range = forward.view_range(process, t), None
    grid = grids.make_grid(n, xy, y_range)
    logp = grids.log_density_grid(problem.dist, process, t, grid)
    return Density(t, grid, grids.finite(np.exp(logp.astype(np.float64))), xy, y_range)


def noised(problem: Problem, t: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x_0, x_t) of n particles (n, 2) float32: the same x_0 and eps at every t."""
    traj = forward.forward_trajectory(problem.dist, problem.process, [0.0, t], n=n, seed=seed)
    return traj[0], traj[1]


def prior_view(problem: Problem, pairs: int | None = None) -> forward.PriorMismatch:
    """KL(p_1 || prior) by Monte Carlo; with `pairs`, on at most pairs / K points (>= 1,024,
    <= 8,192): its cost grows with the number of components K (uploads: up to 2,000)."""
    k = problem.dist.n_components
    n = 8192 if pairs is None else int(np.clip(pairs // k, 1024, 8192))
    return forward.prior_mismatch(problem.dist, problem.process, n=n)


@dataclass(frozen=True)
class ForwardSettings:
    """The Data & forward view at time t: n_points particles, p_t on grid^2 points, p_0 on
    grid_data^2 points. t is rounded to 4 decimals (`tkey`)."""

    t: float
    n_points: int = 600
    grid: int = 120
    grid_data: int = 80
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", tkey(self.t))


@dataclass(frozen=True, eq=False)
class ForwardView:
    """x0, xt (N, 2) at `t`; `data` = p_0 and `noisy` = p_t on their grids; alpha, sigma at t;
    `schedule` = forward.schedule_table (alpha, sigma, SNR over t); `finest` = the data's
    finest detail (`forward.finest_width` at t = 0: dots must stay narrower)."""

    t: float
    x0: np.ndarray
    xt: np.ndarray
    data: Density
    noisy: Density
    alpha: float
    sigma: float
    schedule: dict
    finest: float | None = None


def forward_view(
    problem: Problem, s: ForwardSettings, *, noised=noised, density=density_at
) -> ForwardView:
    """Samples, their noised versions and the exact densities at 0 and at s.t."""
    x0, xt = noised(problem, s.t, s.n_points, s.seed)
    at = forward.schedule_at(problem.process, s.t)
    data, noisy = density(problem, 0.0, s.grid_data), density(problem, s.t, s.grid)
    table = forward.schedule_table(problem.process)
    finest = forward.finest_width(problem.dist, problem.process)
    return ForwardView(s.t, x0, xt, data, noisy, at["alpha"], at["sigma"], table, finest)


@dataclass(frozen=True, eq=False)
class ForwardAnimation:
    """times (F,), the same particles at each (F, n, 2), axis ranges (F, 2), sigma_t (F,), the
    data's finest width (`forward.finest_width`)."""

    times: np.ndarray
    traj: np.ndarray
    ranges: np.ndarray
    sigmas: np.ndarray | None = None
    finest: float | None = None


def forward_animation_view(
    problem: Problem, n_frames: int = 26, n: int = 600, seed: int = 0
) -> ForwardAnimation:
    """The forward diffusion of n particles from t = 0 to 1 in n_frames frames."""
    process = problem.process
    times = np.linspace(0.0, 1.0, n_frames)
    traj = forward.forward_trajectory(problem.dist, process, times, n=n, seed=seed)
    ranges = np.array([forward.view_range(process, t) for t in times])
    sigmas = np.array([process.at(float(t)).sigma for t in times])
    finest = forward.finest_width(problem.dist, process)
    return ForwardAnimation(times, traj, ranges, sigmas, finest)
