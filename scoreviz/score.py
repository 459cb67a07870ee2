"""The one seam of the package: a score function `ScoreFn = (x_t, t) -> grad log p_t(x_t)`.

x_t has shape (N, 2), t has shape (N,); the result has shape (N, 2). The exact mixture score and
a trained network both provide one, so every view and every sampler treats them alike.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from scoreviz.conversions import score_to_x0
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def exact_score_fn(dist: GaussianMixture, process: NoiseProcess) -> ScoreFn:
    """The exact score of p_t, the law of alpha_t X0 + sigma_t Z for the mixture X0."""

    def score(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x_t.dtype).expand(x_t.shape[0])
        return dist.score(x_t, process.alpha(t), process.sigma(t))

    return score


def exact_class_score_fn(dist: GaussianMixture, process: NoiseProcess, c: int | None) -> ScoreFn:
    """The exact score of p_t(x | c) (class c's components; None: of p_t(x), every class)."""
    return exact_score_fn(dist if c is None else dist.given(c), process)


def guided_score_fn(uncond: ScoreFn, cond: ScoreFn, w: float) -> ScoreFn:
    """Classifier-free guidance: s_w = s_u + w (s_c - s_u) = (1 - w) s_u + w s_c.

    w = 0: the unconditional score; w = 1: the conditional one; w > 1 pushes past it. (Papers
    that write s_c + w' (s_c - s_u) use w' = w - 1: their "1 + w'" is this w.) With exact
    scores, s_w = grad log [p_t(x | c)^w p_t(x)^(1 - w)] at every t, which at t = 0 is the
    tilted density's score but at t > 0 is not the score of the noised tilted density.
    """
    w = float(w)

    def score(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s_u = uncond(x_t, t)
        return s_u + w * (cond(x_t, t) - s_u)

    return score


def denoiser_from_score(score_fn: ScoreFn, process: NoiseProcess):
    """x0_hat(x_t, t) = E[x_0 | x_t] via Tweedie from any score function."""

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x_t.dtype).expand(x_t.shape[0])
        return score_to_x0(score_fn(x_t, t), x_t, process.alpha(t), process.sigma(t))

    return denoise


def full_t(t: float, n: int, dtype=torch.float32) -> torch.Tensor:
    """A (n,) tensor filled with time t (the usual way to query a ScoreFn at one t)."""
    return torch.full((n,), float(t), dtype=dtype)
