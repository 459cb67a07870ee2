"""Forward noising processes x_t = alpha_t x_0 + sigma_t eps, t in [t_min, 1], t = 0 is data.

Each process only states alpha(t), sigma(t) and their log-derivatives. The SDE
dx = f(t) x dt + g(t) dw that has exactly these marginals is *derived* (for every process):

    f(t)   = d log alpha / dt
    g(t)^2 = d sigma^2 / dt - 2 f(t) sigma^2

and so are the reverse SDE dx = [f x - g^2 s] dt + g dw_bar and the probability-flow ODE
dx/dt = f x - g^2 s / 2 (see `scoreviz.samplers`), which never branch on the process type.

Times are tensors of shape (N,) (or 0-d); all formulas are evaluated in float64 internally and
returned in the dtype of t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from scoreviz.errors import ConfigError, unknown_key


def _f64(t) -> torch.Tensor:
    return torch.as_tensor(t, dtype=torch.float64)


def _out(v: torch.Tensor, like) -> torch.Tensor:
    like = torch.as_tensor(like)
    return v.to(like.dtype if like.is_floating_point() else torch.float32)


def stratified_u(n: int, gen: torch.Generator | None = None, per_stratum: int = 1) -> torch.Tensor:
    """`per_stratum` points in each of n equal strata of [0, 1): u = (i + U) / n, float64.

    Shape (n * per_stratum,), sorted by stratum i. U ~ U[0, 1) from `gen`; without a generator
    U = 1/2 (the strata's midpoints). The one stratified sampler: training times, t bins, metrics.
    """
    i = torch.arange(n, dtype=torch.float64).repeat_interleave(per_stratum)
    if gen is None:
        return (i + 0.5) / n
    return (i + torch.rand(i.shape[0], generator=gen, dtype=torch.float64)) / n


class Schedule(NamedTuple):
    """alpha_t, sigma_t and SNR_t = alpha_t^2 / sigma_t^2 at one t (floats) or many (tensors)."""

    alpha: float | torch.Tensor
    sigma: float | torch.Tensor
    snr: float | torch.Tensor


@dataclass(frozen=True)
class NoiseProcess:
    """Base class. Subclasses implement `_log_alpha`, `_dlog_alpha`, `_sigma2`, `_dsigma2`."""

    t_min: float = 1e-3
    name = "base"
    label = "base"

    def __post_init__(self) -> None:
        if not (0.0 <= self.t_min < 0.5):
            raise ConfigError(f"t_min must lie in [0, 0.5), got {self.t_min}.")

    # --- what a subclass states (float64 tensors in, float64 tensors out)
    def _log_alpha(self, t):
        raise NotImplementedError

    def _dlog_alpha(self, t):
        raise NotImplementedError

    def _sigma2(self, t):
        raise NotImplementedError

    def _dsigma2(self, t):
        raise NotImplementedError

    # --- public schedule
    def alpha(self, t) -> torch.Tensor:
        """alpha_t, the signal scale."""
        return _out(torch.exp(self._log_alpha(_f64(t))), t)

    def sigma(self, t) -> torch.Tensor:
        """sigma_t, the noise standard deviation."""
        return _out(torch.sqrt(self._sigma2(_f64(t))), t)

    def snr(self, t) -> torch.Tensor:
        """Signal-to-noise ratio alpha_t^2 / sigma_t^2."""
        t64 = _f64(t)
        return _out(torch.exp(2 * self._log_alpha(t64)) / self._sigma2(t64), t)

    def at(self, t) -> Schedule:
        """alpha_t, sigma_t, SNR_t: floats for a number t, tensors (dtype of t) for a tensor t."""
        if isinstance(t, torch.Tensor):
            return Schedule(self.alpha(t), self.sigma(t), self.snr(t))
        t64 = _f64(float(t))
        return Schedule(float(self.alpha(t64)), float(self.sigma(t64)), float(self.snr(t64)))

    def t_uniform(self, u) -> torch.Tensor:
        """The t a fraction u of the way from t_min to 1 (u in [0, 1]), float64."""
        return self.t_min + (1 - self.t_min) * _f64(u)

    def f(self, x: torch.Tensor, t) -> torch.Tensor:
        """Drift f(x, t) = (d log alpha/dt) x, shape like x (N, 2)."""
        coef = _out(self._dlog_alpha(_f64(t)), x)
        return coef.reshape(-1, 1) * x

    def g2(self, t) -> torch.Tensor:
        """Squared diffusion g(t)^2 = d sigma^2/dt - 2 (d log alpha/dt) sigma^2."""
        t64 = _f64(t)
        return _out(self._dsigma2(t64) - 2 * self._dlog_alpha(t64) * self._sigma2(t64), t)

    def g(self, t) -> torch.Tensor:
        """Diffusion coefficient g(t)."""
        return torch.sqrt(self.g2(t).clamp_min(0))

    def marginal(self, x0: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
        """x_t = alpha_t x_0 + sigma_t eps, with per-sample t of shape (N,)."""
        a = self.alpha(t).to(x0.dtype).reshape(-1, 1)
        s = self.sigma(t).to(x0.dtype).reshape(-1, 1)
        return a * x0 + s * eps

    @property
    def prior_std(self) -> float:
        """The prior at t = 1 is N(0, prior_std^2 I)."""
        return math.sqrt(float(self._sigma2(_f64(1.0))))

    def t_from_sigma(self, sigma) -> torch.Tensor:
        """Inverse of sigma(t) on [0, 1] by vectorised bisection (sigma is increasing).

        Values outside [sigma(0), sigma(1)] are clipped to the ends.
        """
        s2 = _f64(sigma) ** 2
        lo, hi = torch.zeros_like(s2), torch.ones_like(s2)
        for _ in range(60):
            mid = (lo + hi) / 2
            below = self._sigma2(mid) < s2
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return _out((lo + hi) / 2, sigma)

    def time_grid(self, n_steps: int, dtype=torch.float32) -> torch.Tensor:
        """n_steps + 1 times from 1 down to t_min, uniform in t (what samplers integrate over)."""
        return torch.linspace(1.0, self.t_min, n_steps + 1, dtype=torch.float64).to(dtype)


def _beta_integral(t, b0, b1):
    return b0 * t + 0.5 * (b1 - b0) * t**2


@dataclass(frozen=True)
class VariancePreserving(NoiseProcess):
    """Base of the VP schedules: sigma_t^2 = 1 - alpha_t^2, so d sigma^2/dt = -2 f alpha^2.

    A subclass states only alpha (`_log_alpha`, `_dlog_alpha`); then g^2 = -2 f = beta(t).
    """

    def _sigma2(self, t):
        return (-torch.expm1(2 * self._log_alpha(t))).clamp_min(0)

    def _dsigma2(self, t):
        return -2 * self._dlog_alpha(t) * torch.exp(2 * self._log_alpha(t))


@dataclass(frozen=True)
class VPLinear(VariancePreserving):
    """Variance preserving, linear beta(t) = b0 + (b1 - b0) t (DDPM in continuous time).

    alpha_t = exp(-1/2 int_0^t beta), sigma_t^2 = 1 - alpha_t^2, f = -beta/2, g^2 = beta.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    name = "vp_linear"
    label = "VP, linear β (DDPM)"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (0 < self.beta_min <= self.beta_max):
            raise ConfigError("Need 0 < beta_min <= beta_max.")

    def _log_alpha(self, t):
        return -0.5 * _beta_integral(t, self.beta_min, self.beta_max)

    def _dlog_alpha(self, t):
        return -0.5 * (self.beta_min + (self.beta_max - self.beta_min) * t)


@dataclass(frozen=True)
class VPCosine(VariancePreserving):
    """Variance preserving, cosine schedule (Nichol & Dhariwal 2021) in continuous time.

    alpha_bar(t) = cos^2(phi(t)) / cos^2(phi(0)), phi(t) = (u t + s)/(1 + s) pi/2; u < 1 stops
    just short of alpha = 0 so that f = d log alpha/dt stays finite (alpha_bar(1) ~ 1e-4).
    """

    s: float = 0.008
    u: float = 0.9937
    name = "vp_cosine"
    label = "VP, cosine"

    def _phi(self, t):
        return (self.u * t + self.s) / (1 + self.s) * math.pi / 2

    def _log_alpha(self, t):
        return torch.log(torch.cos(self._phi(t))) - math.log(math.cos(self._phi(0.0)))

    def _dlog_alpha(self, t):
        return -torch.tan(self._phi(t)) * self.u / (1 + self.s) * math.pi / 2


@dataclass(frozen=True)
class VE(NoiseProcess):
    """Variance exploding: alpha = 1, sigma(t) = sigma_min (sigma_max/sigma_min)^t (NCSN/SMLD)."""

    sigma_min: float = 0.01
    sigma_max: float = 10.0
    t_min: float = 0.0
    name = "ve"
    label = "VE, geometric σ (NCSN)"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (0 < self.sigma_min < self.sigma_max):
            raise ConfigError("Need 0 < sigma_min < sigma_max.")

    def _log_alpha(self, t):
        return torch.zeros_like(t)

    def _dlog_alpha(self, t):
        return torch.zeros_like(t)

    def _sigma2(self, t):
        return self.sigma_min**2 * (self.sigma_max / self.sigma_min) ** (2 * t)

    def _dsigma2(self, t):
        return 2 * math.log(self.sigma_max / self.sigma_min) * self._sigma2(t)


@dataclass(frozen=True)
class SubVP(VPLinear):
    """sub-VP (Song et al. 2021): VP's alpha, sigma_t = 1 - alpha_t^2 (always below VP's sigma).

    g^2 = beta(t) (1 - exp(-2 int_0^t beta)).
    """

    name = "sub_vp"
    label = "sub-VP"

    def _sigma2(self, t):
        return torch.expm1(2 * self._log_alpha(t)) ** 2

    def _dsigma2(self, t):
        a2 = torch.exp(2 * self._log_alpha(t))
        return 2 * (1 - a2) * (-2 * self._dlog_alpha(t) * a2)


@dataclass(frozen=True)
class LinearPath(NoiseProcess):
    """The linear path of flow matching / rectified flow: x = (1 - tau) x_0 + tau eps, tau = u t.

    alpha_t = 1 - u t, sigma_t = u t (alpha + sigma = 1), so
    f = -u / (1 - u t),   g^2 = 2 u^2 t + 2 u^3 t^2 / (1 - u t) = 2 u^2 t / (1 - u t),
    and the probability-flow ODE dx/dt = f x - g^2 s / 2 is u E[eps - x_0 | x_t] = u v(x_t, t)
    (the velocity, `conversions.score_to_v`). Why u < 1 (as VP cosine's u): at tau = 1, alpha = 0
    and f, g^2 are infinite (the reverse SDE's noise integral diverges like log(1 / (1 - tau))).
    u = 0.99 stops at alpha_1 = 0.01 (VP cosine's alpha_1 ~ 0.01, VP linear's 0.0064), where
    g^2 = 196 stays below VP cosine's ~320, so the reverse SDE, DDPM and DDIM run as they do
    there. t_min = 0.01 puts sigma(t_min) = 0.0099 at VP's ~0.01 (log sigma spans 4.6 e-folds,
    as on VP; 1e-3 would give 6.9 and starve the high noise in log-sigma training).
    """

    u: float = 0.99
    t_min: float = 0.01
    name = "linear"
    label = "Linear path (flow matching)"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (0 < self.u < 1):
            raise ConfigError(f"The linear path's u must lie in (0, 1), got {self.u}.")

    def _log_alpha(self, t):
        return torch.log1p(-self.u * t)

    def _dlog_alpha(self, t):
        return -self.u / (1 - self.u * t)

    def _sigma2(self, t):
        return (self.u * t) ** 2

    def _dsigma2(self, t):
        return 2 * self.u**2 * t

    @property
    def speed(self) -> float:
        """d tau / dt = u: the ODE's dx/dt is u times the velocity v = E[eps - x_0 | x_t]."""
        return self.u


PROCESSES: dict[str, type[NoiseProcess]] = {
    cls.name: cls for cls in (VPLinear, VPCosine, VE, SubVP, LinearPath)
}


def get_process(name: str, **kwargs) -> NoiseProcess:
    """Build a process by registry name; an unknown name lists the valid ones."""
    if name not in PROCESSES:
        raise unknown_key("noise process", name, PROCESSES)
    return PROCESSES[name](**kwargs)


def process_labels() -> dict[str, str]:
    """Registry name -> display label (feeds the select boxes)."""
    return {k: v.label for k, v in PROCESSES.items()}
