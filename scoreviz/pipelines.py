"""View pipelines without Streamlit: a Problem and a view's settings in, a frozen dataclass out.

The app (through one cached wrapper per piece in `scoreviz.ui.compute`), the benchmark and a
notebook all call these, so they draw the same figure from the same numbers:

    problem = Problem.builtin("eight_gaussians", "vp_linear")
    view = sampling_view(problem, SamplingSettings(SamplerConfig(), rows=("exact",)))
    view.rows[0].frames.xs   # (F, n, 2) particles per frame; .report: metrics of .final (N, 2)
    figures.sampling.sampling_figure(view)

The decisions a page used to make live here too: which score a row samples with (learned, exact,
or the memorising optimum of the model's training points), which truth a model is compared with
(`ground_truth`), how a classical DAE is configured (`dae_train_config`). An assembler whose parts
are cached separately (`forward_view`, `loss_view`, `sampling_view`) takes those parts as
keyword arguments: the app passes its cached ones, everyone else gets these plain functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
import torch

from scoreviz import analysis, forward, grids, metrics, mixture, samplers
from scoreviz.mixture import GaussianMixture
from scoreviz.problem import Problem
from scoreviz.processes import NoiseProcess
from scoreviz.score import ScoreFn, exact_score_fn

EXACT = "exact E[x₀|x̃]"  # display name of the exact denoiser (DAE view)


def tkey(t: float) -> float:
    """A time as a settings value: rounded to 4 decimals, so slider positions are stable keys."""
    return round(float(t), 4)


def data_samples(problem: Problem, n: int, seed: int) -> np.ndarray:
    """n clean samples x_0 (n, 2) float32 for `seed`."""
    gen = torch.Generator().manual_seed(int(seed))
    return problem.dist.sample(n, generator=gen).numpy()


# ---------------------------------------------------------------------------- ground truth
@dataclass(frozen=True)
class GroundTruth:
    """What a model is compared with: `problem` (the model's own data and process when the
    sidebar shows others); `moved` if that differs from the sidebar; `upload_missing` if the
    model's data is an upload not in this session (the sidebar's data stands in)."""

    problem: Problem
    moved: bool
    upload_missing: bool


def ground_truth(sidebar: Problem) -> GroundTruth:
    """The truth to compare sidebar.model with: the data and process it was trained on."""
    from scoreviz.distributions import DISTRIBUTIONS, get_distribution

    if sidebar.model is None:
        return GroundTruth(sidebar, False, False)
    cfg = sidebar.model.config
    dist_key, dist, missing = sidebar.dist_key, sidebar.dist, False
    if cfg.distribution != sidebar.dist_key:
        if cfg.distribution in DISTRIBUTIONS:
            dist_key, dist = cfg.distribution, get_distribution(cfg.distribution)
        else:
            missing = True
    truth = Problem(dist_key, dist, cfg.process, sidebar.models)
    moved = (dist_key, cfg.process) != (sidebar.dist_key, sidebar.process_key)
    return GroundTruth(truth, moved, missing)


# ---------------------------------------------------------------------------- data & forward
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


# ---------------------------------------------------------------------------- score field
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


# ---------------------------------------------------------------------------- DAE
def denoiser_kinds(problem: Problem) -> dict[str, str]:
    """Display name -> colour role ("learned", "dae", "exact") of every denoiser of the view."""
    kinds = {m.name: m.result.config.model.kind for m in problem.models}
    return {n: "dae" if k == "dae" else "learned" for n, k in kinds.items()} | {EXACT: "exact"}


def short_label(name: str, problem: Problem, limit: int = 28) -> str:
    """A model's name as a legend shows it: its " · "-separated parts that only repeat the
    data and process (registry keys, their labels, "upload:<sha>", "seed N", id hashes) left
    out, at most `limit` characters. "DAE σ=0.5 · eight_gaussians · vp_linear" -> "DAE σ=0.5"."""
    import re

    from scoreviz.distributions import DISTRIBUTIONS
    from scoreviz.processes import PROCESSES

    known = set(DISTRIBUTIONS) | set(PROCESSES) | {problem.dist_key, problem.process_key}
    known |= {label for label, _ in DISTRIBUTIONS.values()} | {p.label for p in PROCESSES.values()}
    parts = [p for p in name.split(" · ") if p.strip()]
    kept = [
        p
        for p in parts
        if p.strip() not in known
        and not p.strip().startswith("upload:")
        and not re.fullmatch(r"seed \d+|[0-9a-f]{4,12}", p.strip())  # seeds, id hashes
    ]
    out = " · ".join(kept) or parts[0] if parts else name
    return out if len(out) <= limit else out[: limit - 1] + "…"


def denoiser_labels(problem: Problem) -> dict[str, str]:
    """Display name -> short legend label (`short_label`) of every denoiser of the view."""
    return {m.name: short_label(m.name, problem) for m in problem.models} | {EXACT: EXACT}


def _denoisers(problem: Problem) -> dict[str, Callable]:
    out = {m.name: m.result.model.denoise for m in problem.models}
    out[EXACT] = analysis.exact_denoiser(problem.dist, problem.process)
    return out


def dae_sigmas(lo: float, hi: float, panels: int = 4) -> tuple[float, ...]:
    """The DAE page's noise levels for its range slider at (lo, hi): `panels` log-spaced from
    lo to hi, or lo alone when they are equal."""
    return (lo,) if lo == hi else tuple(float(s) for s in np.geomspace(lo, hi, panels))


@dataclass(frozen=True)
class DaeSettings:
    """Noise levels of the panels, points per panel, seed."""

    sigmas: tuple[float, ...]
    n: int = 80
    seed: int = 0


@dataclass(frozen=True, eq=False)
class DaeView:
    """One analysis.Reconstruction per sigma; kinds: denoiser name -> colour role; labels:
    denoiser name -> short legend label (no registry keys)."""

    panels: tuple[analysis.Reconstruction, ...]
    kinds: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)

    def without(self, hidden) -> DaeView:
        """The same view with the denoisers named in `hidden` left out of every panel."""
        keep = set(self.kinds) - set(hidden)
        return DaeView(tuple(p.only(keep) for p in self.panels), self.kinds, self.labels)


def dae_view(problem: Problem, s: DaeSettings) -> DaeView:
    """Reconstructions by every model of the problem and by the exact denoiser, per sigma."""
    denoisers = _denoisers(problem)
    panels = analysis.reconstructions(
        denoisers, problem.dist, problem.process, s.sigmas, n=s.n, seed=s.seed
    )
    return DaeView(tuple(panels), denoiser_kinds(problem), denoiser_labels(problem))


@dataclass(frozen=True, eq=False)
class DaeErrorView:
    """analysis.reconstruction_error's table; kinds, labels as in DaeView; marks: DAE name ->
    its sigma."""

    table: pd.DataFrame
    kinds: dict[str, str]
    marks: dict[str, float]
    labels: dict[str, str] = field(default_factory=dict)


def dae_error_points(dist: GaussianMixture) -> int:
    """Points per sigma of the error curve: 1,024, fewer for big mixtures (24 sigmas x n points
    x every component, twice): 256 for an upload merged to 2,000 components."""
    return int(np.clip(2**19 // dist.n_components, 256, 1024))


def dae_error_view(
    problem: Problem, n_sigmas: int = 24, n: int = 1024, seed: int = 0
) -> DaeErrorView:
    """Reconstruction error vs sigma (log grid over the process' range) and the exact MMSE."""
    sigmas = analysis.sigma_grid(problem.process, n_sigmas)
    table = analysis.reconstruction_error(
        _denoisers(problem), problem.dist, problem.process, sigmas, n=n, seed=seed
    )
    marks = {
        m.name: m.result.config.model.dae_sigma
        for m in problem.models
        if m.result.config.model.kind == "dae"
    }
    return DaeErrorView(table, denoiser_kinds(problem), marks, denoiser_labels(problem))


def dae_train_config(problem: Problem, sigma: float, steps: int, seed: int):
    """The TrainConfig of a classical DAE at one sigma on the problem's data and process."""
    from scoreviz.models import ModelConfig
    from scoreviz.training import TrainConfig

    model = ModelConfig(kind="dae", dae_sigma=float(sigma))
    return TrainConfig(
        distribution=problem.dist_key,
        process=problem.process_key,
        model=model,
        steps=int(steps),
        seed=seed,
    )


def train_dae(problem: Problem, sigma: float, steps: int, seed: int, on_progress, store=None):
    """Train a classical DAE at one sigma (on_progress(fraction done)); reuse an identical
    finished one from `store` (get(model_id) / put(model_id, result)), built-in data only."""
    from scoreviz.training import train

    config = dae_train_config(problem, sigma, steps, seed)
    upload = problem.dist_key.startswith("upload:")
    store = None if upload else store
    cached = None if store is None else store.get(config.model_id)
    if cached is not None:
        return cached

    def progress(p) -> None:
        on_progress(p.step / p.steps)

    result = train(config, progress=progress, dist=problem.dist if upload else None)
    if store is not None:
        store.put(result.model_id, result)
    return result


# ---------------------------------------------------------------------------- loss vs t
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
    from scoreviz.losses import WEIGHTINGS

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
    from scoreviz import losses, training

    process = problem.process
    density = None
    if time_sampling != "uniform":
        density = functools.partial(training.time_density, process, scheme=time_sampling)
    value = losses.training_floor(problem.dist, process, weighting, dae_t, density, n_mc=n_mc)
    return value if np.isfinite(value) else None


# ---------------------------------------------------------------------------- sampling
ROWS = {"learned": "learned score", "exact": "exact score", "memorised": "memorising optimum"}


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
    return SamplingRow(**{**out.as_dict(), "kind": row, "label": ROWS[row]})


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
