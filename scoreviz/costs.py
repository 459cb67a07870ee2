"""What a training run costs, estimated before it starts, so a server can refuse or queue it.

One Adam step of an MLP of `width` x `depth` on a batch of B points costs a fixed overhead (Python,
optimiser, sampling the batch) plus per point a little (embedding, loss) and the matmuls, about
width^2 x depth multiply-adds forward and twice that backward:

    seconds ≈ steps x (STEP_S + B x (POINT_S + MAC_S x width² x depth))

Calibrated on the 2-core target with one torch thread and other work on the machine (the
conditions of a lecture): 256x6 at batch 2,048 measured 139-166 ms/step (model: 106 ms; the issue
measured 20,000 steps in ~35 min = 105 ms/step), 64x6 at 2,048 22 ms (model 19), 64x3 at 1,024
8-10 ms (model 2.7: small steps suffer most from a busy machine; on an idle one the default
trains 2,000 steps in 2.8 s = 1.4 ms/step). The estimate is right within a factor of ~2 where it
matters (long runs); `training_runner` also stops a run that overruns its limit by wall clock.

What a student reads on a button must be right on the machine at hand, not on the 2-core box of
the constants: `PACE` (a `Pace`) calibrates the model by measured steps per second. Every
finished training records its measured seconds per step against the model's (`Pace.record`,
from its history); before any, a short probe training measures it once (`Pace.seconds`, ~0.1 s).
The estimate is then the model's times the median ratio of the last trainings, so the shape of
the cost (batch, width, depth) comes from the model and its scale from this machine.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import threading
from collections import deque
from collections.abc import Callable

from scoreviz.couplings import OT_BLOCK
from scoreviz.errors import ConfigError
from scoreviz.training import train

STEP_S = 5e-4  # fixed cost of one step (s)
POINT_S = 5e-7  # per point of the batch, besides the matmuls (s)
MAC_S = 1.3e-10  # per point and per width² x depth (s)
OT_BLOCK_S = 1e-3  # one minibatch-OT assignment of couplings.OT_BLOCK pairs (s, measured)


def step_seconds(config) -> float:
    """Estimated seconds of one training step of `config` (a training.TrainConfig)."""
    m = config.model
    ot = OT_BLOCK_S * math.ceil(config.batch_size / OT_BLOCK) if config.coupling == "ot" else 0.0
    return STEP_S + config.batch_size * (POINT_S + MAC_S * m.width**2 * m.depth) + ot


def train_seconds(config) -> float:
    """Estimated seconds to train `config` for all its steps."""
    return config.steps * step_seconds(config)


def minutes(seconds: float) -> str:
    """A duration as students read it: '40 s', '3 min', '1 h 5 min'."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    mins = round(seconds / 60)
    return f"{mins} min" if mins < 60 else f"{mins // 60} h {mins % 60} min"


def check_budget(config, limit_s: float) -> float:
    """The estimated training seconds of `config`; ConfigError if they exceed `limit_s`.

    The message names what to change and the most steps that fit at these settings.
    """
    estimate = train_seconds(config)
    if estimate <= limit_s:
        return estimate
    m = config.model
    fit = max(0, math.floor(limit_s / step_seconds(config) / 50) * 50)
    raise ConfigError(
        f"These settings would train for about {minutes(estimate)} ({config.steps:,} steps × "
        f"batch {config.batch_size:,} on a {m.width}×{m.depth} network); one training may take "
        f"at most {minutes(limit_s)} on this server. Use fewer steps (at most {fit:,} at these "
        "settings), a smaller batch or a smaller network."
    )


# --------------------------------------------------------------------------- measured pace
PROBE_STEPS = 60  # steps of the probe training (the first WARMUP are not timed)
WARMUP = 10  # first steps of a run left out of its pace: allocation and caches warming up


def measured_step_seconds(history) -> float | None:
    """Seconds per step of a finished run from its history (columns step, elapsed), the first
    WARMUP steps left out; None for a run too short to tell (< 2 WARMUP steps)."""
    elapsed = history["elapsed"].to_numpy(dtype=float)
    if len(elapsed) < 2 * WARMUP:
        return None
    return float(elapsed[-1] - elapsed[WARMUP - 1]) / (len(elapsed) - WARMUP)


def _probe(config) -> float | None:
    """Seconds per step of a short training of `config` (PROBE_STEPS steps) on this machine."""

    return measured_step_seconds(train(dataclasses.replace(config, steps=PROBE_STEPS)).history)


