"""The Guidance page's pipeline: classifier-free guidance with the learned and the exact scores,
beside the tilted density that guidance is often said to sample, and does not.

Guidance mixes the unconditional and the class-c score with a weight w (`score.guided_score_fn`):

    s_w(x, t) = s_u + w (s_c - s_u) = grad log [ p_t(x | c)^w  p_t(x)^(1 - w) ]

(w = 0: unconditional; w = 1: conditional; "1 + w'" in papers that write s_c + w'(s_c - s_u)).
At t = 0 that is the score of the tilted density p(x | c)^w p(x)^(1 - w) / Z_w (`tilted_density`,
normalised on a grid). At t > 0 it is not the score of that density noised, so even the exact
guided score does not sample the tilted density: `guidance_view` puts samples of both side by
side with their class shares (mode weights) and energy distance, and `guidance_curve` measures
the gap over a range of w, for a stochastic (DDPM) and a deterministic (DDIM) sampler.

    problem = Problem.builtin("eight_gaussians", "vp_linear")
    view = guidance_view(problem, GuidanceSettings(c=0, w=3.0))
    view.exact, view.tilted.density, view.energy   # (N, 2) samples, (G, G), float
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from scoreviz import metrics, samplers
from scoreviz.errors import ConfigError, unknown_key
from scoreviz.grids import make_grid
from scoreviz.mixture import GaussianMixture
from scoreviz.problem import Problem
from scoreviz.score import ScoreFn, exact_class_score_fn, guided_score_fn

# The guidance weight's slider stops (samples are cached per stop): 0 is unconditional, 1
# conditional, above 1 guidance sharpens. The curve over w uses the same stops.
W_STOPS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
GUIDANCE_SAMPLERS = {
    "ddpm": "DDPM (stochastic, ancestral)",
    "ddim": "DDIM (deterministic, η = 0)",
}
LIM = 3.0  # the panels' half-width: the built-ins have unit spread
GRID = 200  # tilted density grid cells a side: 0.03 apart, half the thinnest built-in's width
N_PARTICLES, N_STEPS = 1000, 100
CURVE_PARTICLES, CURVE_STEPS = 400, 60  # per w and sampler (2 x 9 runs of the exact score)


@dataclass(frozen=True)
class GuidanceSettings:
    """c: the class guided towards; w: the guidance weight; sampler: a GUIDANCE_SAMPLERS key;
    the same seed drives the learned and the exact guided sampler (the same noise)."""

    c: int = 0
    w: float = 3.0
    sampler: str = "ddpm"
    n_particles: int = N_PARTICLES
    n_steps: int = N_STEPS
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sampler not in GUIDANCE_SAMPLERS:
            raise unknown_key("guidance sampler", self.sampler, GUIDANCE_SAMPLERS)
        if not (math.isfinite(self.w) and 0.0 <= self.w <= 20.0):
            raise ConfigError(f"The guidance weight must lie in [0, 20], got {self.w}.")
        object.__setattr__(self, "w", float(self.w))


@dataclass(frozen=True, eq=False)
class TiltedDensity:
    """p(x | c)^w p(x)^(1 - w) / Z_w on a GRID x GRID grid of cell centres xs, ys over [-LIM,
    LIM]^2: density (G, G) (rows = y) integrates to 1 over the grid (sum x cell area);
    log_z: log Z_w, the grid's integral of the unnormalised density; class_mass (C,): the
    tilted density's mass in each class (weighted by P(c | x) at t = 0)."""

    xs: np.ndarray
    ys: np.ndarray
    density: np.ndarray
    log_z: float
    class_mass: np.ndarray

    @property
    def cell(self) -> float:
        return float(self.xs[1] - self.xs[0])


def _check_class(dist: GaussianMixture, c: int) -> None:
    if not 0 <= int(c) < dist.n_classes:
        raise ConfigError(f"There is no class {c}: this data has {dist.n_classes} classes.")


