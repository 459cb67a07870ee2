"""Pure analysis behind the DAE, Loss-vs-t and Sampling views (no Streamlit, no plotting).

- DAE: x_t = alpha_t x0 + sigma_t eps at a chosen sigma (t = process.t_from_sigma(sigma)),
  reconstructions D(x_t) of several denoisers, and the reconstruction error
  E||D(x_t) - x0||^2 against the irreducible MMSE E tr Cov[X0 | x_t] (the exact denoiser's error).
- Loss: the DSM loss per sample (losses.dsm_loss, unreduced) binned over t, the exact floor
  (losses.loss_floor) and its bin averages by Gauss-Legendre quadrature (losses.t_quadrature),
  and the identity loss - floor = lambda(t) E||s_theta - grad log p_t||^2.
- Sampling: trajectories made light enough to animate (finite particles only, <= max frames and
  particles, float32 rounded), per-frame view ranges, and the score field on a coarse grid.

Shapes: points (N, 2); times (N,); trajectories (F, N, 2); grids (F, G*G, 2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from scoreviz import losses
from scoreviz.grids import make_grid
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess, stratified_u
from scoreviz.score import ScoreFn, exact_score_fn, full_t

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t (N,2), t (N,)) -> x0_hat


# ---------------------------------------------------------------------------- noise levels
def sigma_bounds(process: NoiseProcess, smallest: float = 1e-2) -> tuple[float, float]:
    """(sigma(t_min), sigma(1)), the lower end raised to `smallest` (below, nothing is seen)."""
    ends = process.sigma(torch.tensor([process.t_min, 1.0], dtype=torch.float64))
    lo, hi = float(ends[0]), float(ends[1])
    return min(max(lo, smallest), hi), hi


def sigma_grid(process: NoiseProcess, n: int, smallest: float = 1e-2) -> np.ndarray:
    """n noise levels log-spaced over the process' range, shape (n,)."""
    lo, hi = sigma_bounds(process, smallest)
    return np.geomspace(lo, hi, n)


def exact_denoiser(dist: GaussianMixture, process: NoiseProcess) -> Denoiser:
    """The optimal denoiser E[X0 | x_t] of the mixture under `process`."""

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return dist.denoise(x_t, process.alpha(t), process.sigma(t))

    return denoise


@dataclass(frozen=True)
class NoisyBatch:
    """x_t = alpha x0 + sigma eps at one noise level (sigma is the process' sigma(t))."""

    sigma: float
    t: float
    alpha: float
    x0: torch.Tensor  # (N, 2) float64
    x_t: torch.Tensor  # (N, 2) float64


def _clean_and_noise(dist: GaussianMixture, n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x0 = dist.sample(n, generator=gen, dtype=torch.float64)
    return x0, torch.randn(n, 2, generator=gen, dtype=torch.float64)


def noisy_at_sigma(process: NoiseProcess, x0, eps, sigma: float) -> NoisyBatch:
    """Noise x0 at the time whose sigma_t is `sigma` (clipped to the process' range)."""
    t = float(process.t_from_sigma(torch.tensor(float(sigma), dtype=torch.float64)))
    a, s, _ = process.at(t)
    return NoisyBatch(sigma=s, t=t, alpha=a, x0=x0, x_t=a * x0 + s * eps)


# ---------------------------------------------------------------------------- DAE
@dataclass(frozen=True)
class Reconstruction:
    """One panel: clean points, their noisy versions and each denoiser's D(x_t) (numpy)."""

    sigma: float
    t: float
    alpha: float
    x0: np.ndarray  # (N, 2)
    x_t: np.ndarray  # (N, 2)
    recon: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N, 2)

    def only(self, names) -> Reconstruction:
        """The same panel with only the denoisers in `names`."""
        return replace(self, recon={k: v for k, v in self.recon.items() if k in set(names)})


def _apply(denoise: Denoiser, batch: NoisyBatch) -> torch.Tensor:
    x = batch.x_t.float()
    return denoise(x, full_t(batch.t, x.shape[0])).double()


@torch.no_grad()
def reconstructions(
    denoisers: Mapping[str, Denoiser],
    dist: GaussianMixture,
    process: NoiseProcess,
    sigmas: Sequence[float],
    n: int = 200,
    seed: int = 0,
) -> list[Reconstruction]:
    """D(x_t) for each denoiser at each sigma; the same x0 and eps in every panel."""
    x0, eps = _clean_and_noise(dist, n, seed)
    out = []
    for sigma in sigmas:
        b = noisy_at_sigma(process, x0, eps, sigma)
        rec = {name: _apply(d, b).numpy() for name, d in denoisers.items()}
        out.append(Reconstruction(b.sigma, b.t, b.alpha, x0.numpy(), b.x_t.numpy(), rec))
    return out


