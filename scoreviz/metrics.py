"""How good is a score model or a sampler? Every metric compares against the exact mixture.

- `score_error`: sigma_t^2-weighted squared error of a score function against the exact score,
  per t and averaged (t uniform on [t_min, 1]); 0 for the exact score itself.
- `energy_distance` between two point clouds and its `energy_noise_floor` (what two independent
  exact samples of the same size already score), `mean_log_likelihood` under the exact mixture,
  `mode_weights` (share of samples per component) and `sample_report`, all of these at once.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import torch

from scoreviz.errors import DataError
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess, stratified_u
from scoreviz.score import ScoreFn


@torch.no_grad()
def score_error(
    score_fn: ScoreFn,
    dist: GaussianMixture,
    process: NoiseProcess,
    n_t: int = 32,
    n_per_t: int = 512,
    seed: int = 0,
) -> pd.DataFrame:
    """E_{x_t ~ p_t} sigma_t^2 ||s(x_t, t) - grad log p_t(x_t)||^2 on n_t stratified times.

    Returns a DataFrame with columns t, sigma, error (one row per time); its `error` mean is the
    t-uniform average. The same seed gives the same points, so two models are compared fairly.
    """
    gen = torch.Generator().manual_seed(seed)
    t = process.t_uniform(stratified_u(n_t))  # the strata's midpoints
    tt = t.repeat_interleave(n_per_t)
    alpha, sigma = process.alpha(tt), process.sigma(tt)
    x0 = dist.sample(n_t * n_per_t, generator=gen, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    x_t = alpha[:, None] * x0 + sigma[:, None] * eps
    exact = dist.score(x_t, alpha, sigma)
    learned = score_fn(x_t.float(), tt.float()).double()
    err = (sigma[:, None] ** 2 * (learned - exact) ** 2).sum(1).reshape(n_t, n_per_t).mean(1)
    return pd.DataFrame({"t": t.numpy(), "sigma": process.sigma(t).numpy(), "error": err.numpy()})


def mean_score_error(
    score_fn: ScoreFn, dist: GaussianMixture, process: NoiseProcess, **kw
) -> float:
    """The t-uniform average of `score_error` (the single number the benchmarks quote)."""
    return float(score_error(score_fn, dist, process, **kw)["error"].mean())


# ----------------------------------------------------------------------------- sample quality
_CDIST_PAIRS = 4_000_000  # distances evaluated at once (32 MB in float64)


def _points(x) -> torch.Tensor:
    """Any (N, 2) array-like as a float64 tensor."""
    return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).to(torch.float64)


def _mean_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance over all pairs (a_i, b_j), chunked over the rows of a."""
    step = max(1, _CDIST_PAIRS // max(1, b.shape[0]))
    total = sum(
        torch.cdist(a[i : i + step], b, compute_mode="donot_use_mm_for_euclid_dist").sum()
        for i in range(0, a.shape[0], step)
    )
    return total / (a.shape[0] * b.shape[0])


def energy_distance(x, y) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| of two point clouds (N, 2), (M, 2).

    The V-statistic (all pairs, the zero self-distances included): the exact energy distance
    between the two empirical distributions, so it is >= 0 and 0 for identical sets. For two
    independent samples of one law it is biased up by about (E|X - X'|)(1/N + 1/M); compare it
    with `energy_noise_floor` rather than with 0.
    """
    x, y = _points(x), _points(y)
    if len(x) == 0 or len(y) == 0:
        raise DataError("The energy distance needs at least one point in each set.")
    return float(2 * _mean_dist(x, y) - _mean_dist(x, x) - _mean_dist(y, y))


@functools.lru_cache(maxsize=16)
def energy_noise_floor(dist: GaussianMixture, n: int, seed: int = 0, repeats: int = 5) -> float:
    """Expected energy distance between two independent exact samples of size n.

    Averaged over `repeats` pairs of fresh samples drawn from a generator seeded by `seed`. A
    sampler whose `energy_distance` to n exact samples is near this floor is indistinguishable
    from the exact distribution at this sample size. Deterministic in its arguments, so it is
    kept for the last 16 (a mixture is keyed by identity): the Sampling page's rows share it.
    """
    gen = torch.Generator().manual_seed(seed)
    eds = [
        energy_distance(dist.sample(n, gen, dtype=torch.float64), dist.sample(n, gen))
        for _ in range(repeats)
    ]
    return float(np.mean(eds))


def _density_sigma(dist: GaussianMixture) -> float:
    """0 if every component has a width; else a tiny noise level (1 % of the data's spread).

    A mixture with zero-width components (an empirical distribution) has no density at sigma 0,
    so its likelihood and responsibilities are taken at this small sigma instead.
    """
    if bool((dist.stds > 0).all()):
        return 0.0
    return 0.01 * math.sqrt(float(torch.trace(dist.cov())) / 2) or 1e-6


def mean_log_likelihood(samples, dist: GaussianMixture) -> float:
    """Mean exact log-density (1/N) sum_i log p(x_i) under the clean mixture (nats).

    For exact samples this estimates minus the entropy of p. Zero-width mixtures are evaluated at
    the small noise level of `_density_sigma` (a memorising sampler then scores very high).
    """
    x = _points(samples)
    return float(dist.log_prob(x, 1.0, _density_sigma(dist)).mean())


def mode_weights(samples, dist: GaussianMixture) -> np.ndarray:
    """Share of the samples per component, by argmax of the exact responsibility P(k | x), (K,)."""
    x = _points(samples)
    k = dist.responsibilities(x, 1.0, _density_sigma(dist)).argmax(1)
    return np.bincount(k.numpy(), minlength=dist.n_components) / max(1, len(x))


def nearest_component(x: torch.Tensor, dist: GaussianMixture, chunk: int = 1024) -> torch.Tensor:
    """Index (N,) of the component mean nearest to each point x (N, 2) (chunked over rows)."""
    means = dist.means.to(x.dtype)
    parts = [torch.cdist(x[i : i + chunk], means).argmin(1) for i in range(0, len(x), chunk)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def within_mode_variance(x: torch.Tensor, dist: GaussianMixture) -> float:
    """(1/N) sum_i ||x_i - xbar_k(i)||^2: spread around the mean of the points assigned (by
    `nearest_component`) to the same component, pooled over components."""
    k = nearest_component(x, dist)
    counts = torch.bincount(k, minlength=dist.n_components).to(x.dtype)
    sums = torch.zeros(dist.n_components, 2, dtype=x.dtype).index_add_(0, k, x)
    centre = sums / counts.clamp_min(1)[:, None]
    return float(((x - centre[k]) ** 2).sum(1).mean())


def spread_ratio(samples, dist: GaussianMixture, seed: int = 0, n_ref: int = 8192) -> float:
    """Within-mode variance of the samples / that of n_ref fresh exact samples (1 = right).

    Each point goes to its nearest component mean; the variance is pooled within those groups.
    A sampler that leaves every mode c times too wide (x = mu_k + c (x0 - mu_k)) gets c^2: it
    isolates the discretisation error that blurs (> 1) or over-sharpens (< 1) the modes, which
    the exact score's row on the Sampling page still carries.
    """
    x = _points(samples).reshape(-1, 2)
    ref_var = _reference_spread(dist, seed, n_ref)
    return within_mode_variance(x, dist) / ref_var if ref_var > 0 else float("nan")


@functools.lru_cache(maxsize=16)
def _reference_spread(dist: GaussianMixture, seed: int, n_ref: int) -> float:
    """Within-mode variance of n_ref exact samples drawn with `seed` (kept: rows share it)."""
    ref = dist.sample(n_ref, torch.Generator().manual_seed(seed), dtype=torch.float64)
    return within_mode_variance(ref, dist)


def sample_report(samples, dist: GaussianMixture, seed: int = 0) -> dict:
    """Everything the Sampling page shows about a set of samples (N, 2), against the exact dist.

    Keys: energy_distance (to n fresh exact samples drawn with `seed`), energy_floor (the same
    for two exact samples, `energy_noise_floor(dist, n, seed + 1)`), log_likelihood,
    mode_weights and true_weights (np arrays (K,)), spread_ratio (`spread_ratio`), n (finite
    samples used) and n_nonfinite (samples with a NaN/inf coordinate, dropped before everything
    else).
    """
    x = _points(samples).reshape(-1, 2)
    finite = torch.isfinite(x).all(1)
    x = x[finite]
    n = len(x)
    if n == 0:
        raise DataError("Every sample is NaN or infinite: the sampler diverged. Use more steps.")
    ref = dist.sample(n, torch.Generator().manual_seed(seed), dtype=torch.float64)
    return {
        "energy_distance": energy_distance(x, ref),
        "energy_floor": energy_noise_floor(dist, n, seed=seed + 1),
        "log_likelihood": mean_log_likelihood(x, dist),
        "mode_weights": mode_weights(x, dist),
        "true_weights": dist.weights.numpy().copy(),
        "spread_ratio": spread_ratio(x, dist, seed=seed + 2),
        "n": n,
        "n_nonfinite": int((~finite).sum()),
    }


def nearest_distances(samples, points, k: int = 1) -> np.ndarray:
    """Distances from each sample (N, 2) to its k nearest points of `points` (M, 2): (N, k),
    ascending, float64 ((N,) for k = 1). Chunked over samples: memory O(chunk x M) for any N."""
    x, p = _points(samples).reshape(-1, 2), _points(points).reshape(-1, 2)
    if len(p) < k:
        raise DataError(f"Need at least {k} training point(s) to compare with, got {len(p)}.")
    out = [torch.cdist(c, p).topk(k, dim=1, largest=False).values for c in torch.split(x, 4096)]
    d = torch.cat(out).numpy() if out else np.zeros((0, k))
    return d[:, 0] if k == 1 else d


COPY_RATIO = 1 / 3  # d(nearest) < d(second nearest) / 3: a copy (Yoon et al. 2023's criterion)


def memorisation_report(samples, train_points, dist: GaussianMixture, seed: int = 0) -> dict:
    """How close samples land to the N training points, against fresh samples of the true `dist`.

    Keys: train_distance (median distance of a sample to its nearest training point),
    fresh_distance (the same for as many fresh exact samples of `dist`: what a model that
    generalises gives), memorisation_ratio (train_distance / fresh_distance: about 1 when the
    model generalises, well below 1 when it reproduces its training set), copied_share (share of
    samples that are copies: nearer to one training point than a third of the distance to the
    second nearest) and fresh_copied_share (the same for the fresh samples: the chance level).
    """
    x = _points(samples).reshape(-1, 2)
    x = x[torch.isfinite(x).all(1)]
    if len(x) == 0:
        raise DataError("Every sample is NaN or infinite: the sampler diverged. Use more steps.")
    train = _points(train_points).reshape(-1, 2)
    k = 2 if len(train) >= 2 else 1
    fresh = dist.sample(max(len(x), 500), torch.Generator().manual_seed(seed), dtype=torch.float64)
    d_x = nearest_distances(x, train, k).reshape(len(x), k)
    d_f = nearest_distances(fresh, train, k).reshape(len(fresh), k)
    d_train, d_fresh = float(np.median(d_x[:, 0])), float(np.median(d_f[:, 0]))

    def copies(d: np.ndarray) -> float:
        return float(np.mean(d[:, 0] < COPY_RATIO * d[:, 1])) if k == 2 else float("nan")

    return {
        "train_distance": d_train,
        "fresh_distance": d_fresh,
        "memorisation_ratio": d_train / d_fresh if d_fresh > 0 else float("nan"),
        "copied_share": copies(d_x),
        "fresh_copied_share": copies(d_f),
    }


def wasserstein2(x, y) -> float:
    """Exact Wasserstein-2 distance between two equal-size point clouds (N, 2): the root mean
    squared distance of the optimal one-to-one matching (scipy's linear_sum_assignment).

    O(N^3): meant for N up to a few thousand (the Sampling page's steps chart: 500). Compare
    with the two-sample floor (two samples of one law), not with 0.
    """
    from scipy.optimize import linear_sum_assignment  # here: ~1 s to import, rarely needed

    a, b = _points(x).numpy(), _points(y).numpy()
    if a.shape != b.shape or len(a) == 0:
        raise DataError("W2 here needs two non-empty point clouds of the same size.")
    cost = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].mean()))