@functools.lru_cache(maxsize=16)
def _grid_logs(dist: GaussianMixture, c: int, n: int):
    """(grid, log p(x | c), log p(x), P(c' | x)) on the n x n grid: what every w shares (a new w
    then costs a weighted sum, not three passes over grid x components). Keyed by the mixture's
    identity (the built-ins are cached singletons)."""
    grid = make_grid(n, (-LIM, LIM))
    x = torch.as_tensor(grid.points, dtype=torch.float64)
    return grid, dist.given(c).log_prob(x), dist.log_prob(x), dist.class_posterior(x)


def tilted_density(dist: GaussianMixture, c: int, w: float, n: int = GRID) -> TiltedDensity:
    """The tilted density p(x | c)^w p(x)^(1 - w), normalised on an n x n grid over [-LIM, LIM]^2:
    log q = w log p(x | c) + (1 - w) log p(x) - log Z_w (float64, log-sum-exp)."""
    _check_class(dist, c)
    grid, log_c, log_p, post = _grid_logs(dist, int(c), n)
    log_q = w * log_c + (1.0 - w) * log_p
    area = grid.spacing**2
    log_z = float(torch.logsumexp(log_q, 0)) + math.log(area)
    q = torch.exp(log_q - log_z)
    mass = (q[:, None] * post).sum(0) * area
    return TiltedDensity(grid.xs, grid.ys, q.reshape(n, n).numpy(), log_z, mass.numpy())