@torch.no_grad()
def reconstruction_error(
    denoisers: Mapping[str, Denoiser],
    dist: GaussianMixture,
    process: NoiseProcess,
    sigmas: Sequence[float],
    n: int = 1024,
    seed: int = 0,
) -> pd.DataFrame:
    """E||D(x_t) - x0||^2 per sigma and denoiser, beside mmse = E tr Cov[X0 | x_t].

    Columns: sigma, t, alpha, trace_cov (tr Cov[X0]: the error of predicting the mean), mmse,
    then one per denoiser name. The exact denoiser's column equals
    mmse up to Monte Carlo error (the MMSE is the error of the optimal denoiser).
    """
    x0, eps = _clean_and_noise(dist, n, seed)
    trace_cov = float(torch.trace(dist.cov()))  # the error of always predicting the mean
    rows = []
    for sigma in sigmas:
        b = noisy_at_sigma(process, x0, eps, sigma)
        row = {"sigma": b.sigma, "t": b.t, "alpha": b.alpha, "trace_cov": trace_cov}
        row["mmse"] = float(dist.posterior_trace_cov(b.x_t, b.alpha, b.sigma).mean())
        for name, d in denoisers.items():
            row[name] = float(((_apply(d, b) - x0) ** 2).sum(1).mean())
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- loss vs t
def t_bins(process: NoiseProcess, n_bins: int) -> np.ndarray:
    """n_bins + 1 edges uniform in t over [t_min, 1] (training samples t uniformly)."""
    return np.linspace(process.t_min, 1.0, n_bins + 1)


