"""Denoising score matching: the loss, its weightings lambda(t) and its exact irreducible floor.

    L(t) = lambda(t) E || s(x_t, t) + eps / sigma_t ||^2,   x_t = alpha_t x_0 + sigma_t eps.

The exact score is s* = E[-eps/sigma_t | x_t], so even s* pays the floor

    L*(t) = lambda(t) alpha_t^2 / sigma_t^4 E_{x_t} tr Cov[X_0 | x_t],

which the mixture gives exactly (`posterior_trace_cov`): a loss curve is read against this floor,
not against 0. Weightings (`WEIGHTING_TABLE`: key -> label and formula; labels in `WEIGHTINGS`):

    "sigma2"   lambda = sigma^2                 = eps-MSE  ||eps_hat - eps||^2 (balanced in t)
    "one"      lambda = 1                       raw score MSE (dominated by small sigma)
    "x0"       lambda = sigma^4 / alpha^2       = x0-MSE ||x0_hat - x0||^2 (= sigma^2 / SNR)
    "min_snr"  lambda = sigma^2 min(SNR, 5)/SNR = min(sigma^2, 5 sigma^4/alpha^2)   Min-SNR-5
    "v"        lambda = sigma^2 (alpha + sigma)^2 / alpha^2   = v-MSE ||v_hat - (eps - x0)||^2,
               flow matching's loss (on the linear path alpha + sigma = 1: lambda = 1 / SNR)

The v-MSE: with v = eps - x0 read at fixed x_t, eps_hat - eps = alpha/(alpha + sigma) (v_hat - v)
(`conversions.v_to_eps`), so ||v_hat - v||^2 = ((alpha + sigma)/alpha)^2 ||eps_hat - eps||^2.

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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from scoreviz.errors import unknown_key
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess
from scoreviz.score import ScoreFn

MIN_SNR_GAMMA = 5.0


@dataclass(frozen=True)
class Weighting:
    """A loss weighting: its label and lambda(alpha_t, sigma_t) on float64 tensors of shape (N,)."""

    label: str
    formula: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    help: str = ""  # what a student should know before choosing it (the Train form's help)


WEIGHTING_TABLE: dict[str, Weighting] = {
    "sigma2": Weighting("λ = σ² (ε-MSE, balanced)", lambda alpha, sigma: sigma**2),
    "one": Weighting(
        "λ = 1 (raw score MSE: high noise never learned)",
        lambda alpha, sigma: torch.ones_like(sigma),
        help="The failure to learn from: λ = 1 weighs the ε-error by 1/σ², ~10⁴× more at the "
        "smallest noise level (σ ≈ 0.01) than at the largest (σ = 1) on VP, 10⁶× on VE, so the "
        "high-noise score, where sampling starts, is never learned.",
    ),
    "x0": Weighting("λ = σ⁴/α² (x₀-MSE)", lambda alpha, sigma: sigma**4 / alpha**2),
    # sigma^2 min(SNR, gamma) / SNR, written without dividing by SNR (finite at alpha -> 0)
    "min_snr": Weighting(
        "λ = σ²·min(SNR, 5)/SNR (Min-SNR-5)",
        lambda alpha, sigma: torch.minimum(sigma**2, MIN_SNR_GAMMA * sigma**4 / alpha**2),
    ),
    "v": Weighting(
        "λ = σ²(α+σ)²/α² (v-MSE, flow matching)",
        lambda alpha, sigma: sigma**2 * (alpha + sigma) ** 2 / alpha**2,
    ),
}
# The weighting a config gets when it names none: the natural loss of the network's output.
DEFAULT_WEIGHTING = {"v": "v"}  # every other output: "sigma2" (the eps-MSE)
WEIGHTINGS: dict[str, str] = {k: w.label for k, w in WEIGHTING_TABLE.items()}  # key -> label
WEIGHTING_HELP: dict[str, str] = {k: w.help for k, w in WEIGHTING_TABLE.items() if w.help}


# A weighting whose eps-MSE weight lambda / sigma^2 differs by more than this between the smallest
# and the largest noise level leaves one end unlearned in a default training run.
SKEW_LIMIT = 100.0
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def eps_weight_skew(weighting: str, process: NoiseProcess) -> float:
    """(lambda / sigma^2 at t_min) / (the same at t = 1): how much more the loss weighs the
    smallest noise level than the largest, on the eps scale where lambda = sigma^2 is flat."""
    t = torch.tensor([process.t_min, 1.0], dtype=torch.float64)
    w = _weight64(weighting, process, t) / process.sigma(t) ** 2
    return float(w[0] / w[1])


def weighting_note(weighting: str, process: NoiseProcess) -> str:
    """Why `weighting` fails under `process`, in words ('' when its weight is balanced enough).

    lambda = 1 weighs the eps-MSE by 1/sigma^2: ~10^4 x more at sigma_min = 0.01 than at sigma = 1
    on VP, so the high-noise score the sampler starts from is never learned.
    """
    skew = eps_weight_skew(weighting, process)
    # the v-MSE is balanced on the velocity's own scale, the one the ODE moves particles by
    if weighting == "v" or 1 / SKEW_LIMIT <= skew <= SKEW_LIMIT:
        return ""
    label = WEIGHTING_TABLE[weighting].label.split(" (")[0]
    power = f"10{str(round(math.log10(max(skew, 1 / skew)))).translate(_SUPERSCRIPT)}"
    sigma = process.sigma(torch.tensor([process.t_min, 1.0], dtype=torch.float64)).tolist()
    if skew > 1:
        return (
            f"{label} puts ~{power}× the weight on the smallest noise level (σ = {sigma[0]:.2g}) "
            f"that it puts on the largest (σ = {sigma[1]:.2g}), so the high-noise score, where "
            "sampling starts, is never learned: use λ = σ²"
        )
    return (
        f"{label} puts ~{power}× the weight on the largest noise level (σ = {sigma[1]:.2g}) that "
        f"it puts on the smallest (σ = {sigma[0]:.2g}), so the low-noise score, which draws the "
        "shape's fine detail, is barely learned: use λ = σ²"
    )


def _weight64(weighting: str, process: NoiseProcess, t: torch.Tensor) -> torch.Tensor:
    if weighting not in WEIGHTING_TABLE:
        raise unknown_key("loss weighting", weighting, WEIGHTINGS)
    t = torch.as_tensor(t).to(torch.float64)
    return WEIGHTING_TABLE[weighting].formula(process.alpha(t), process.sigma(t))


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


def output_loss(
    model, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, weighting="sigma2", labels=None
):
    """The same per-sample loss as `dsm_loss(model.score_with_grad, ...)`, in benign form.

    Written in the network's own output F (see `scoreviz.models`), so no 1/sigma is amplified:

        eps   (F = eps_hat):       lambda / sigma^2         ||F - eps||^2   (sigma2: ||F - eps||^2)
        score (F = sigma score):   lambda / sigma^2         ||F + eps||^2
        x0    (F = x0_hat):        lambda alpha^2 / sigma^4 ||F - x0||^2    (x0: ||F - x0||^2)
        v     (F = v_hat):         lambda alpha^2 / (sigma^2 (alpha + sigma)^2)
                                                    ||F - (eps - x0)||^2   (v: ||F - v||^2)

    A DAE (output x0) is evaluated at its own t whatever t says. labels: a conditional model's
    class per sample (N,), the null class for dropped labels. Differentiable; shape (N,).
    """
    t64, alpha, sigma = model.schedule(t, x0.shape[0])
    x_t = alpha.to(x0.dtype)[:, None] * x0 + sigma.to(x0.dtype)[:, None] * eps
    raw, _, _ = model.outputs(x_t, t64, labels) if labels is not None else model.outputs(x_t, t64)
    lam_over_s2 = _weight64(weighting, model.process, t64) / sigma**2
    kind = model.config.output
    if kind == "x0":
        factor, target = lam_over_s2 * alpha**2 / sigma**2, x0
    elif kind == "v":
        factor, target = lam_over_s2 * (alpha / (alpha + sigma)) ** 2, eps - x0
    else:
        factor, target = lam_over_s2, (eps if kind == "eps" else -eps)
    return factor.to(raw.dtype) * ((raw - target) ** 2).sum(1)


GOLDEN = (5**0.5 - 1) / 2


def floor_points(
    dist: GaussianMixture, n: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n points for E_{x_t ~ p_t} f(x_t) by randomised quasi-Monte Carlo: (mu, std, y).

    Given component k, x_t ~ N(alpha mu_k, (alpha^2 s_k^2 + sigma^2) I), so x_t = alpha mu +
    sqrt(alpha^2 std^2 + sigma^2) y with y ~ N(0, I) at every t. Components are drawn by
    systematic sampling (each gets n w_k points, rounded); within one, its m points form a
    golden-angle spiral with radius quantiles (r + U)/m of |y| (a randomly shifted 2D lattice).
    Unbiased, and 10-50x less error than plain Monte Carlo on the floors (0.07 % at n = 1024).
    Shapes: mu (n, 2), std (n,), y (n, 2), float64.
    """
    w, k = dist.weights, dist.n_components
    shift = torch.rand(k + 1, 2, generator=gen, dtype=torch.float64)
    u = (torch.arange(n, dtype=torch.float64) + shift[-1, 0]) / n
    c = torch.searchsorted(torch.cumsum(w, 0), u).clamp(max=k - 1)  # sorted by component
    counts = torch.bincount(c, minlength=k)
    r = torch.arange(n) - (torch.cumsum(counts, 0) - counts)[c]  # rank within the component
    radius = torch.sqrt(-2 * torch.log1p(-(r + shift[c, 0]) / counts[c]))
    angle = 2 * torch.pi * torch.frac(r * GOLDEN + shift[c, 1])
    y = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    return dist.means[c], dist.stds[c], y


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

    tr Cov[X0 | x_t] is exact; only the outer expectation over x_t ~ p_t is estimated, by
    randomised QMC (`floor_points`), with the same n_mc points at every t (smooth curves;
    deterministic by seed). float64.
    """
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
    mu, std, y = floor_points(dist, n_mc, torch.Generator().manual_seed(seed))
    alpha, sigma = process.alpha(t), process.sigma(t)
    # every (t, point) at once: x_t (T * n_mc, 2) with a per-point alpha and sigma
    spread = torch.sqrt(alpha[:, None] ** 2 * std**2 + sigma[:, None] ** 2)  # (T, n_mc)
    x_t = (alpha[:, None, None] * mu + spread[..., None] * y).reshape(-1, 2)
    a, s = alpha.repeat_interleave(n_mc), sigma.repeat_interleave(n_mc)
    tr = dist.posterior_trace_cov(x_t, a, s).reshape(t.shape[0], n_mc).mean(1)
    return _weight64(weighting, process, t) * alpha**2 / sigma**4 * tr


def snr_crossing(process: NoiseProcess, gamma: float = MIN_SNR_GAMMA) -> float | None:
    """The t in (t_min, 1) where SNR(t) = gamma (SNR decreases in t), or None if it has none.

    Min-SNR's lambda has a kink there, so quadrature pieces break at it.
    """
    lo, hi = torch.tensor(process.t_min, dtype=torch.float64), torch.tensor(1.0).double()
    if not (process.snr(lo) > gamma > process.snr(hi)):
        return None
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if process.snr(mid) > gamma else (lo, mid)
    return float((lo + hi) / 2)


def floor_kinks(process: NoiseProcess) -> tuple[float, ...]:
    """Times where a weighting's lambda(t) has a kink (Min-SNR's SNR = gamma), for quadrature."""
    t = snr_crossing(process)
    return () if t is None else (t,)


def t_quadrature(
    t_min: float,
    edges: Sequence[float] | None = None,
    nodes: int = 3,
    kinks: Sequence[float] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes t (M,) and weights dt (M,) with sum dt f(t) ~ int_{t_min}^1 f(t) dt, float64.

    The floors are steep near t_min: under lambda = 1, L*(t) ~ 2/sigma_t^2, i.e. ~ 1/t (VP,
    sigma^2 ~ beta_min t) or ~ 1/t^2 (sub-VP, sigma ~ beta_min t), so an average over evenly
    spaced times misses most of the mass (4x on VP linear, 70x on sub-VP). Gauss-Legendre with
    `nodes` points on pieces graded geometrically towards t_min (breaks t_min + (1 - t_min)/2^k
    until the piece next to t_min is shorter than t_min) sees a smooth function on each piece,
    whose nearest singularity (t = 0) lies at least a piece's width away. With 3 nodes per piece
    the integration error is < 0.03 % on every floor the app draws (4 processes x 4 weightings,
    training average and bin averages, against a 40,000-point trapezoid of the same integrand);
    with `loss_floor`'s QMC, every one is within 0.25 % of an independent Gauss-Hermite
    reference (tests/test_losses.py). The pieces also break at `edges` (bin edges: each node
    then lies inside one bin, and a bin's weights sum to its width), at eighths of [t_min, 1]
    and at `kinks` (where the integrand's slope jumps, e.g. `snr_crossing`).
    """
    breaks = set(np.linspace(t_min, 1.0, 9).tolist())
    breaks |= {float(e) for e in (*(edges if edges is not None else ()), *kinks) if t_min <= e <= 1}
    span, k = 1.0 - t_min, 1
    while k <= 40 and span / 2**k >= max(t_min / 2, 1e-5):
        breaks.add(t_min + span / 2**k)
        k += 1
    b = np.array(sorted(breaks))
    b = b[np.concatenate([[True], np.diff(b) > 1e-12 * span])]
    x, w = np.polynomial.legendre.leggauss(nodes)
    mid, half = (b[1:] + b[:-1]) / 2, np.diff(b) / 2
    return (mid[:, None] + half[:, None] * x).ravel(), (half[:, None] * w).ravel()