def tilted_samples(tilted: TiltedDensity, n: int, seed: int) -> np.ndarray:
    """n samples (n, 2) of the gridded tilted density: a cell by its mass, then uniform in it."""
    gen = torch.Generator().manual_seed(int(seed))
    p = torch.as_tensor(tilted.density.ravel(), dtype=torch.float64)
    idx = torch.multinomial(p / p.sum(), n, replacement=True, generator=gen)
    g = len(tilted.xs)
    centre = torch.stack(
        [torch.as_tensor(tilted.xs)[idx % g], torch.as_tensor(tilted.ys)[idx // g]], 1
    )
    jitter = (torch.rand(n, 2, generator=gen, dtype=torch.float64) - 0.5) * tilted.cell
    return (centre + jitter).numpy()


def class_shares(dist: GaussianMixture, x: np.ndarray) -> np.ndarray:
    """Each class's share of the samples x (N, 2): the mean of P(c | x) at t = 0, shape (C,)."""
    pts = torch.as_tensor(np.asarray(x), dtype=torch.float64).reshape(-1, 2)
    pts = pts[torch.isfinite(pts).all(1)]
    if len(pts) == 0:
        return np.zeros(dist.n_classes)
    return dist.class_posterior(pts).mean(0).numpy()


def guided_exact(problem: Problem, c: int, w: float) -> ScoreFn:
    """The exact guided score s_u + w (s_c - s_u) of the problem's mixture."""
    dist, process = problem.dist, problem.process
    return guided_score_fn(
        exact_class_score_fn(dist, process, None), exact_class_score_fn(dist, process, c), w
    )


def conditional_model(problem: Problem):
    """The problem's model if it is class-conditional on the data's classes, else None."""
    res = problem.model
    if res is None or res.config.model.n_classes != problem.dist.n_classes:
        return None
    return res if res.config.model.n_classes > 1 else None


def guided_learned(problem: Problem, c: int, w: float) -> ScoreFn | None:
    """The learned guided score of a conditional model (None without one)."""
    res = conditional_model(problem)
    if res is None:
        return None
    m = res.model
    return guided_score_fn(m.class_score_fn(None), m.class_score_fn(c), w)


def guided_samples(score_fn: ScoreFn, problem: Problem, settings: GuidanceSettings) -> np.ndarray:
    """The final samples (N, 2) of the settings' sampler driven by score_fn (finite rows only)."""
    config = samplers.SamplerConfig(
        name=settings.sampler, n_steps=settings.n_steps, n_particles=settings.n_particles,
        n_frames=2, seed=settings.seed,
    )  # fmt: skip
    x = samplers.sample(score_fn, problem.process, config).final
    x = np.asarray(x, dtype=np.float64)
    return x[np.isfinite(x).all(1)]


def _energy_and_floor(x: np.ndarray, tilted: TiltedDensity, seed: int) -> tuple[float, float]:
    """Energy distance of x to as many tilted-density samples, and the two-sample floor (the
    energy distance between two tilted samples of that size), each the mean of 2 draws."""
    n = max(len(x), 1)
    ys = [tilted_samples(tilted, n, seed + 100 + i) for i in range(4)]
    energy = np.mean([metrics.energy_distance(x, ys[i]) for i in range(2)]) if len(x) else math.inf
    floor = np.mean([metrics.energy_distance(ys[2], ys[3]), metrics.energy_distance(ys[0], ys[2])])
    return float(energy), float(floor)


@dataclass(frozen=True, eq=False)
class GuidanceView:
    """Samples from the same seeds with the exact guided score (`exact`) and the learned one
    (`learned`, None without a conditional model), the tilted density (`tilted`) and as many of
    its samples (`tilted_x`); class shares (C,) of each; the energy distance of the exact-guided
    samples to the tilted density's and its two-sample floor."""

    settings: GuidanceSettings
    class_names: tuple[str, ...]
    exact: np.ndarray
    learned: np.ndarray | None
    tilted: TiltedDensity
    tilted_x: np.ndarray
    exact_shares: np.ndarray
    learned_shares: np.ndarray | None
    energy: float
    floor: float

    @property
    def tilted_shares(self) -> np.ndarray:
        return self.tilted.class_mass

    @property
    def ratio(self) -> float:
        """The energy distance over its two-sample floor (~1: indistinguishable)."""
        return self.energy / max(self.floor, 1e-12)


def guidance_view(problem: Problem, settings: GuidanceSettings) -> GuidanceView:
    """Everything the Guidance page shows at one (class, w, sampler)."""
    dist, c, w = problem.dist, settings.c, settings.w
    _check_class(dist, c)
    tilted = tilted_density(dist, c, w)
    exact = guided_samples(guided_exact(problem, c, w), problem, settings)
    learned_fn = guided_learned(problem, c, w)
    learned = None if learned_fn is None else guided_samples(learned_fn, problem, settings)
    energy, floor = _energy_and_floor(exact, tilted, settings.seed)
    return GuidanceView(
        settings=settings,
        class_names=dist.class_names,
        exact=exact,
        learned=learned,
        tilted=tilted,
        tilted_x=tilted_samples(tilted, settings.n_particles, settings.seed + 1),
        exact_shares=class_shares(dist, exact),
        learned_shares=None if learned is None else class_shares(dist, learned),
        energy=energy,
        floor=floor,
    )


@dataclass(frozen=True, eq=False)
class GuidanceCurve:
    """Over ws (W,): for each sampler (key -> (W,) arrays) the energy distance between exact-guided
    samples and tilted-density samples, over its two-sample floor (`ratio`), and the share of
    class c in the exact-guided samples (`share`); the tilted density's own class-c mass
    (`tilted_share`, (W,))."""

    c: int
    ws: np.ndarray
    ratio: dict[str, np.ndarray]
    share: dict[str, np.ndarray]
    tilted_share: np.ndarray


def guidance_curve(
    problem: Problem, c: int, ws: tuple[float, ...] = W_STOPS, n: int = CURVE_PARTICLES,
    n_steps: int = CURVE_STEPS, seed: int = 0,
) -> GuidanceCurve:  # fmt: skip
    """How far the exact guided samples are from the tilted density, as w grows (both samplers).

    Needs only the exact scores: pass `problem.exact()` so every model shares it."""
    dist = problem.dist
    _check_class(dist, c)
    tilted = [tilted_density(dist, c, w) for w in ws]
    ratio: dict[str, np.ndarray] = {}
    share: dict[str, np.ndarray] = {}
    for name in GUIDANCE_SAMPLERS:
        r, s = [], []
        for w, tl in zip(ws, tilted, strict=True):
            settings = GuidanceSettings(c, w, name, n, n_steps, seed)
            x = guided_samples(guided_exact(problem, c, w), problem, settings)
            energy, floor = _energy_and_floor(x, tl, seed)
            r.append(energy / max(floor, 1e-12))
            s.append(class_shares(dist, x)[c])
        ratio[name], share[name] = np.array(r), np.array(s)
    tilted_share = np.array([tl.class_mass[c] for tl in tilted])
    return GuidanceCurve(c, np.asarray(ws, dtype=float), ratio, share, tilted_share)
