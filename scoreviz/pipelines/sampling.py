"""The Sampling page's pipeline: one row per score (learned, exact, the memorising optimum), each a
sampler's whole trajectory from the same noise, and its report against the exact distribution
(`views/sampling.py`, `figures/sampling.py`)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from scoreviz import analysis, flow, forward, metrics, mixture, samplers
from scoreviz.mixture import GaussianMixture
from scoreviz.pipelines.common import data_samples
from scoreviz.problem import Problem
from scoreviz.processes import NoiseProcess
from scoreviz.score import ScoreFn, exact_score_fn

ROWS = {"learned": "learned score", "exact": "exact score", "memorised": "memorising optimum"}
# On the linear path the rows are read as velocities (the ODE moves particles along v): the exact
# row is the exact velocity of the independent pairing, whatever the model's coupling (the page's
# caption says so: "(independent pairing)" in the panel title ran into its neighbour's at 720p).
FLOW_ROWS = {"learned": "learned velocity", "exact": "exact velocity"}


def row_label(problem: Problem, row: str) -> str:
    """A row's name in the view: ROWS, or FLOW_ROWS on the linear path."""
    if problem.process_key == "linear":
        return FLOW_ROWS.get(row, ROWS[row])
    return ROWS[row]


@dataclass(frozen=True, eq=False)
class SamplingRow:
    """One row of the Sampling view.

    frames: analysis.SamplingFrames (at most 60 frames of at most max_particles particles);
    field_xy, field_score, ranges: the score arrows per frame and the x_t axis half-widths per
    frame (`analysis.run_ranges`; `sampling_view` gives every row the same);
    final: the finite final samples (N, 2); report: metrics.sample_report of them against the
    distribution (plus metrics.memorisation_report when training points are given);
    kind: "learned" | "exact" | "memorised" (its colour role), label: its name in the view;
    alphas, sigmas (F,): alpha_t and sigma_t at the frames (when x0_hat means something).
    """

    frames: analysis.SamplingFrames
    field_xy: np.ndarray
    field_score: np.ndarray
    ranges: np.ndarray
    final: np.ndarray
    report: dict
    kind: str = "exact"
    label: str = "exact score"
    alphas: np.ndarray | None = None
    sigmas: np.ndarray | None = None

    def as_dict(self) -> dict:
        """The fields by name (shallow: the arrays and frames are not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def frame_steps(config: samplers.SamplerConfig, n_recorded: int) -> np.ndarray | None:
    """The sampler step of each recorded frame (0 = the start), as the samplers record them:
    min(n_frames, n_steps + 1) states evenly spread over 0..n_steps. None if that count is not
    n_recorded (a sampler that records otherwise)."""
    f = min(config.n_frames, config.n_steps + 1)
    if f != n_recorded:
        return None
    return np.round(np.linspace(0, config.n_steps, f)).astype(int)


def sampling_row(
    score_fn: ScoreFn,
    dist: GaussianMixture,
    process: NoiseProcess,
    config: samplers.SamplerConfig,
    max_particles: int = 1000,
    n_grid: int = 15,
    train_points: np.ndarray | None = None,
) -> SamplingRow:
    """Sample with score_fn and prepare one row of the Sampling view (see SamplingRow)."""
    traj = samplers.sample(score_fn, process, config)
    steps = frame_steps(config, len(traj.times))
    frames = analysis.light_frames(
        traj.times, traj.xs, traj.x0_hats, 60, max_particles, steps=steps
    )
    ranges = analysis.run_ranges(frames.xs)
    field_xy, field_score = analysis.field_frames(score_fn, frames.times, ranges, n_grid)
    final = traj.final[analysis.finite_particles(traj.xs[-1:], traj.x0_hats[-1:])]
    report = metrics.sample_report(final, dist, seed=config.seed) if len(final) else {}
    if train_points is not None and len(final):
        report.update(metrics.memorisation_report(final, train_points, dist, config.seed))
    at = process.at(torch.as_tensor(frames.times, dtype=torch.float64))
    alphas, sigmas = at.alpha.numpy(), at.sigma.numpy()
    return SamplingRow(
        frames, field_xy, field_score, ranges, final, report, alphas=alphas, sigmas=sigmas
    )


@dataclass(frozen=True)
class SamplingSettings:
    """The sampler, which rows (keys of ROWS, in order), particles drawn per frame, arrows per
    side (10: each arrow costs 6 floats per frame, ~35 % of the figure's bytes), and how many
    exact samples of the data to draw beside the rows."""

    config: samplers.SamplerConfig
    rows: tuple[str, ...] = ("learned", "exact")
    max_particles: int = 1000
    n_grid: int = 10
    n_data: int = 1000

    def __post_init__(self) -> None:
        unknown = [r for r in self.rows if r not in ROWS]
        if unknown:
            raise ValueError(f"Unknown sampling rows {unknown}; valid: {list(ROWS)}")


def row_score(problem: Problem, row: str) -> ScoreFn:
    """The score a row samples with: the model's, the exact one, or the exact score of the
    model's training points (the memorising optimum, of at most mixture.MAX_MEMORISED)."""
    if row == "learned":
        return problem.model.score_fn()
    if row == "memorised":
        return exact_score_fn(mixture.memorising_optimum(problem.train_points), problem.process)
    return exact_score_fn(problem.dist, problem.process)


def row_problem(problem: Problem, row: str) -> Problem:
    """What a row depends on: the exact row without training points needs no model (so it is
    shared across models); every other row needs the model (its score or training points)."""
    return problem.exact() if row == "exact" and problem.train_points is None else problem


def sampling_view_row(problem: Problem, row: str, s: SamplingSettings) -> SamplingRow:
    """One row of the view ("learned" needs a model, "memorised" its training points)."""
    pts = problem.train_points
    out = sampling_row(
        row_score(problem, row), problem.dist, problem.process, s.config, s.max_particles,
        s.n_grid, pts,
    )  # fmt: skip
    return SamplingRow(**{**out.as_dict(), "kind": row, "label": row_label(problem, row)})


@dataclass(frozen=True, eq=False)
class SamplingView:
    """The rows in order, exact samples of the data (n_data, 2), the model's training points
    (N, 2) or None, the true mixture weights (K,), and the data's finest width
    (`forward.finest_width`)."""

    rows: tuple[SamplingRow, ...]
    data: np.ndarray
    train_points: np.ndarray | None
    true_weights: np.ndarray
    finest: float | None = None


def sampling_view(
    problem: Problem, s: SamplingSettings, *, row=sampling_view_row, samples=data_samples
) -> SamplingView:
    """Every row of the Sampling view from the same seed, beside exact samples of the data.

    The rows share their x_t ranges (the widest at each frame); a row whose own were narrower
    gets its score arrows again on the shared grid, so arrows and axes match in every panel."""
    rows = tuple(row(row_problem(problem, r), r, s) for r in s.rows)
    rows = _share_ranges(problem, rows, s)
    data = samples(problem.exact(), s.n_data, s.config.seed)
    weights = problem.dist.weights.numpy()
    finest = forward.finest_width(problem.dist, problem.process)
    return SamplingView(rows, data, problem.train_points, weights, finest)


def _share_ranges(problem: Problem, rows, s: SamplingSettings) -> tuple[SamplingRow, ...]:
    if len(rows) < 2:
        return rows
    shared = analysis.shared_ranges([r.ranges for r in rows])
    out = []
    for r in rows:
        if not np.array_equal(r.ranges, shared):
            score_fn = row_score(row_problem(problem, r.kind), r.kind)
            xy, score = analysis.field_frames(score_fn, r.frames.times, shared, s.n_grid)
            r = SamplingRow(**{**r.as_dict(), "field_xy": xy, "field_score": score})
        out.append(SamplingRow(**{**r.as_dict(), "ranges": shared}))
    return tuple(out)


@dataclass(frozen=True)
class StraightnessView:
    """Path length / chord of the probability-flow ODE's paths (`flow.ode_straightness`: 500
    particles, 100 Heun steps, the sampler's seed) for the exact score and for the model (None
    without one), on the problem's process; coupling: the model's ("independent" / "ot")."""

    exact: float
    learned: float | None
    coupling: str | None

    def text(self) -> str:
        """One line for the Sampling page's caption."""
        parts = [f"exact {self.exact:.2f}"]
        if self.learned is not None:
            pairing = "OT pairing" if self.coupling == "ot" else "independent pairing"
            parts.insert(0, f"learned ({pairing}) {self.learned:.2f}")
        return "Path length ÷ chord of the PF-ODE paths (1 = straight): " + " · ".join(parts)


def straightness_view(problem: Problem, seed: int = 0) -> StraightnessView:
    """How straight the probability-flow ODE's paths are, exact and learned, on this process."""
    process = problem.process
    exact = flow.ode_straightness(exact_score_fn(problem.dist, process), process, seed=seed)
    result = problem.model
    if result is None:
        return StraightnessView(exact, None, None)
    learned = flow.ode_straightness(result.score_fn(), process, seed=seed)
    return StraightnessView(exact, learned, getattr(result.config, "coupling", "independent"))
