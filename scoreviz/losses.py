"""Denoising score matching: the loss, its weightings lambda(t) and its exact irreducible floor.

    L(t) = lambda(t) E || s(x_t, t) + eps / sigma_t ||^2,   x_t = alpha_t x_0 + sigma_t eps.

The exact score is s* = E[-eps/sigma_t | x_t], so even s* pays the floor

    L*(t) = lambda(t) alpha_t^2 / sigma_t^4 E_{x_t} tr Cov[X_0 | x_t],

which the mixture gives exactly (`posterior_trace_cov`): a loss curve is read against this floor,
not against 0. Weightings (key -> label in `WEIGHTINGS`):

    "sigma2"   lambda = sigma^2                 = eps-MSE  ||eps_hat - eps||^2 (balanced in t)
    "one"      lambda = 1                       raw score MSE (dominated by small sigma)
    "x0"       lambda = sigma^4 / alpha^2       = x0-MSE ||x0_hat - x0||^2 (= sigma^2 / SNR)
    "min_snr"  lambda = sigma^2 min(SNR, 5)/SNR = min(sigma^2, 5 sigma^4/alpha^2)   Min-SNR-5

Min-SNR-gamma (Hang et al. 2023) weights the *x0*-MSE by min(SNR, gamma), SNR = alpha^2/sigma^2.
By Tweedie x0_hat = (x_t + sigma^2 s)/alpha, so x0_hat - x0 = (sigma^2/alpha)(s + eps/sigma) and
||x0_hat - x0||^2 = (sigma^4/alpha^2) ||s + eps/sigma||^2 = (sigma^2/SNR) ||s + eps/sigma||^2.
Hence lambda = min(SNR, gamma) sigma^2 / SNR: the eps-MSE (lambda = sigma^2) weighted by
min(SNR, gamma)/SNR, as in their code (`mse_loss_weight = min(snr, k) / snr`). It is sigma^2 where
SNR <= gamma (high noise) and the x0-MSE times gamma where SNR > gamma (low noise). Under VE
(alpha = 1, SNR = 1/sigma^2) that is min(sigma^2, gamma sigma^4).

Shapes: x0, eps (N, 2); t (N,); every loss is per sample (N,), unreduced.
"""

from __future__ import annotations

import torch

from scoreviz.errors import unknown_key
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess
from scoreviz.score import ScoreFn

WEIGHTINGS: dict[str, str] = {
    "sigma2": "λ = σ² (ε-MSE, balanced)",
    "one": "λ = 1 (raw score MSE)",
    "x0": "λ = σ⁴/α² (x₀-MSE)",
    "min_snr": "λ = σ²·min(SNR, 5)/SNR (Min-SNR-5)",
}
MIN_SNR_GAMMA = 5.0


def _weight64(weighting: str, process: NoiseProcess, t: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t).to(torch.float64)
    alpha, sigma = process.alpha(t), process.sigma(t)
    if weighting == "sigma2":
        return sigma**2
    if weighting == "one":
        return torch.ones_like(sigma)
    if weighting == "x0":
        return sigma**4 / alpha**2
    if weighting == "min_snr":
        # sigma^2 min(SNR, gamma) / SNR, written without dividing by SNR (finite at alpha -> 0)
        return torch.minimum(sigma**2, MIN_SNR_GAMMA * sigma**4 / alpha**2)
    raise unknown_key("loss weighting", weighting, WEIGHTINGS)


def weight(weighting: str, process: NoiseProcess, t) -> torch.Tensor:
    """lambda(t), shape (N,), in t's dtype (float32 for integer input)."""
    t = torch.as_tensor(t)
    dtype = t.dtype if t.is_floating_point() else torch.float32
    return _weight64(weighting, process, t).to(dtype)


def dsm_loss(
    score_fn: ScoreFn,
    process: NoiseProcess,
    x0: torch.Tensor,
    t: torch.Tensor,
    eps: torch.Tensor,
    weighting: str = "sigma2",
) -> torch.Tensor:
    """lambda(t) ||s(x_t, t) + eps / sigma_t||^2 per sample, shape (N,), in x0's dtype."""
    lam = weight(weighting, process, t.to(x0.dtype))
    sigma = process.sigma(t.to(x0.dtype))[:, None]
    x_t = process.marginal(x0, t, eps)
    resid = score_fn(x_t, t) + eps / sigma
    return lam * (resid**2).sum(1)


def output_loss(model, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, weighting="sigma2"):
    """The same per-sample loss as `dsm_loss(model.score_with_grad, ...)`, in benign form.

    Written in the network's own output F (see `scoreviz.models`), so no 1/sigma is amplified:

        eps   (F = eps_hat):       lambda / sigma^2         ||F - eps||^2   (sigma2: ||F - eps||^2)
        score (F = sigma score):   lambda / sigma^2         ||F + eps||^2
        x0    (F = x0_hat):        lambda alpha^2 / sigma^4 ||F - x0||^2    (x0: ||F - x0||^2)

    A DAE (output x0) is evaluated at its own t whatever t says. Differentiable; shape (N,).
    """
    t64, alpha, sigma = model.schedule(t, x0.shape[0])
    x_t = alpha.to(x0.dtype)[:, None] * x0 + sigma.to(x0.dtype)[:, None] * eps
    raw, _, _ = model.outputs(x_t, t64)
    lam_over_s2 = _weight64(weighting, model.process, t64) / sigma**2
    kind = model.config.output
    if kind == "x0":
        factor, target = lam_over_s2 * alpha**2 / sigma**2, x0
    else:
        factor, target = lam_over_s2, (eps if kind == "eps" else -eps)
    return factor.to(raw.dtype) * ((raw - target) ** 2).sum(1)


@torch.no_grad()
def loss_floor(
    dist: GaussianMixture,
    process: NoiseProcess,
    t,
    weighting: str = "sigma2",
    n_mc: int = 4096,
    seed: int = 0,
) -> torch.Tensor:
    """The exact irreducible loss lambda alpha^2/sigma^4 E tr Cov[X0 | x_t] at each t, (len(t),).

    tr Cov[X0 | x_t] is exact; only the outer expectation over x_t ~ p_t is Monte Carlo, with the
    same n_mc (x0, eps) pairs at every t (smooth curves; deterministic by seed). float64.
    """
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
    gen = torch.Generator().manual_seed(seed)
    x0 = dist.sample(n_mc, generator=gen, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    alpha, sigma = process.alpha(t), process.sigma(t)
    lam = _weight64(weighting, process, t)
    out = torch.empty_like(t)
    for i in range(t.shape[0]):
        x_t = alpha[i] * x0 + sigma[i] * eps
        tr = dist.posterior_trace_cov(x_t, alpha[i], sigma[i]).mean()
        out[i] = lam[i] * alpha[i] ** 2 / sigma[i] ** 4 * tr
    return out
