"""Explicit conversions between the three parameterisations of one object.

With x_t = alpha_t x_0 + sigma_t eps (and the exact score being E[-eps/sigma_t | x_t]):

    score = -eps / sigma_t                       (eps  -> score)
    x0    = (x_t + sigma_t^2 score) / alpha_t    (Tweedie: score -> denoiser)
    score = (alpha_t x0 - x_t) / sigma_t^2       (denoiser -> score)
    eps   = (x_t - alpha_t x0) / sigma_t         (x0 -> eps)

and the velocity v = E[eps - x_0 | x_t] of flow matching (x_t = (1 - t) x_0 + t eps has
dx_t/dt = eps - x_0; for any alpha, sigma with alpha + sigma > 0, v is one more reading of the
same object, since x_t and v fix eps and x_0 by two linear equations):

    eps   = (x_t + alpha_t v) / (alpha_t + sigma_t)     x0 = (x_t - sigma_t v) / (alpha_t + sigma_t)
    v     = eps - x0                                    (eps, x0 -> v)
    v     = (x_t - (alpha_t + sigma_t) x0) / sigma_t    (x0 -> v)
    v     = ((alpha_t + sigma_t) eps - x_t) / alpha_t   (eps -> v)

`alpha`, `sigma` are tensors of shape (N,) or (N, 1) or scalars; x tensors are (N, 2).
"""

from __future__ import annotations

import torch


def _col(v, like: torch.Tensor) -> torch.Tensor:
    v = torch.as_tensor(v, dtype=like.dtype, device=like.device)
    return v.reshape(-1, 1) if v.ndim else v


def eps_to_score(eps: torch.Tensor, sigma) -> torch.Tensor:
    return -eps / _col(sigma, eps)


def score_to_eps(score: torch.Tensor, sigma) -> torch.Tensor:
    return -score * _col(sigma, score)


def score_to_x0(score: torch.Tensor, x_t: torch.Tensor, alpha, sigma) -> torch.Tensor:
    """Tweedie: E[x_0 | x_t] = (x_t + sigma^2 grad log p_t(x_t)) / alpha."""
    return (x_t + _col(sigma, x_t) ** 2 * score) / _col(alpha, x_t)


def x0_to_score(x0: torch.Tensor, x_t: torch.Tensor, alpha, sigma) -> torch.Tensor:
    return (_col(alpha, x_t) * x0 - x_t) / _col(sigma, x_t) ** 2


def eps_to_x0(eps: torch.Tensor, x_t: torch.Tensor, alpha, sigma) -> torch.Tensor:
    return (x_t - _col(sigma, x_t) * eps) / _col(alpha, x_t)


def x0_to_eps(x0: torch.Tensor, x_t: torch.Tensor, alpha, sigma) -> torch.Tensor:
    return (x_t - _col(alpha, x_t) * x0) / _col(sigma, x_t)


def v_to_eps(v: torch.Tensor, x_t: torch.Tensor, alpha, sigma) -> torch.Tensor:
    a, s = _col(alpha, x_t), _col(sigma, x_t)
    return (x_t + a * v) / (a + s)


def v_to_x0(v: torch.Tensor, x_t: torch.Tensor, alpha, sigma) -> torch.Tensor:
    a, s = _col(alpha, x_t), _col(sigma, x_t)
    return (x_t - s * v) / (a + s)


def v_to_score(v: torch.Tensor, x_t: torch.Tensor, alpha, sigma) -> torch.Tensor:
    """score = -eps / sigma_t with eps = (x_t + alpha_t v) / (alpha_t + sigma_t)."""
    return eps_to_score(v_to_eps(v, x_t, alpha, sigma), sigma)


def x0_to_v(x0: torch.Tensor, x_t: torch.Tensor, alpha, sigma) -> torch.Tensor:
    a, s = _col(alpha, x_t), _col(sigma, x_t)
    return (x_t - (a + s) * x0) / s


def eps_to_v(eps: torch.Tensor, x_t: torch.Tensor, alpha, sigma) -> torch.Tensor:
    a, s = _col(alpha, x_t), _col(sigma, x_t)
    return ((a + s) * eps - x_t) / a


def score_to_v(score: torch.Tensor, x_t: torch.Tensor, alpha, sigma) -> torch.Tensor:
    """v = E[eps - x_0 | x_t] = -sigma_t score - (x_t + sigma_t^2 score) / alpha_t."""
    return score_to_eps(score, sigma) - score_to_x0(score, x_t, alpha, sigma)