class Pace:
    """This machine's training pace: measured seconds per step over the model's (`step_seconds`),
    the median of the last `window` runs. Thread-safe (every session records into one).

    probe(config) -> measured seconds per step (None: unknown) runs when an estimate is asked
    before any run was recorded: a short training (`_probe`) by default."""

    def __init__(self, window: int = 8, probe: Callable | None = _probe) -> None:
        self._ratios: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()
        self._probe = probe

    def record(self, config, seconds_per_step: float | None) -> None:
        """A finished run of `config` took `seconds_per_step` (ignored if None or not > 0)."""
        if seconds_per_step is None or not seconds_per_step > 0:
            return
        with self._lock:
            self._ratios.append(seconds_per_step / step_seconds(config))

    def record_history(self, config, history) -> None:
        """`record` with the pace measured from a run's history (`measured_step_seconds`)."""
        self.record(config, measured_step_seconds(history))

    def factor(self) -> float | None:
        """Measured over modelled seconds per step (median of the last runs), None before any."""
        with self._lock:
            return statistics.median(self._ratios) if self._ratios else None

    def seconds(self, config) -> float:
        """Estimated seconds to train `config` on this machine: the model's `train_seconds`
        times the measured factor (probing once if nothing was measured yet; the model alone
        if the probe fails)."""
        if self.factor() is None and self._probe is not None:
            probe, self._probe = self._probe, None  # once per process, even if it fails
            try:
                self.record(config, probe(config))
            except Exception:  # noqa: BLE001 - an estimate must never break the page
                pass
        return train_seconds(config) * (self.factor() or 1.0)


PACE = Pace()  # the server's: one machine, every session's runs calibrate it


# ----------------------------------------------------------------------------- sampling
# One score evaluation on N particles: a fixed overhead, plus per particle the sampler's own
# arithmetic and either K Gaussian components (the exact mixture score) or one forward pass of the
# network (a third of a training step's matmuls). Like the training model above, calibrated on
# the 2-core target busy with other work (load 9-11, a lecture's conditions), ~1,100 evaluations
# x 2,000 particles: eight Gaussians (K = 8) 3.5-5.1 s, the word (K = 376) 16-28 s, whichever
# sampler; the row (predictor-corrector, 500 steps x 10 correctors x 2,000 particles on
# the word) ~90 s under its load, the model 92 s. On a quieter box runs take 2.5-4x less (that
# row: 36-44 s at load 3-4; benchmarks/fairshare.py --only costs): the estimate is a busy
# server's, which is when the budget matters.
EVAL_S = 1e-4  # fixed cost of one score evaluation (s)
PARTICLE_S = 1.5e-6  # per particle and evaluation, whatever the score (s)
COMPONENT_S = 1.8e-8  # per particle, evaluation and mixture component (s)
FRAME_EVALS = 60  # extra evaluations for the recorded frames' x0_hat (at most one per frame)


def score_evaluations(config) -> int:
    """Score evaluations of a sampler run (a samplers.SamplerConfig): one per step, plus the
    predictor-corrector's correctors or Heun's second evaluation, plus the frames'."""
    per_step = {"pc": 1 + config.knob("n_corrector"), "pf_ode_heun": 2}.get(config.name, 1)
    return config.n_steps * per_step + min(FRAME_EVALS, config.n_frames)


def sampling_seconds(config, components: int | None = None, model=None) -> float:
    """Estimated seconds of one sampler run of `config` with the exact score of a mixture of
    `components` Gaussians, or with a network of ModelConfig `model`."""
    if model is not None:
        per_point = PARTICLE_S + MAC_S / 3 * model.width**2 * model.depth
    else:
        per_point = PARTICLE_S + COMPONENT_S * max(1, components or 1)
    return score_evaluations(config) * (EVAL_S + config.n_particles * per_point)


def check_sampling_budget(config, seconds: float, limit_s: float, what: str = "A row") -> float:
    """`seconds` (a `sampling_seconds` estimate) if within `limit_s`; else ConfigError naming
    what to change and the most steps that fit at these settings."""
    if seconds <= limit_s:
        return seconds
    evals = score_evaluations(config)
    fit = max(1, math.floor(config.n_steps * limit_s / seconds / 10) * 10)
    raise ConfigError(
        f"{what} at these sampler settings would keep the server busy for about "
        f"{minutes(seconds)} ({evals:,} score evaluations × {config.n_particles:,} particles); "
        f"one row may take at most {minutes(limit_s)} on this server, so that everyone's page "
        f"stays quick. Use fewer steps (at most {fit:,} at these settings), fewer corrector "
        "steps or fewer particles."
    )