def _bin_stats(values: torch.Tensor, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    v = values.double().reshape(n_bins, -1)
    return v.mean(1).numpy(), (v.std(1) / np.sqrt(v.shape[1])).numpy()


@torch.no_grad()
def binned_loss(
    score_fn: ScoreFn,
    dist: GaussianMixture,
    process: NoiseProcess,
    weightings: Sequence[str],
    n_bins: int = 24,
    per_bin: int = 256,
    seed: int = 0,
) -> pd.DataFrame:
    """The DSM loss of `score_fn` per t bin, under each weighting, on fresh samples.

    Every weighting sees the same (t, x0, eps). Besides the loss (mean and standard error), each
    bin gets the score error lambda(t) ||s(x_t, t) - grad log p_t(x_t)||^2 (exact score), which
    is what the loss exceeds its floor by, in expectation. Long format: columns weighting, bin,
    t (bin centre), t_lo, t_hi, sigma (at the centre), loss, loss_se, score_err, score_err_se.
    """
    gen = torch.Generator().manual_seed(seed)
    edges = t_bins(process, n_bins)
    t = process.t_uniform(stratified_u(n_bins, gen, per_bin)).float()  # per_bin in each bin
    x0 = dist.sample(t.shape[0], generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    x_t = process.marginal(x0, t, eps)
    gap = ((score_fn(x_t, t) - exact_score_fn(dist, process)(x_t, t)) ** 2).sum(1)
    centre = (edges[:-1] + edges[1:]) / 2
    frames = []
    for w in weightings:
        loss, loss_se = _bin_stats(losses.dsm_loss(score_fn, process, x0, t, eps, w), n_bins)
        err, err_se = _bin_stats(losses.weight(w, process, t) * gap, n_bins)
        frames.append(
            pd.DataFrame(
                {
                    "weighting": w,
                    "bin": np.arange(n_bins),
                    "t": centre,
                    "t_lo": edges[:-1],
                    "t_hi": edges[1:],
                    "sigma": process.sigma(torch.as_tensor(centre)).numpy(),
                    "loss": loss,
                    "loss_se": loss_se,
                    "score_err": err,
                    "score_err_se": err_se,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def floor_curve(
    dist: GaussianMixture,
    process: NoiseProcess,
    weightings: Sequence[str],
    t: np.ndarray,
    n_mc: int = 1024,
    seed: int = 0,
) -> pd.DataFrame:
    """The exact loss floor losses.loss_floor at times t, per weighting (long format).

    lambda(t) factors out of the floor, so the Monte Carlo runs once (under lambda = 1) and each
    weighting multiplies it by its lambda(t): the same numbers as loss_floor(..., weighting).
    Columns: weighting, t, sigma, floor.
    """
    tt = torch.as_tensor(np.asarray(t), dtype=torch.float64)
    base = losses.loss_floor(dist, process, tt, "one", n_mc=n_mc, seed=seed)
    sig = process.sigma(tt).numpy()
    frames = [
        pd.DataFrame(
            {
                "weighting": w,
                "t": tt.numpy(),
                "sigma": sig,
                "floor": (losses.weight(w, process, tt) * base).numpy(),
            }
        )
        for w in weightings
    ]
    return pd.concat(frames, ignore_index=True)


def floor_by_bin(
    dist: GaussianMixture,
    process: NoiseProcess,
    weightings: Sequence[str],
    edges: np.ndarray,
    n_mc: int = 1024,
    seed: int = 0,
    nodes: int = 3,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(floor curve, floor averaged per t bin): what the Loss-vs-t page draws.

    The curve is `floor_curve` at the Gauss-Legendre nodes of `losses.t_quadrature` (dense
    where the floor is steep, near t_min), with their weights in a column dt; the bin averages
    are (1/width) int_bin L*(t) dt from those nodes (`bin_floor`), accurate to < 0.3 % even in the
    first bin under lambda = 1, where L* ~ 2/sigma_t^2 changes 40x across the bin.
    """
    t, dt = losses.t_quadrature(process.t_min, edges, nodes, losses.floor_kinks(process))
    curve = floor_curve(dist, process, weightings, t, n_mc=n_mc, seed=seed)
    curve["dt"] = np.tile(dt, len(weightings))
    return curve, bin_floor(curve, edges)


def bin_floor(floor: pd.DataFrame, edges: np.ndarray) -> pd.DataFrame:
    """The quadrature average of a floor curve within each t bin: columns weighting, bin, floor.

    floor: columns weighting, t, floor and dt, the quadrature weights (`floor_by_bin`); every
    node must lie inside one bin (`losses.t_quadrature(..., edges)` breaks at the edges).
    """
    b = np.clip(np.searchsorted(edges, floor["t"].to_numpy(), side="right") - 1, 0, len(edges) - 2)
    f = floor.assign(bin=b, mass=floor["floor"] * floor["dt"])
    out = f.groupby(["weighting", "bin"], as_index=False)[["mass", "dt"]].sum()
    return out.assign(floor=out["mass"] / out["dt"])[["weighting", "bin", "floor"]]


# ---------------------------------------------------------------------------- sampling
@dataclass(frozen=True)
class SamplingFrames:
    """A trajectory made light enough to animate.

    times (F,) decreasing (constant for plain Langevin); xs, x0_hats (F, N, 2) float32 rounded to
    3 decimals; n_total the particles sampled, n_dropped those removed because they left the
    finite numbers; steps (F,) the sampler step of each frame (0 = the start), or None.
    """

    times: np.ndarray
    xs: np.ndarray
    x0_hats: np.ndarray
    n_total: int
    n_dropped: int
    steps: np.ndarray | None = None


def evenly_spaced(n_total: int, n_max: int) -> np.ndarray:
    """At most n_max indices of range(n_total), evenly spaced, first and last included."""
    if n_total <= n_max:
        return np.arange(n_total)
    return np.unique(np.round(np.linspace(0, n_total - 1, n_max)).astype(int))


def finite_particles(*arrays: np.ndarray) -> np.ndarray:
    """Mask (N,) of particles finite at every frame of every (F, N, 2) array."""
    masks = [np.isfinite(a).all(axis=(0, 2)) for a in arrays]
    return np.logical_and.reduce(masks)


def light_frames(
    times: np.ndarray,
    xs: np.ndarray,
    x0_hats: np.ndarray,
    max_frames: int = 60,
    max_particles: int = 1000,
    steps: np.ndarray | None = None,
) -> SamplingFrames:
    """Drop non-finite particles, then keep <= max_frames frames and <= max_particles particles.

    steps (F,): the sampler step of each recorded frame, kept for the same frames."""
    ok = finite_particles(xs, x0_hats)
    keep = np.flatnonzero(ok)[:max_particles]
    f = evenly_spaced(len(times), max_frames)

    def light(a: np.ndarray) -> np.ndarray:
        return np.round(a[f][:, keep].astype(np.float32), 3)

    return SamplingFrames(
        times=np.asarray(times, dtype=np.float64)[f],
        xs=light(xs),
        x0_hats=light(x0_hats),
        n_total=int(xs.shape[1]),
        n_dropped=int((~ok).sum()),
        steps=None if steps is None else np.asarray(steps)[f],
    )


def nice_ceil(r: np.ndarray) -> np.ndarray:
    """r rounded up to a quarter of its power of ten (3.1 -> 3.25, 47 -> 47.5): ranges that move
    in visible steps instead of jittering from frame to frame."""
    r = np.asarray(r, dtype=np.float64)
    step = 10.0 ** np.floor(np.log10(np.maximum(r, 1e-12))) / 4
    return np.ceil(r / step - 1e-9) * step


def run_ranges(xs: np.ndarray, least: float = 3.0) -> np.ndarray:
    """Half-width of the square x_t view at each of F frames, (F,): it follows the particles.

    1.15 x the 99th percentile of |coordinate| at that frame, rounded up by `nice_ceil`; below
    1.1 x `least` it is `least`, so VP's N(0, I) start (1.15 x 2.58 = 2.96 +- noise) stays at +-3
    instead of flickering to 3.25 (a moving range costs a full redraw per frame). Under VE the
    view shrinks as the samples contract (+-48 down to +-3). Rows of one view share the widest
    of their ranges (`shared_ranges`).
    """
    if xs.shape[1] == 0:
        return np.full(xs.shape[0], least)
    q = 1.15 * np.quantile(np.abs(xs).reshape(xs.shape[0], -1), 0.99, axis=1)
    return np.where(q <= 1.1 * least, least, nice_ceil(q))


def shared_ranges(ranges: Sequence[np.ndarray]) -> np.ndarray:
    """One range per frame for several rows (each (F,)): the widest, so every row fits."""
    return np.max(np.stack([np.asarray(r, dtype=np.float64) for r in ranges]), axis=0)


@torch.no_grad()
def field_frames(
    score_fn: ScoreFn, times: np.ndarray, ranges: np.ndarray, n_grid: int = 15
) -> tuple[np.ndarray, np.ndarray]:
    """The score at each frame's t on that frame's grid: (grid (F, G*G, 2), score (F, G*G, 2)).

    One call per distinct t: with a single t the exact mixture score takes its fast
    matrix-product path (`GaussianMixture._expandable`), ~5x faster on a 1,000-component upload.
    """
    grids = np.stack([make_grid(n_grid, (-r, r)).points for r in ranges]).astype(np.float32)
    f, m, _ = grids.shape
    score = np.empty_like(grids)
    for k in range(f):
        x = torch.as_tensor(grids[k])
        score[k] = score_fn(x, full_t(float(times[k]), m)).numpy()
    return grids, score


# ---------------------------------------------------------------------------- sample reports
REPORT_ROWS = {
    "energy_distance": "energy distance to exact samples",
    "energy_floor": "its noise floor (two exact samples)",
    "log_likelihood": "mean exact log p(x) (nats)",
    "mode_weight_error": "mode-weight error ½Σ|ŵₖ − wₖ|",
    "spread_ratio": "within-mode variance ÷ that of exact samples (1 = right)",
    "train_distance": "median distance to the nearest training point",
    "fresh_distance": "… of fresh exact samples (a model that generalises)",
    "memorisation_ratio": "ratio (≈ 1: generalises, ≈ 0: memorises)",
    "copied_share": "share of copies (nearest training point < ⅓ of the 2nd nearest)",
    "fresh_copied_share": "… of fresh exact samples (chance level)",
    "n": "samples used",
    "n_nonfinite": "samples dropped (NaN/inf)",
}


def report_table(reports: Mapping[str, Mapping]) -> pd.DataFrame:
    """metrics.sample_report dicts (label -> report) as one table: a row per scalar metric.

    Adds the total-variation error of the mode weights when both weight vectors are present.
    """
    cols = {}
    for label, rep in reports.items():
        rep = dict(rep)
        if "mode_weights" in rep and "true_weights" in rep:
            diff = np.asarray(rep["mode_weights"]) - np.asarray(rep["true_weights"])
            rep["mode_weight_error"] = 0.5 * float(np.abs(diff).sum())
        cols[label] = {
            REPORT_ROWS.get(k, k): float(v)
            for k, v in rep.items()
            if np.ndim(v) == 0 and isinstance(v, (int, float, np.number))
        }
    return pd.DataFrame(cols)
