"""How good is a score model or a sampler? Every metric compares against the exact mixture.

- `score_error`: sigma_t^2-weighted squared error of a score function against the exact score,
  per t and averaged (t uniform on [t_min, 1]); 0 for the exact score itself.
"""

from __future__ import annotations

import pandas as pd
import torch

from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess
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
    t = process.t_min + (1 - process.t_min) * (torch.arange(n_t, dtype=torch.float64) + 0.5) / n_t
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
