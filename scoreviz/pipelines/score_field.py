"""The Score field page's pipeline: learned and exact score arrows on a grid at one t, and their
error; and the same for the flow-matching velocity v = E[eps - x_0 | x_t] (`velocity_field_view`)
(`views/score_field.py`, `figures/fields.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scoreviz import flow, forward, grids
from scoreviz.problem import Problem
from scoreviz.score import exact_score_fn, full_t

RAW_ARROW_FILL = 0.6  # raw scores: the 95th-percentile exact arrow at t = 1 is 0.6 cells long


@dataclass(frozen=True, eq=False)
class ScoreFieldView:
    """grids.ScoreField at one t (learned part only with a model), its axis range `xy`, and
    `raw_scale`: data units per raw-score unit, the same at every t (`raw_arrow_scale`)."""

    field: grids.ScoreField
    xy: tuple[float, float]
    raw_scale: float = 0.0


def raw_arrow_scale(problem: Problem, n_arrows: int = 15) -> float:
    """One arrow scale for raw scores at every t: the 95th-percentile exact score on the
    n_arrows^2 grid at t = 1 (where scores are smallest) is RAW_ARROW_FILL cells long, so
    the 1/sigma_t growth of the score towards t = 0 shows as longer arrows (0 if degenerate)."""
    process = problem.process
    grid = grids.make_grid(n_arrows, forward.view_range(process, 1.0))
    score = grids.score_on_points(exact_score_fn(problem.dist, process), 1.0, grid.points)
    ref = float(np.quantile(np.linalg.norm(score.astype(np.float64), axis=1), 0.95))
    return RAW_ARROW_FILL * grid.spacing / ref if ref > 1e-12 else 0.0


def score_field_view(problem: Problem, t: float, n_arrows: int = 15) -> ScoreFieldView:
    """The exact score field at t on n_arrows^2 arrows, and the first model's beside it if the
    problem has one."""
    process, model = problem.process, problem.model
    xy = forward.view_range(process, t)
    learned_fn = None if model is None else model.score_fn()
    field = grids.score_field(problem.dist, process, t, learned_fn, xy, n_arrows=n_arrows)
    return ScoreFieldView(field, xy, raw_arrow_scale(problem, n_arrows))


@dataclass(frozen=True, eq=False)
class VelocityFieldView:
    """The velocity v = E[eps - x_0 | x_t] at one t on a G x G arrow grid (`flow`), exact and
    learned (None without a model), over the exact p_t.

    grid (G*G points), exact and learned (G*G, 2) float32; bg_grid and density: exact p_t
    (B, B); error: the mean ||v_hat - v||^2 under p_t on the background grid (None without a
    model); coupling: the model's training coupling ("independent" / "ot", None without one):
    the exact field is the independent coupling's, and an OT model learns another field.
    """

    t: float
    alpha: float
    sigma: float
    speed: float | None  # d tau/dt of the linear path (dx/dt = speed v), None for other processes
    xy: tuple[float, float]
    grid: grids.Grid
    exact: np.ndarray
    learned: np.ndarray | None
    bg_grid: grids.Grid
    density: np.ndarray
    error: float | None
    coupling: str | None


def _velocities(fn, t: float, points: np.ndarray) -> np.ndarray:
    x = torch.as_tensor(points, dtype=torch.float32)
    with torch.no_grad():
        return fn(x, full_t(t, len(x))).numpy().astype(np.float32)


def velocity_field_view(problem: Problem, t: float, n_arrows: int = 15) -> VelocityFieldView:
    """The exact velocity (from the exact score, `flow.exact_velocity_fn`) at t on n_arrows^2
    arrows, and the first model's own velocity beside it if the problem has one."""
    process, result = problem.process, problem.model
    xy = forward.view_range(process, t)
    grid, bg = grids.make_grid(n_arrows, xy), grids.make_grid(48, xy)
    exact_fn = flow.exact_velocity_fn(problem.dist, process)
    density = np.exp(grids.log_density_grid(problem.dist, process, t, bg).astype(np.float64))
    learned = error = coupling = None
    if result is not None:
        model_fn = flow.model_velocity_fn(result.model)
        learned = grids.finite(_velocities(model_fn, t, grid.points))
        d = _velocities(model_fn, t, bg.points) - _velocities(exact_fn, t, bg.points)
        sq = grids.finite((d.astype(np.float64) ** 2).sum(1))
        w = density.reshape(-1)
        error = float((w * sq).sum() / w.sum()) if w.sum() > 0 else float(sq.mean())
        coupling = getattr(result.config, "coupling", "independent")
    alpha, sigma, _ = process.at(t)
    return VelocityFieldView(
        t=float(t), alpha=alpha, sigma=sigma, speed=getattr(process, "speed", None), xy=xy,
        grid=grid, exact=grids.finite(_velocities(exact_fn, t, grid.points)), learned=learned,
        bg_grid=bg, density=grids.finite(density), error=error, coupling=coupling,
    )  # fmt: skip
