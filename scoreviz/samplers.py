"""Samplers: turn any score function into samples, recording the whole trajectory.

A sampler sees only a `ScoreFn` s(x_t, t) (exact or learned) and a `NoiseProcess` (alpha_t,
sigma_t, f, g^2, prior, time grid). It never branches on the process type, so one code path
serves VP, VE and sub-VP. All but plain Langevin start from the prior N(0, prior_std^2 I) at t = 1
and walk `process.time_grid(n_steps)` down to t_min, with steps D = t_k - t_{k+1} > 0:

  reverse_sde        x <- x - [f(x, t) - g^2 s] D + g sqrt(D) z           (Euler-Maruyama)
  pf_ode_euler       x <- x - [f(x, t) - g^2 s / 2] D                       (probability-flow ODE)
  pf_ode_heun        the same ODE with Heun's 2nd-order correction (last step plain Euler)
  ddpm               x_s ~ q(x_s | x_t, x0_hat), the Gaussian posterior of the forward process
  ddim               x_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z, c = eta * post. std
  pc                 reverse_sde predictor + n_corrector Langevin correctors (Song et al.'s snr)
  annealed_langevin  Langevin on p_t at levels t_1 > ... > t_L = t_min (NCSN, Song & Ermon 2019)
  langevin           Langevin on p_t at one fixed t = t_langevin

Langevin steps are x <- x + e s + sqrt(2 e) z with e = step_size * sigma_t^2: `step_size` is the
step in units of the noise variance of the level being sampled. For annealed Langevin this is
NCSN's rule e_i = e_L sigma_i^2 / sigma_L^2 (with e_L = step_size sigma_L^2); it stays stable for
any process and any data width as long as step_size < 2 (the exact score's curvature is at most
1 / sigma_t^2). Plain Langevin starts from the uniform box [-3 prior_std, 3 prior_std]^2 (the
"uniform noise" start of NCSN's Fig. 3): at a small sigma the modes cannot exchange particles, so
each mode keeps the share of the box that drains into it, whatever its true weight.

Every sampler returns a `Trajectory`: F = min(n_frames, steps + 1) frames evenly spread over the
steps (first and last state included), each with its time, x_t and the Tweedie denoiser preview
x0_hat = (x_t + sigma_t^2 s) / alpha_t. The final state is x at t_min (no extra denoising step:
`x0_hats[-1]` is that). Randomness comes only from a `torch.Generator` seeded by `config.seed`.

`SAMPLERS` maps each name to a `SamplerSpec(label, run, knobs)`: the UI draws one slider per `Knob`
(range, default, step, help) and `SamplerConfig` checks every knob with the knob's own rule, so a
new sampler with a new setting is one entry here (its value lives in `SamplerConfig.extra`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from scoreviz import cancel
from scoreviz.conversions import score_to_x0, x0_to_eps
from scoreviz.errors import ConfigError, ScorevizError, unknown_key
from scoreviz.processes import NoiseProcess
from scoreviz.score import ScoreFn, full_t

Tensor = torch.Tensor
Update = Callable[[Tensor, int, Tensor], Tensor]  # (x_k, k, s(x_k, t_score[k])) -> x_{k+1}

# A state beyond _BLOWUP * max(1, prior_std) counts as diverged (the data have unit spread).
_BLOWUP = 1e4


class SamplerDivergedError(ScorevizError, RuntimeError):
    """The particles ran off to infinity or NaN during sampling; the message says what to change."""


@dataclass(frozen=True)
class SamplerConfig:
    """What to sample and how. Frozen and hashable: it is a cache key.

    step_size: Langevin step e in units of sigma_t^2 (e = step_size * sigma_t^2), used by
        "langevin" and "annealed_langevin"; stable below 2 with the exact score. On a Gaussian
        of variance v >= sigma_t^2 the chain's stationary variance is v / (1 - e / 2v): 0.5
        inflates it by at most 33 % at the noisiest levels and by a few % once the data's own
        width dominates. Smaller steps lag behind p_t as it sharpens, larger ones flatten the
        mode weights: 0.5 got the skewed 0.8 / 0.2 weights right in 200 steps (vp_linear).
    n_corrector: Langevin corrector steps per predictor step ("pc"), and Langevin steps per
        noise level ("annealed_langevin": n_steps updates in all, n_corrector per level).
    snr: the corrector's signal-to-noise ratio r: e = 2 (r mean||z|| / mean||s||)^2 (0.16 as in
        Song et al. 2021).
    t_langevin: the fixed t of plain Langevin. 0.01 is a small sigma on the VP processes
        (0.045 on vp_linear) but tiny on ve (0.011) and sub_vp (0.002), where e = step_size *
        sigma_t^2 is then too small to converge in 200 steps: there pick the t of a sigma near
        0.05, e.g. float(process.t_from_sigma(0.05)).
    eta: DDIM stochasticity (0 = deterministic DDIM, 1 = exactly DDPM's posterior noise).
    extra: values of knobs that have no field here, as sorted (name, value) pairs (a new
        sampler's knob needs only its registry entry); read every knob with `config.knob(name)`
        and build from knob values with `config_from_knobs`.

    The knobs' own checks (`Knob.valid`) validate every knob value, whatever the sampler.
    """

    name: str = "reverse_sde"
    n_steps: int = 200
    n_particles: int = 1000
    n_frames: int = 60
    seed: int = 0
    step_size: float = 0.5
    n_corrector: int = 1
    snr: float = 0.16
    t_langevin: float = 0.01
    eta: float = 0.0
    extra: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.name not in SAMPLERS:
            raise unknown_key("sampler", self.name, SAMPLERS)
        _check(_is_int(self.n_steps) and self.n_steps >= 1, "The number of steps must be >= 1.")
        _check(_is_int(self.n_particles) and self.n_particles >= 1, "Need at least 1 particle.")
        _check(_is_int(self.n_frames) and self.n_frames >= 2, "Need at least 2 frames.")
        _check(_is_int(self.seed), "The seed must be a whole number.")
        knobs = all_knobs()
        for key, _ in self.extra:
            if key not in knobs or key in _FIELDS:
                raise unknown_key("extra sampler setting", key, set(knobs) - _FIELDS)
        for knob in knobs.values():
            _check(knob.valid(self.knob(knob.name)), knob.error)

    def knob(self, name: str) -> Any:
        """Knob `name`'s value: its own field, else its `extra` entry, else the knob's default."""
        if name in _FIELDS:
            return getattr(self, name)
        return dict(self.extra).get(name, all_knobs()[name].default)


@dataclass(frozen=True)
class Knob:
    """One sampler setting: its SamplerConfig value, its slider and its check.

    lo, hi, default, step: the slider (all ints give an integer slider); key: the widget's key.
    valid(value) -> bool with the message `error`: the check SamplerConfig applies to any value,
    wider than the slider (a notebook may go beyond it).
    """

    name: str
    label: str
    lo: float
    hi: float
    default: float
    step: float
    help: str
    valid: Callable[[Any], bool]
    error: str
    key: str


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A recorded run: times (F,), xs and x0_hats (F, N, 2) float32, and the config that made it."""

    times: np.ndarray
    xs: np.ndarray
    x0_hats: np.ndarray
    config: SamplerConfig

    @property
    def final(self) -> np.ndarray:
        """The samples: the last recorded state, shape (N, 2)."""
        return self.xs[-1]


@dataclass
class _Plan:
    """What a sampler does, for `_run`: start, time labels and the update rule.

    t_state (S+1,): the t of each state (t_state[0] = start); t_score (S,): the t at which update
    k gets s(x_k, t); update(x_k, k, s) -> x_{k+1} may evaluate the score again itself.
    """

    x: Tensor
    t_state: Tensor
    t_score: Tensor
    update: Update


# ----------------------------------------------------------------------------- shared pieces
def _score(score_fn: ScoreFn, x: Tensor, t) -> Tensor:
    return score_fn(x, full_t(float(t), x.shape[0], x.dtype)).to(x.dtype)


def _randn(x: Tensor, gen: torch.Generator) -> Tensor:
    return torch.randn(x.shape, generator=gen, dtype=x.dtype)


def _prior(process: NoiseProcess, config: SamplerConfig, gen: torch.Generator) -> Tensor:
    """x_1 ~ N(0, prior_std^2 I), shape (N, 2)."""
    return process.prior_std * torch.randn(config.n_particles, 2, generator=gen)


def _langevin_step(x: Tensor, s: Tensor, e: float, gen: torch.Generator) -> Tensor:
    """One unadjusted Langevin step x + e s + sqrt(2 e) z towards the density whose score is s."""
    return x + e * s + math.sqrt(2 * e) * _randn(x, gen)


def _frame_indices(n_steps: int, n_frames: int) -> np.ndarray:
    """min(n_frames, n_steps + 1) distinct state indices from 0 to n_steps, evenly spread."""
    f = min(n_frames, n_steps + 1)
    return np.round(np.linspace(0, n_steps, f)).astype(int)


def _sane(x: Tensor, limit: float) -> bool:
    """All finite and within limit: beyond it an explosion is under way, not yet overflowed."""
    return bool(torch.isfinite(x).all()) and float(x.abs().max()) <= limit


def _diverged(config: SamplerConfig, k: int, t: float) -> SamplerDivergedError:
    label = SAMPLERS[config.name].label
    return SamplerDivergedError(
        f"Sampling with “{label}” blew up: the particles ran off to infinity at step {k + 1} "
        f"of {config.n_steps} (t = {t:.3g}). Lower the step size or use more steps; with a "
        "learned score, a model that is poor at this noise level can also cause this."
    )


@torch.no_grad()
def _run(score_fn: ScoreFn, process: NoiseProcess, config: SamplerConfig, plan: _Plan):
    """Apply plan.update n_steps times, recording x_t and Tweedie's x0_hat at the frames."""
    n_steps = len(plan.t_score)
    frames = _frame_indices(n_steps, config.n_frames)
    xs = np.empty((len(frames), config.n_particles, 2), np.float32)
    x0_hats = np.empty_like(xs)
    x, f = plan.x, 0
    limit = _BLOWUP * max(1.0, process.prior_std)
    for k in range(n_steps + 1):
        cancel.check()  # work whose page has gone stops here, within one step
        s = _score(score_fn, x, plan.t_score[k]) if k < n_steps else None
        if k == frames[f]:
            t = plan.t_state[k]
            s_t = s if k < n_steps and plan.t_score[k] == t else _score(score_fn, x, t)
            xs[f] = x.numpy()
            x0_hats[f] = score_to_x0(s_t, x, process.alpha(t), process.sigma(t)).numpy()
            f += 1
        if k < n_steps:
            x = plan.update(x, k, s)
            if not _sane(x, limit):
                raise _diverged(config, k, float(plan.t_score[k]))
    times = plan.t_state[frames].numpy()
    return Trajectory(times=times, xs=xs, x0_hats=x0_hats, config=config)


def _grid(process: NoiseProcess, config: SamplerConfig):
    """The time grid t_0 = 1 > ... > t_S = t_min (float64) and the steps D_k = t_k - t_{k+1}."""
    ts = process.time_grid(config.n_steps, torch.float64)
    return ts, (ts[:-1] - ts[1:]).tolist()


def _on_grid(x: Tensor, ts: Tensor, update: Update) -> _Plan:
    return _Plan(x=x, t_state=ts, t_score=ts[:-1], update=update)


def _em_step(process, x, s, t, g2: float, dt: float, gen) -> Tensor:
    """Reverse-SDE Euler-Maruyama step from t to t - dt: x - [f - g^2 s] dt + g sqrt(dt) z."""
    drift = process.f(x, t) - g2 * s
    return x - drift * dt + math.sqrt(max(g2, 0.0) * dt) * _randn(x, gen)


# ----------------------------------------------------------------------------- the samplers
def _langevin(score_fn, process, config, gen) -> _Plan:
    """Plain Langevin on p_t at t = t_langevin from a uniform box: mode weights stay wrong."""
    t = config.t_langevin
    e = config.step_size * process.at(t).sigma ** 2
    half = 3 * process.prior_std
    x = (2 * torch.rand(config.n_particles, 2, generator=gen) - 1) * half
    ts = torch.full((config.n_steps + 1,), t, dtype=torch.float64)
    return _on_grid(x, ts, lambda x, k, s: _langevin_step(x, s, e, gen))


def _annealed_langevin(score_fn, process, config, gen) -> _Plan:
    """NCSN: n_corrector Langevin steps per level on the process' grid, e_i = step_size sigma_i^2.

    n_steps updates in all, so L = ceil(n_steps / n_inner) levels t_1 > ... > t_L = t_min; the
    state after an update is labelled with the level it was sampled at (the start with t = 1).
    """
    n_inner = max(1, config.n_corrector)
    n_levels = math.ceil(config.n_steps / n_inner)
    levels = process.time_grid(n_levels, torch.float64)[1:]
    t_score = levels[torch.arange(config.n_steps) // n_inner]
    e = (config.step_size * process.sigma(t_score) ** 2).tolist()
    t_state = torch.cat([torch.ones(1, dtype=torch.float64), t_score])
    update = lambda x, k, s: _langevin_step(x, s, e[k], gen)  # noqa: E731
    return _Plan(x=_prior(process, config, gen), t_state=t_state, t_score=t_score, update=update)


def _reverse_sde(score_fn, process, config, gen) -> _Plan:
    """Euler-Maruyama on dx = [f(x, t) - g(t)^2 s(x, t)] dt + g(t) dw_bar, t from 1 to t_min."""
    ts, dt = _grid(process, config)
    g2 = process.g2(ts).tolist()
    update = lambda x, k, s: _em_step(process, x, s, ts[k], g2[k], dt[k], gen)  # noqa: E731
    return _on_grid(_prior(process, config, gen), ts, update)


def _ode_drift(process, x, s, t, g2: float) -> Tensor:
    """Probability-flow ODE velocity dx/dt = f(x, t) - g(t)^2 s / 2."""
    return process.f(x, t) - 0.5 * g2 * s


def _pf_ode_euler(score_fn, process, config, gen) -> _Plan:
    """Euler steps of the probability-flow ODE (deterministic after the prior draw)."""
    ts, dt = _grid(process, config)
    g2 = process.g2(ts).tolist()
    update = lambda x, k, s: x - _ode_drift(process, x, s, ts[k], g2[k]) * dt[k]  # noqa: E731
    return _on_grid(_prior(process, config, gen), ts, update)


def _pf_ode_heun(score_fn, process, config, gen) -> _Plan:
    """Heun (explicit trapezoid) on the probability-flow ODE; the last step is plain Euler."""
    ts, dt = _grid(process, config)
    g2 = process.g2(ts).tolist()

    def update(x: Tensor, k: int, s: Tensor) -> Tensor:
        d = _ode_drift(process, x, s, ts[k], g2[k])
        x_euler = x - d * dt[k]
        if k == len(dt) - 1:
            return x_euler
        s_next = _score(score_fn, x_euler, ts[k + 1])
        d_next = _ode_drift(process, x_euler, s_next, ts[k + 1], g2[k + 1])
        return x - 0.5 * (d + d_next) * dt[k]

    return _on_grid(_prior(process, config, gen), ts, update)


def _posterior(process, t, s):
    """alpha_t, sigma_t, alpha_s, sigma_s and q(x_s | x_t, x_0)'s coefficients, for s < t.

    alpha_{t|s} = alpha_t / alpha_s, sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2;
    mean = c_x x_t + c_0 x_0, c_x = alpha_{t|s} sigma_s^2 / sigma_t^2,
    c_0 = alpha_s sigma_{t|s}^2 / sigma_t^2; variance sigma_{t|s}^2 sigma_s^2 / sigma_t^2.
    """
    (a_t, s_t, _), (a_s, s_s, _) = process.at(float(t)), process.at(float(s))
    a_ts = a_t / a_s
    var_ts = max(s_t**2 - a_ts**2 * s_s**2, 0.0)
    c_x, c_0 = a_ts * s_s**2 / s_t**2, a_s * var_ts / s_t**2
    return a_t, s_t, a_s, s_s, c_x, c_0, math.sqrt(var_ts * s_s**2 / s_t**2)


def _ddpm(score_fn, process, config, gen) -> _Plan:
    """Ancestral x_s ~ q(x_s | x_t, x0_hat): DDPM for VP, SMLD's ancestral sampler for VE."""
    ts, _ = _grid(process, config)
    post = [_posterior(process, ts[k], ts[k + 1]) for k in range(config.n_steps)]

    def update(x: Tensor, k: int, s: Tensor) -> Tensor:
        a_t, s_t, _, _, c_x, c_0, std = post[k]
        x0_hat = score_to_x0(s, x, a_t, s_t)
        return c_x * x + c_0 * x0_hat + std * _randn(x, gen)

    return _on_grid(_prior(process, config, gen), ts, update)


def _ddim(score_fn, process, config, gen) -> _Plan:
    """DDIM: x_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z, c = eta * posterior std."""
    ts, _ = _grid(process, config)
    post = [_posterior(process, ts[k], ts[k + 1]) for k in range(config.n_steps)]

    def update(x: Tensor, k: int, s: Tensor) -> Tensor:
        a_t, s_t, a_s, s_s, _, _, std = post[k]
        x0_hat = score_to_x0(s, x, a_t, s_t)
        eps_hat = x0_to_eps(x0_hat, x, a_t, s_t)
        c = config.eta * std
        x_s = a_s * x0_hat + math.sqrt(max(s_s**2 - c**2, 0.0)) * eps_hat
        return x_s + c * _randn(x, gen) if c > 0 else x_s

    return _on_grid(_prior(process, config, gen), ts, update)


def _pc(score_fn, process, config, gen) -> _Plan:
    """Predictor-corrector: a reverse-SDE step, then n_corrector Langevin steps at the new t.

    Corrector step e = 2 (snr mean||z|| / mean||s||)^2 (Song et al. 2021, norms per particle,
    averaged over the particles).
    """
    ts, dt = _grid(process, config)
    g2 = process.g2(ts).tolist()

    def update(x: Tensor, k: int, s: Tensor) -> Tensor:
        x = _em_step(process, x, s, ts[k], g2[k], dt[k], gen)
        for _ in range(config.n_corrector):
            s = _score(score_fn, x, ts[k + 1])
            z = _randn(x, gen)
            ratio = z.norm(dim=1).mean() / s.norm(dim=1).mean()
            e = 2 * float(config.snr * ratio) ** 2
            x = x + e * s + math.sqrt(2 * e) * z
        return x

    return _on_grid(_prior(process, config, gen), ts, update)


def _sampler(plan: Callable[..., _Plan]) -> Callable[..., Trajectory]:
    """A public sampler (score_fn, process, config) -> Trajectory from a plan builder."""

    def run(score_fn: ScoreFn, process: NoiseProcess, config: SamplerConfig) -> Trajectory:
        gen = torch.Generator().manual_seed(config.seed)
        return _run(score_fn, process, config, plan(score_fn, process, config, gen))

    run.__doc__ = plan.__doc__
    return run


class SamplerSpec(NamedTuple):
    """A registry entry: the display label, the sampler, and the knobs it reads from its config."""

    label: str
    run: Callable[..., Trajectory]
    knobs: tuple[Knob, ...] = ()


STEP_SIZE = Knob(
    "step_size", "Step size (× σ_t²)", 0.01, 2.0, 0.5, 0.01,
    "Langevin step e = step_size · σ_t²; stable below 2 with the exact score.",
    _positive, "The Langevin step size must be a number > 0.", "sampler_step",
)  # fmt: skip
N_CORRECTOR = Knob(
    "n_corrector", "Langevin steps per level", 1, 10, 1, 1,
    "Langevin corrector steps after each predictor step (per noise level for annealed Langevin).",
    lambda v: _is_int(v) and v >= 0, "Corrector steps must be >= 0.", "sampler_inner",
)  # fmt: skip
SNR = Knob(
    "snr", "Corrector snr", 0.01, 1.0, 0.16, 0.01,
    "The corrector's signal-to-noise ratio r: e = 2 (r mean‖z‖ / mean‖s‖)² (0.16 in Song et al.).",
    _positive, "The corrector snr must be a number > 0.", "sampler_snr",
)  # fmt: skip
T_LANGEVIN = Knob(
    "t_langevin", "Fixed t of the score", 0.01, 1.0, 0.01, 0.01,
    "Plain Langevin samples p_t at this one t, from a uniform box.",
    lambda v: _positive(v) and v <= 1, "t_langevin must be in (0, 1].", "sampler_t",
)  # fmt: skip
ETA = Knob(
    "eta", "η (0 = deterministic)", 0.0, 1.0, 0.0, 0.05,
    "DDIM's stochasticity: 0 = deterministic DDIM, 1 = DDPM's posterior noise.",
    lambda v: 0 <= v <= 1, "DDIM's eta must lie in [0, 1].", "sampler_eta",
)  # fmt: skip

SAMPLERS: dict[str, SamplerSpec] = {
    "reverse_sde": SamplerSpec("Reverse SDE (Euler–Maruyama)", _sampler(_reverse_sde)),
    "pf_ode_euler": SamplerSpec("Probability-flow ODE (Euler)", _sampler(_pf_ode_euler)),
    "pf_ode_heun": SamplerSpec("Probability-flow ODE (Heun)", _sampler(_pf_ode_heun)),
    "ddpm": SamplerSpec("DDPM (ancestral)", _sampler(_ddpm)),
    "ddim": SamplerSpec("DDIM", _sampler(_ddim), (ETA,)),
    "pc": SamplerSpec("Predictor–corrector", _sampler(_pc), (N_CORRECTOR, SNR)),
    "annealed_langevin": SamplerSpec(
        "Annealed Langevin (NCSN)", _sampler(_annealed_langevin), (STEP_SIZE, N_CORRECTOR)
    ),
    "langevin": SamplerSpec(
        "Langevin at one noise level", _sampler(_langevin), (STEP_SIZE, T_LANGEVIN)
    ),
}
_FIELDS = frozenset(f.name for f in dataclasses.fields(SamplerConfig)) - {"extra"}


def config_from_knobs(
    name: str, n_steps: int, n_particles: int, n_frames: int, seed: int, **knobs
) -> SamplerConfig:
    """A SamplerConfig from knob values by name: fields of its own directly, the rest in extra."""
    own = {k: v for k, v in knobs.items() if k in _FIELDS}
    extra = tuple(sorted((k, v) for k, v in knobs.items() if k not in _FIELDS))
    return SamplerConfig(name, n_steps, n_particles, n_frames, seed, **own, extra=extra)


def all_knobs() -> dict[str, Knob]:
    """Every registered knob by name (a knob shared by two samplers appears once)."""
    return {k.name: k for spec in SAMPLERS.values() for k in spec.knobs}


def sample(score_fn: ScoreFn, process: NoiseProcess, config: SamplerConfig) -> Trajectory:
    """Run the sampler `config.name` with score_fn on process; returns the recorded Trajectory.

    Raises SamplerDivergedError if the particles become NaN/inf or exceed 1e4 prior_std, and
    `cancel.Cancelled` at the next step once an enclosing `cancel.scope` says to stop.
    """
    return SAMPLERS[config.name].run(score_fn, process, config)


def sampler_labels() -> dict[str, str]:
    """Registry name -> display label (feeds the select boxes)."""
    return {k: v.label for k, v in SAMPLERS.items()}
