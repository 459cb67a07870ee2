"""The Loss-vs-t page's pipeline: the model's DSM loss per t bin against its exact floor, and the
floors of every weighting (`views/loss.py`, `figures/loss.py`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoreviz import analysis, losses, training
from scoreviz.losses import WEIGHTINGS
from scoreviz.problem import Problem
from scoreviz.score import exact_score_fn


@dataclass(frozen=True)
class LossSettings:
    """Weightings to compare, t bins, fresh samples per bin, seed; exact_floors False: the exact
    score's own loss per bin stands in for the (costly) exact floor curves."""

    weightings: tuple[str, ...]
    n_bins: int = 24
    per_bin: int = 256
    seed: int = 0
    exact_floors: bool = True


def loss_bins(problem: Problem, s: LossSettings) -> pd.DataFrame:
    """DSM loss per t bin under each weighting: of the first model's score, or of the exact
    score without a model (what a perfect model would show: the floor)."""
    process, model = problem.process, problem.model
    score_fn = exact_score_fn(problem.dist, process) if model is None else model.score_fn()
    return analysis.binned_loss(
        score_fn, problem.dist, process, s.weightings, s.n_bins, s.per_bin, s.seed
    )


def loss_floors(
    problem: Problem, weightings: tuple[str, ...], n_bins: int, nodes: int = 3, n_mc: int = 1024
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(floor at the quadrature nodes, floor averaged per t bin) for each weighting."""
    edges = analysis.t_bins(problem.process, n_bins)
    return analysis.floor_by_bin(
        problem.dist, problem.process, weightings, edges, n_mc=n_mc, nodes=nodes
    )


@dataclass(frozen=True, eq=False)
class LossView:
    """binned: the first model's loss per bin (the exact score's without a model: `has_model`),
    with its excess over the floor and that excess' Monte Carlo standard error (columns
    "excess", "excess_se"); exact: the exact score's (None when it is the floor); fine /
    by_bin: the floor at fine t and averaged per bin (column "floor")."""

    binned: pd.DataFrame
    exact: pd.DataFrame | None
    fine: pd.DataFrame
    by_bin: pd.DataFrame
    has_model: bool = True


def with_excess(binned: pd.DataFrame, by_bin: pd.DataFrame, floor_se=None) -> pd.DataFrame:
    """binned plus "excess" = loss - floor of its bin and "excess_se", its standard error: the
    loss' own (`loss_se`, the spread of the per-sample losses over sqrt(n)), combined with the
    floor's when the floor is itself a Monte Carlo estimate (`floor_se`, per bin, aligned with
    by_bin; then sqrt(se^2 + floor_se^2), an upper bound for positively correlated estimates).
    The expected excess is >= 0; an estimate may dip below by a few standard errors."""
    floors = by_bin.assign(floor_se=0.0 if floor_se is None else np.asarray(floor_se))
    out = binned.merge(floors[["weighting", "bin", "floor", "floor_se"]], on=["weighting", "bin"])
    out["excess"] = out["loss"] - out["floor"]
    out["excess_se"] = np.hypot(out["loss_se"], out["floor_se"])
    return out.drop(columns=["floor", "floor_se"])


def loss_view(problem: Problem, s: LossSettings, *, bins=loss_bins, floors=loss_floors):
    """The first model's loss per t bin against the floor (LossView); without a model, the
    exact score's (what a perfect model shows)."""
    binned, exact = bins(problem, s), bins(problem.exact(), s)
    has_model = problem.model is not None
    if s.exact_floors:
        fine, by_bin = floors(problem.exact(), s.weightings, s.n_bins)
        return LossView(with_excess(binned, by_bin), exact, fine, by_bin, has_model)
    fine = exact[["weighting", "t", "loss"]].rename(columns={"loss": "floor"})
    by_bin = exact.rename(columns={"loss": "floor"})[["weighting", "bin", "floor"]]
    binned = with_excess(binned, by_bin, exact["loss_se"].to_numpy())
    return LossView(binned, None, fine, by_bin, has_model)


def weighting_floors(problem: Problem, n: int = 40, n_mc: int = 1024) -> pd.DataFrame:
    """The floor of every weighting at n noise levels log-spaced over the process' range."""
    process = problem.process
    sigmas = analysis.sigma_grid(process, n, smallest=1e-3)
    t = process.t_from_sigma(np.asarray(sigmas)).numpy()
    return analysis.floor_curve(problem.dist, process, tuple(WEIGHTINGS), t, n_mc)


def mean_loss_floor(
    problem: Problem,
    weighting: str,
    dae_t: float | None,
    time_sampling: str = "uniform",
    n_mc: int = 1024,
) -> float | None:
    """The exact minimum of the training loss (`losses.training_floor`) for a model trained with
    `time_sampling` (TrainConfig.time_sampling), None if not finite."""
    process = problem.process
    density = None
    if time_sampling != "uniform":
        density = functools.partial(training.time_density, process, scheme=time_sampling)
    value = losses.training_floor(problem.dist, process, weighting, dae_t, density, n_mc=n_mc)
    return value if np.isfinite(value) else None
