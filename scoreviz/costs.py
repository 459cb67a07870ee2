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
"""

from __future__ import annotations

import math

from scoreviz.errors import ConfigError

STEP_S = 5e-4  # fixed cost of one step (s)
POINT_S = 5e-7  # per point of the batch, besides the matmuls (s)
MAC_S = 1.3e-10  # per point and per width² x depth (s)


def step_seconds(config) -> float:
    """Estimated seconds of one training step of `config` (a training.TrainConfig)."""
    m = config.model
    return STEP_S + config.batch_size * (POINT_S + MAC_S * m.width**2 * m.depth)


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
