"""The Score field page's pipeline: learned and exact score arrows on a grid at one t, and their
error (`views/score_field.py`, `figures/fields.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoreviz import forward, grids
from scoreviz.problem import Problem
from scoreviz.score import exact_score_fn

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