def training_floor(
    dist: GaussianMixture,
    process: NoiseProcess,
    weighting: str = "sigma2",
    dae_t: float | None = None,
    density: Callable[[torch.Tensor], torch.Tensor] | None = None,
    n_mc: int = 1024,
    seed: int = 0,
) -> float:
    """The exact score's expected training loss: the lowest a training loss can go.

    Training draws the t of a batch from a density q(t) on [t_min, 1] (`training.sample_times`;
    `density` is its `training.time_density`, None for uniform), so the lowest expected loss is

        E_q L*(t) = int_{t_min}^1 q(t) L*(t) dt     (`t_quadrature`),

    or L*(dae_t) for a classical DAE, trained at its one t. density: float64 t (M,) -> q (M,).
    """
    if dae_t is not None:
        return float(loss_floor(dist, process, [dae_t], weighting, n_mc=n_mc, seed=seed)[0])
    t, dt = t_quadrature(process.t_min, kinks=floor_kinks(process))
    floor = loss_floor(dist, process, t, weighting, n_mc=n_mc, seed=seed).numpy()
    if density is None:
        return float((dt * floor).sum() / dt.sum())
    q = torch.as_tensor(density(torch.as_tensor(t)), dtype=torch.float64).numpy()
    return float((dt * q * floor).sum())
