"""View pipelines without Streamlit: settings in, a frozen dataclass of arrays out.

The app (through one cached wrapper in `scoreviz.ui.compute`), the benchmark and a notebook all
call these, so they draw the same figure from the same numbers.

    row = sampling_row(exact_score_fn(dist, process), dist, process, SamplerConfig())
    row.frames.xs   # (F, n, 2) particles per frame; row.report: metrics of row.final (N, 2)

Started for the Sampling view (issue 9, part 1): one row = one sampler run with one score.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from scoreviz import analysis, metrics, samplers
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess
from scoreviz.score import ScoreFn


@dataclass(frozen=True, eq=False)
class SamplingRow:
    """One row of the Sampling view.

    frames: analysis.SamplingFrames (at most 60 frames of at most max_particles particles);
    field_xy, field_score, ranges: the score arrows per frame and the axis ranges;
    final: the finite final samples (N, 2); report: metrics.sample_report of them against the
    distribution (plus metrics.memorisation_report when training points are given).
    """

    frames: analysis.SamplingFrames
    field_xy: np.ndarray
    field_score: np.ndarray
    ranges: np.ndarray
    final: np.ndarray
    report: dict

    def as_dict(self) -> dict:
        """The fields by name (shallow: the arrays and frames are not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


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
    frames = analysis.light_frames(traj.times, traj.xs, traj.x0_hats, 60, max_particles)
    ranges = analysis.view_ranges(frames.xs)
    field_xy, field_score = analysis.field_frames(score_fn, frames.times, ranges, n_grid)
    final = traj.final[analysis.finite_particles(traj.xs[-1:], traj.x0_hats[-1:])]
    report = metrics.sample_report(final, dist, seed=config.seed) if len(final) else {}
    if train_points is not None and len(final):
        report.update(metrics.memorisation_report(final, train_points, dist, config.seed))
    return SamplingRow(frames, field_xy, field_score, ranges, final, report)
