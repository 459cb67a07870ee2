"""Few-step sampling against the truth (the Sampling page's "quality vs number of steps" chart,
`figures/steps.py`): the chosen sampler run at 1, 2, 4, ..., 200 steps with the learned and with
the exact score, each final cloud measured against fresh exact samples of the data.

    nats lost(n) = mean log p_0(fresh exact samples) - mean log p_0(samples after n steps)
    W2(n)        = exact Wasserstein-2 distance to as many fresh exact samples (its floor: two
                   exact samples of that size)

The exact score's curve is the sampler's own discretisation error (the score is perfect); the
gap between it and the learned curve at the same n is the model's. Nats lost can go below 0: a
sampler that over-sharpens the modes puts its samples where log p_0 is higher than the data do
(W2 then still shows the error).

    view = steps_view(problem, StepsSettings(SamplerConfig(name="pf_ode_heun")))
    figures.steps.steps_figure(view)
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from scoreviz import metrics, samplers
from scoreviz.errors import ConfigError
from scoreviz.pipelines.sampling import row_score
from scoreviz.problem import Problem

STEP_COUNTS = (1, 2, 4, 8, 16, 32, 64, 200)
CURVES = {"learned": "learned score", "exact": "exact score"}
REFERENCE_SAMPLES = 20_000  # fresh exact samples behind the data's mean log p_0
FLOOR_REPEATS = 4  # pairs of exact samples averaged into the W2 floor


@dataclass(frozen=True)
class StepsSettings:
    """The sampler (its n_steps, n_particles and n_frames are replaced), the step counts, the
    particles per run and the curves (keys of CURVES)."""

    config: samplers.SamplerConfig
    step_counts: tuple[int, ...] = STEP_COUNTS
    n_particles: int = 500
    curves: tuple[str, ...] = ("learned", "exact")

    def __post_init__(self) -> None:
        counts = self.step_counts
        if not counts or any(not isinstance(n, int) or not 1 <= n <= 1000 for n in counts):
            raise ConfigError("Step counts must be whole numbers from 1 to 1,000.")
        if list(counts) != sorted(set(counts)):
            raise ConfigError("Step counts must be increasing, each once.")
        if not isinstance(self.n_particles, int) or not 10 <= self.n_particles <= 2000:
            raise ConfigError("The steps chart uses 10 to 2,000 particles.")
        unknown = [c for c in self.curves if c not in CURVES]
        if unknown:
            raise ConfigError(f"Unknown curves {unknown}; valid: {list(CURVES)}.")

    def run_config(self, n_steps: int) -> samplers.SamplerConfig:
        """The sampler at n_steps, recording only its start and end."""
        return dataclasses.replace(
            self.config, n_steps=n_steps, n_particles=self.n_particles, n_frames=2
        )


@dataclass(frozen=True, eq=False)
class StepsCurve:
    """One score's curve: steps (S,), nats_lost and w2 (S,) float64 (NaN where the sampler blew
    up, `diverged` True there), its kind ("learned" | "exact"), label and the seconds it took."""

    steps: np.ndarray
    nats_lost: np.ndarray
    w2: np.ndarray
    diverged: np.ndarray
    kind: str
    label: str
    seconds: float


@dataclass(frozen=True, eq=False)
class StepsView:
    """The curves in order, the W2 floor (mean W2 of two exact samples of n_particles) and its
    spread (max - min over FLOOR_REPEATS pairs), the sampler's label and the particles per run."""

    curves: tuple[StepsCurve, ...]
    w2_floor: float
    w2_floor_spread: float
    sampler: str
    n_particles: int

    def curve(self, kind: str) -> StepsCurve | None:
        return next((c for c in self.curves if c.kind == kind), None)


def reference_log_p(problem: Problem, n: int = REFERENCE_SAMPLES, seed: int = 0) -> float:
    """Mean exact log p_0 of n fresh exact samples (minus the entropy, up to Monte Carlo)."""
    gen = torch.Generator().manual_seed(int(seed) + 104_729)
    return float(problem.dist.log_prob(problem.dist.sample(n, gen, dtype=torch.float64)).mean())


def _fresh(problem: Problem, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(int(seed) + 7_777)
    return problem.dist.sample(n, gen, dtype=torch.float64)


def steps_curve(problem: Problem, kind: str, s: StepsSettings) -> StepsCurve:
    """Run the sampler at every step count with one score (learned needs a model; exact does
    not: pass `problem.exact()` and it is shared by every model) from the same seed."""
    score_fn = row_score(problem, kind)
    ref = reference_log_p(problem, seed=s.config.seed)
    fresh = _fresh(problem, s.n_particles, s.config.seed)
    lost, w2, bad = [], [], []
    start = time.perf_counter()
    for n in s.step_counts:
        try:
            x = samplers.sample(score_fn, problem.process, s.run_config(n)).final
        except samplers.SamplerDivergedError:
            x = np.full((s.n_particles, 2), np.nan)
        ok = np.isfinite(x).all(1)
        bad.append(not ok.all())
        if bad[-1]:
            lost.append(np.nan)
            w2.append(np.nan)
            continue
        lost.append(ref - metrics.mean_log_likelihood(x, problem.dist))
        w2.append(metrics.wasserstein2(x, fresh))
    seconds = time.perf_counter() - start
    return StepsCurve(
        np.asarray(s.step_counts), np.asarray(lost, float), np.asarray(w2, float),
        np.asarray(bad), kind, CURVES[kind], seconds,
    )  # fmt: skip


def w2_floor(problem: Problem, n: int, seed: int = 0) -> tuple[float, float]:
    """(mean, max - min) W2 between two fresh exact samples of n points, FLOOR_REPEATS pairs."""
    gen = torch.Generator().manual_seed(int(seed) + 31_337)
    d = problem.dist
    vals = [
        metrics.wasserstein2(d.sample(n, gen, dtype=torch.float64), d.sample(n, gen))
        for _ in range(FLOOR_REPEATS)
    ]
    return float(np.mean(vals)), float(np.ptp(vals))


def steps_view(
    problem: Problem, s: StepsSettings, *, curve=steps_curve, floor=w2_floor
) -> StepsView:
    """Every curve (the learned one only with a model), the exact one from `problem.exact()`."""
    kinds = [k for k in s.curves if k != "learned" or problem.model is not None]
    curves = tuple(curve(problem.exact() if k == "exact" else problem, k, s) for k in kinds)
    mean, spread = floor(problem.exact(), s.n_particles, s.config.seed)
    label = samplers.SAMPLERS[s.config.name].label
    return StepsView(curves, mean, spread, label, s.n_particles)
