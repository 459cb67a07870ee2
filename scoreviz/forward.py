"""The forward (noising) process made visible: noised samples, the exact p_t, and the prior check.

x_t = alpha_t x_0 + sigma_t eps. For a Gaussian mixture p_0, p_t is again a mixture, so its
density is exact at every t. Sampling starts from the prior N(0, prior_std^2 I), which is only
right if p_1 is (close to) that prior: `prior_mismatch` measures how far it is,

    KL(p_1 || prior) = E_{x ~ p_1} [log p_1(x) - log N(x; 0, prior_std^2 I)]   (Monte Carlo),

together with alpha_1 (the share of the data's signal still left at t = 1).

Shapes: points (N, 2); a trajectory of the same particles over times is (F, N, 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess

# KL(p_1 || prior) above this many nats means that sampling from the prior starts visibly off
# p_1 (for scale: N(0, I) vs N(m, I) in 2D has KL |m|^2 / 2, so 0.01 nats ~ a shift of 0.14 sd).
# The built-in VP / cosine / sub-VP / VE defaults stay below 1e-3 on every toy distribution;
# VE with sigma_max = 1 gives 0.3-0.5, VE with sigma_max = 3 about 0.01.
KL_THRESHOLD = 0.01
VIEW_HALF_WIDTH = 3.0  # the standardised data live in about [-3, 3]^2


@dataclass(frozen=True)
class PriorMismatch:
    """How far p_1 is from the sampler's starting prior N(0, prior_std^2 I)."""

    alpha_1: float  # signal scale left at t = 1 (0 for a perfect VP schedule)
    sigma_1: float  # noise std at t = 1 (= prior_std)
    kl: float  # Monte-Carlo KL(p_1 || prior) in nats, clipped at 0
    kl_stderr: float  # its Monte-Carlo standard error

    @property
    def mismatched(self) -> bool:
        """True if samples drawn from the prior would start visibly off p_1 (KL_THRESHOLD)."""
        return self.kl > KL_THRESHOLD


def _log_prior(x: torch.Tensor, std: float) -> torch.Tensor:
    """log N(x; 0, std^2 I) in 2D, shape (N,)."""
    return -(x**2).sum(1) / (2 * std**2) - 2 * math.log(std) - math.log(2 * math.pi)


@torch.no_grad()
def prior_mismatch(
    dist: GaussianMixture, process: NoiseProcess, n: int = 8192, seed: int = 0
) -> PriorMismatch:
    """alpha_1, sigma_1 and KL(p_1 || N(0, prior_std^2 I)) by Monte Carlo with exact log p_1."""
    alpha, sigma, _ = process.at(1.0)
    gen = torch.Generator().manual_seed(seed)
    x = dist.sample(n, generator=gen, alpha=alpha, sigma=sigma, dtype=torch.float64)
    ratio = dist.log_prob(x, alpha, sigma) - _log_prior(x, process.prior_std)
    kl = float(ratio.mean())
    stderr = float(ratio.std() / math.sqrt(n))
    return PriorMismatch(alpha_1=alpha, sigma_1=sigma, kl=max(kl, 0.0), kl_stderr=stderr)


def view_range(process: NoiseProcess, t: float) -> tuple[float, float]:
    """Axis range that holds p_t: [-3, 3] scaled by sqrt(alpha_t^2 + sigma_t^2) when that is > 1,
    rounded to 0.1.

    VP processes keep alpha^2 + sigma^2 = 1 (range fixed); VE grows with sigma_t.
    """
    alpha, sigma, _ = process.at(t)
    spread = math.sqrt(alpha**2 + sigma**2)
    half = round(VIEW_HALF_WIDTH * max(1.0, spread), 1)  # 0.1 steps: no jitter near 1
    return (-half, half)


FIT_MAX_ASPECT = 4.0  # a fitted view at most 4x wider than high (the word "SCORE" is 3.7)


def view_box(
    dist: GaussianMixture, process: NoiseProcess, t: float, k: float = 3.0
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis ranges (x, y) fitted to p_t's shape, so that wide data fills a wide panel (the word
    "SCORE" sat in a square +-3 panel, using a sixth of its height).

    Each half-width is the farthest reach of a component, |alpha_t m_i| + k sqrt(alpha_t^2
    s_i^2 + sigma_t^2), rounded to 0.1 (up, unless within 0.025; so that a t step rarely moves
    it); the shorter is raised to 1/FIT_MAX_ASPECT of the longer. Centred on 0 (data are
    standardised), and at t = 1 of a VP process the +-3 square of the prior, as `view_range`."""
    alpha, sigma, _ = process.at(t)
    means = dist.means.numpy() * alpha
    reach = k * np.sqrt(alpha**2 * dist.stds.numpy() ** 2 + sigma**2)
    half = (np.abs(means) + reach[:, None]).max(0)
    half = np.ceil(half * 10 - 0.25) / 10  # to 0.1, up unless within 0.025 (3.015: 3.0)
    half = np.maximum(half, half.max() / FIT_MAX_ASPECT)
    return (-float(half[0]), float(half[0])), (-float(half[1]), float(half[1]))


def finest_width(dist: GaussianMixture, process: NoiseProcess, t: float = 0.0) -> float:
    """The width of p_t's finest detail: its narrowest component's std, sqrt(alpha_t^2 s_min^2 +
    sigma_t^2) (a stroke of the word, a square's edge blur): dots drawn over p_t must stay
    narrower than this for the detail to show."""
    alpha, sigma, _ = process.at(t)
    return float(math.sqrt(alpha**2 * float(dist.stds.min()) ** 2 + sigma**2))


def schedule_table(process: NoiseProcess, n: int = 200) -> dict[str, np.ndarray]:
    """alpha(t), sigma(t), SNR(t) on n times from t_min to 1 (for the schedule plot)."""
    t = torch.linspace(process.t_min, 1.0, n, dtype=torch.float64)
    return {"t": t.numpy(), **{k: v.numpy() for k, v in process.at(t)._asdict().items()}}


def schedule_at(process: NoiseProcess, t: float) -> dict[str, float]:
    """alpha_t, sigma_t and SNR_t at one time t."""
    return {"t": float(t), **process.at(t)._asdict()}


@torch.no_grad()
def forward_trajectory(
    dist: GaussianMixture, process: NoiseProcess, times, n: int = 600, seed: int = 0
) -> np.ndarray:
    """The same particles noised to each time: x_t = alpha_t x_0 + sigma_t eps, shape (F, N, 2).

    One x_0 and one eps are drawn and reused for every t, so each particle drifts smoothly
    from its data point (t = 0) towards pure noise (t = 1) when the frames are played.
    """
    gen = torch.Generator().manual_seed(seed)
    x0 = dist.sample(n, generator=gen, dtype=torch.float64)
    eps = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    t = torch.as_tensor(np.asarray(times, dtype=np.float64))
    a, s = process.alpha(t), process.sigma(t)
    return (a[:, None, None] * x0[None] + s[:, None, None] * eps[None]).float().numpy()
