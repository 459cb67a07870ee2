"""Train a score model (or a classical DAE) by denoising score matching, in seconds on a CPU.

A plain loop, never hidden behind a cache: every step draws x0 (fresh from the distribution, or
from a fixed training set of n_train points drawn once), t by `sample_times` (a DAE uses its own
t), eps ~ N(0, I), and takes one Adam step on the mean of `losses.output_loss` (the DSM loss in
its benign form). Times are uniform in log sigma_t by default ("log_sigma"; sub-VP keeps "mixed",
`DEFAULT_TIME_SAMPLING`): uniform t gives sigma_t < 0.1 (where thin shapes live: widths ~0.06 at
unit spread) only ~3 % of the samples on vp_linear, and the letters of a word never form. Where
the learned score still went wrong was in the tails of thin shapes at small noise (issue 21's
last strays on the spirals: at sigma_t 0.03-0.08 the learned score 4 arm widths off an arm had
60-70 % of the exact one's length, the direction right). Uniform log sigma gives sigma_t < 0.1
~49 % of the samples, "mixed" (half uniform in t) ~26 %: stray spiral samples fell from 1.0 % to
0.7 % (4 training x 3 sampler seeds); skewing log sigma further towards 0 (u^1.5, u^2) starved
the middle and did worse. The learning rate follows a short warm-up and a cosine decay to 0; the
result uses the EMA weights when `ema` is set.

Class-conditional (issue 24): `conditional(config, n_classes)` gives the model a class embedding
and a null class, and each step draws x0 with its class, replacing the class by null with
probability `label_dropout`, so one network learns s(x_t, t, c) and s(x_t, t) (classifier-free
guidance's two scores). It trains on fresh samples of a built-in's classes.

Train longer: `train(continuation(prev, steps=extra), init=prev)` continues from prev's weights
and Adam state (a warm restart: the same warm-up and cosine, from `lr`), and its history runs on
from prev's; the continuation's config names prev by id and by content (`parent`,
`parent_digest`: `scoreviz.identity`). All randomness comes from one torch.Generator
seeded by `config.seed`, so the same config gives the same loss history.

    result = train(TrainConfig(), progress=lambda p: stop_button_pressed)
    result.score_fn()            # a ScoreFn of the trained model
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import torch

from scoreviz.couplings import COUPLINGS, pair
from scoreviz.data_io import is_custom_key, is_shared_key
from scoreviz.distributions import DISTRIBUTIONS, get_distribution
from scoreviz.errors import ConfigError, TrainingDivergedError, unknown_key
from scoreviz.identity import DIGEST, DIGEST_HEX, content_digest
from scoreviz.losses import DEFAULT_WEIGHTING, WEIGHTINGS, output_loss
from scoreviz.mixture import GaussianMixture
from scoreviz.models import LEGACY_FIELDS as MODEL_LEGACY_FIELDS
from scoreviz.models import ModelConfig, TrainedModel, build_model
from scoreviz.processes import PROCESSES, NoiseProcess, get_process, stratified_u
from scoreviz.score import ScoreFn

# Settings added later, with the behaviour the code had before they existed.
LEGACY_FIELDS = {
    "time_sampling": "uniform",
    "parent": None,
    "parent_digest": None,
    "coupling": "independent",
    "tail_stretch": False,
    "label_dropout": 0.0,
}
# `tail_stretch` (issue 21's last strays): where sigma_t < TAIL_BELOW, a noise draw eps of radius
# r > TAIL_R0 gets radius TAIL_R0 + TAIL_K (r - TAIL_R0), with the ordinary DSM target (x_t -
# alpha x0) / sigma_t. Plain DSM visits 4-5 noise widths off the data in ~1 of 10^4 samples, and
# there, at sigma_t < 0.08, the learned score was only ~70 % as long as the exact one: the reverse
# SDE's last steps (each closes 50-70 % of the gap) then left spiral samples 3.5-4 arm widths off.
# The stretch shows the network that region; near the data (r <= 1.5, 68 % of the draws) nothing
# changes, beyond it the score is learned too strong (the data's posterior under a wider noise),
# which pulls samples in: spirals 0.09 -> -0.05 nats lost, excess strays 0.72 % -> 0.14 %
# (training seeds 0-2 x sampler seeds 0-2), Min-SNR-5 spirals 0.27 nats; but every built-in's
# samples become tighter than the data's (nats lost -0.07 to -0.20, eight Gaussians 0.02 ->
# -0.20: modes ~10 % too narrow), which nats lost (one-sided in the verdict) hides. So it is an
# option, off by default, until an unbiased version is found.
TAIL_R0, TAIL_K, TAIL_BELOW = 1.5, 2.0, 0.2
# Label dropout of a conditional model: the share of steps' samples that train the null class
# (the unconditional score). 0.1-0.2 is the usual range (Ho & Salimans 2022). At 0.15 and the
# plain default's 2,000 steps the unconditional branch lost 0.31-0.32 nats on the spirals (2
# training seeds; the classes 0.05-0.12, the plain default model 0.19): it sees 15 % of the
# samples. The default conditional model therefore drops 20 % and trains 3,000 steps.
LABEL_DROPOUT = 0.2
CONDITIONAL_STEPS = 3000
TIME_SAMPLINGS = {  # the first is the Train form's default
    "log_sigma": "uniform in log σ_t",
    "mixed": "½ uniform in t, ½ uniform in log σ_t",
    "uniform": "uniform in t",
}
# The time sampling a config gets when it names none (TrainConfig.time_sampling=None): log sigma,
# except where log sigma_t spans so many e-folds that uniform log sigma starves the high noise.
# sub-VP's sigma runs from 1e-4 (9 e-folds, VP's 4.6): uniform log sigma gives sigma > 0.5 only
# 8 % of the samples (mixed: 41 %), and a short run (300 steps, two moons) cut the score error
# to 0.62-0.72 of the untrained model's instead of mixed's 0.35-0.40.
DEFAULT_TIME_SAMPLING = {"sub_vp": "mixed"}
WARMUP_FRACTION = 0.02  # of the steps: linear warm-up, then cosine decay to 0
# A loss this many times above the first step's (at least 1) has exploded: the weights are ruined
# even if it stays finite (lr = 1e3 reaches 1e27 and stays there).
EXPLODE_FACTOR = 1e4
# Largest fixed training set. Training costs the same for any n_train, but the Sampling page's
# memorising optimum (the exact score of the N points, ~12 s per 1,000 points at 1,000 particles
# x 200 steps) grows with N, and memorisation is seen with tens to a few hundred points.
MAX_N_TRAIN = 5_000


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model (frozen, hashable; hashed into model_id)."""

    distribution: str = "eight_gaussians"  # registry key, or "upload:<sha>", "drawn:<sha>",
    # "typed:<sha>" (data_io.is_custom_key; then pass dist=)
    process: str = "vp_linear"
    model: ModelConfig = field(default_factory=ModelConfig)
    weighting: str | None = None  # None: the output's natural loss (DEFAULT_WEIGHTING; sigma2)
    time_sampling: str | None = None  # None: the process's default (DEFAULT_TIME_SAMPLING)
    tail_stretch: bool = False  # widen the low-noise draws' tails (TAIL_R0, TAIL_K, TAIL_BELOW)
    # Defaults chosen on every built-in (nats lost vs the exact score, reverse SDE; 1 thread):
    # 2,000 steps of the 64x3 MLP with input features at batch 1024, lr 1e-2 lose 0.01-0.19
    # nats (two_spirals 0.19, the rest <= 0.07); 4,000 steps 0.01-0.08 at twice the time (21.7
    # vs 10.9 s on the 2-core box of 2026-11-29, where the previous default took 9.4 s for its
    # 2,000 steps); 1,000 steps: eight Gaussians 0.10, two_spirals 0.32. Batch 512 and a
    # residual LayerNorm body measured worse per second. "Train longer" sharpens further.
    steps: int = 2000
    batch_size: int = 1024
    lr: float = 1e-2
    n_train: int | None = None  # None: fresh samples every step; N: a fixed training set
    ema: float | None = None  # EMA decay of the weights the result uses, or None
    seed: int = 0
    parent: str | None = None  # model_id this training continues (pass its result as init=)
    # the continued model's content (`identity.content_digest`): the child's id binds the
    # parent's weights, so a doctored parent never names a classmate's continuation
    parent_digest: str | None = None
    coupling: str = "independent"  # how x_0 and eps are paired (`scoreviz.couplings`)
    # a conditional model's share of samples whose class is replaced by null (0: unconditional)
    label_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS and not is_custom_key(self.distribution):
            raise unknown_key("distribution", self.distribution, DISTRIBUTIONS)
        if self.process not in PROCESSES:
            raise unknown_key("noise process", self.process, PROCESSES)
        if self.weighting is None and isinstance(self.model, ModelConfig):
            default = DEFAULT_WEIGHTING.get(self.model.output, "sigma2")
            object.__setattr__(self, "weighting", default)
        if self.coupling not in COUPLINGS:
            raise unknown_key("coupling", self.coupling, COUPLINGS)
        if self.weighting not in WEIGHTINGS:
            raise unknown_key("loss weighting", self.weighting, WEIGHTINGS)
        if self.time_sampling is None:
            default = DEFAULT_TIME_SAMPLING.get(self.process, "log_sigma")
            object.__setattr__(self, "time_sampling", default)
        if self.time_sampling not in TIME_SAMPLINGS:
            raise unknown_key("time sampling", self.time_sampling, TIME_SAMPLINGS)
        if not isinstance(self.tail_stretch, bool):
            raise ConfigError(f"tail_stretch must be True or False, got {self.tail_stretch!r}.")
        if not isinstance(self.model, ModelConfig):
            raise ConfigError("TrainConfig.model must be a ModelConfig.")
        for name in ("steps", "batch_size", "seed", "n_train"):
            value = getattr(self, name)
            if name == "n_train" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ConfigError(f"{name} must be a whole number, got {value!r}.")
            object.__setattr__(self, name, int(value))  # numpy ints hash/serialise as ints
        if not 1 <= self.steps <= 1_000_000:
            raise ConfigError(f"The number of steps must lie in [1, 1000000], got {self.steps}.")
        if not 1 <= self.batch_size <= 65_536:
            raise ConfigError(f"The batch size must lie in [1, 65536], got {self.batch_size}.")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"The learning rate must be a number > 0, got {self.lr}.")
        if self.n_train is not None and not 1 <= self.n_train <= MAX_N_TRAIN:
            raise ConfigError(
                f"The training set size must lie in [1, {MAX_N_TRAIN:,}], got {self.n_train:,}. "
                "Beyond that a network no longer memorises its points: use infinite data (0)."
            )
        if self.parent_digest is not None and not DIGEST.fullmatch(str(self.parent_digest)):
            raise ConfigError(f"parent_digest must be {DIGEST_HEX} hex digits or None.")
        if self.ema is not None and not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"The EMA decay must lie in [0, 1), got {self.ema}.")
        self._check_conditional()
        # 1 and 1.0 are the same setting: store floats so that they hash to the same model id
        object.__setattr__(self, "lr", float(self.lr))
        if self.ema is not None:
            object.__setattr__(self, "ema", float(self.ema))

    def _check_conditional(self) -> None:
        p = self.label_dropout
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
            raise ConfigError(f"The label dropout must lie in [0, 1), got {p!r}.")
        object.__setattr__(self, "label_dropout", float(p))
        if self.conditional and (p == 0.0 or self.n_train is not None):
            raise ConfigError(
                "A conditional model needs a label dropout above 0 (its unconditional branch "
                "learns from the dropped labels) and fresh samples (no fixed training set)."
            )
        if not self.conditional and p != 0.0:
            raise ConfigError("Label dropout is for conditional models (model.n_classes > 0).")

    @property
    def conditional(self) -> bool:
        """Whether the model is class-conditional (a class embedding and a null class)."""
        return self.model.n_classes > 0

    def display_name(self, data_label: str | None = None, suffix: str | None = None) -> str:
        """How the app names a model of this config: "score (eps) · <data> · vp_linear · N=20
        · 3fa2". data_label defaults to the distribution key, suffix to the id's first 4 digits."""
        m = self.model
        what = f"DAE σ={m.dae_sigma:g}" if m.kind == "dae" else f"score ({m.parameterization})"
        what += ", OT pairing" if self.coupling == "ot" else ""
        data = "" if self.n_train is None else f" · N={self.n_train}"
        what += " conditional" if self.conditional else ""
        tail = self.model_id[:4] if suffix is None else suffix
        return f"{what} · {data_label or self.distribution} · {self.process}{data} · {tail}"

    @property
    def model_id(self) -> str:
        """Stable 12-hex-digit hash of every setting (seed included): sha1 of sorted JSON.

        Settings added after the first release are hashed only when they differ from what the
        code did before them (`LEGACY_FIELDS`), so a model file's id stays valid.
        """
        d = dataclasses.asdict(self)
        for fields, legacy in ((d, LEGACY_FIELDS), (d["model"], MODEL_LEGACY_FIELDS)):
            for key, old in legacy.items():
                if fields[key] == old:
                    del fields[key]
        text = json.dumps(d, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A TrainConfig from `dataclasses.asdict` output (a model file's); settings the file
        predates take the values the code had before them, so it means what it meant."""
        return cls(**{**LEGACY_FIELDS, **d, "model": ModelConfig.from_dict(d["model"])})


def conditional(config: TrainConfig, n_classes: int, dropout: float = LABEL_DROPOUT) -> TrainConfig:
    """`config` made class-conditional on `n_classes` classes, with label dropout `dropout`."""
    model = dataclasses.replace(config.model, n_classes=int(n_classes))
    return dataclasses.replace(config, model=model, label_dropout=dropout)


def n_classes_of(distribution: str) -> int:
    """How many classes the data `distribution` has (an upload or drawing: 1, no labels)."""
    return get_distribution(distribution).n_classes if distribution in DISTRIBUTIONS else 1


def default_conditional(distribution: str, process: str, seed: int = 0) -> TrainConfig:
    """The default model's settings, class-conditional on the built-in's classes, trained
    CONDITIONAL_STEPS steps."""
    base = TrainConfig(distribution=distribution, process=process, seed=seed,
                       steps=CONDITIONAL_STEPS)  # fmt: skip
    return conditional(base, n_classes_of(distribution))


def model_name(config: TrainConfig) -> str:
    """The name a model of `config` gets wherever it comes from (the "Train the default model"
    buttons, the Train page's default, a scene, the DAE page, a link reopened after F5), so the
    same model keeps one name across reloads: "default · <data label> · <process> · seed N"
    for the default settings, else `display_name` with the data's registry label. An upload
    keeps its key (its models never travel in links); drawn and typed data read "drawn 7507",
    their source and the first digits of their points' hash."""
    label = {k: v[0] for k, v in DISTRIBUTIONS.items()}.get(config.distribution)
    if is_shared_key(config.distribution):
        source, digest = config.distribution.split(":")
        label = f"{source} {digest[:4]}"
    default = TrainConfig(distribution=config.distribution, process=config.process,
                          seed=config.seed)  # fmt: skip
    if config == default:
        return f"default · {label or config.distribution} · {config.process} · seed {config.seed}"
    if config.conditional and config == default_conditional(*key_of(config)):
        return (f"default conditional · {label or config.distribution} · {config.process} · "
                f"seed {config.seed}")  # fmt: skip
    return config.display_name(label)


@dataclass(frozen=True)
class TrainProgress:
    step: int
    steps: int
    loss: float  # mean training loss since the previous report
    elapsed: float  # seconds


@dataclass(eq=False)  # compared by identity: a DataFrame has no single truth value
class TrainResult:
    config: TrainConfig
    model: TrainedModel
    history: pd.DataFrame  # columns step, loss, elapsed (one row per step)
    model_id: str
    elapsed: float
    stopped: bool  # stopped early by the progress callback
    train_points: torch.Tensor | None  # (n_train, 2) the fixed training set, or None
    optimizer: dict | None = None  # Adam's state at the end (`Adam.state`), to train longer
    quality: object | None = None  # scoreviz.quality.Quality, once assessed (None: not yet)
    from_file: bool = False  # its weights came from an imported file (or a continuation of one)

    def score_fn(self) -> ScoreFn:
        return self.model.score


def resolve_distribution(config: TrainConfig, dist: GaussianMixture | None) -> GaussianMixture:
    """The training distribution: `dist` if given, else the built-in one named by the config."""
    if dist is not None:
        return dist
    if is_custom_key(config.distribution):
        raise ConfigError("This model was configured for your own data: pass the data as dist=.")
    return get_distribution(config.distribution)


def lr_factor(step: int, steps: int) -> float:
    """Learning-rate multiplier at 1-based `step`: linear warm-up, then cosine decay to 0."""
    warm = max(1, round(WARMUP_FRACTION * steps))
    if step <= warm:
        return step / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


@functools.lru_cache(maxsize=32)
def _log_sigma_table(process: NoiseProcess, n: int = 2048) -> torch.Tensor:
    """t at n + 1 evenly spaced values of log sigma_t from sigma(t_min) to sigma(1), float64."""
    ends = process.sigma(torch.tensor([process.t_min, 1.0], dtype=torch.float64)).log()
    log_s = torch.linspace(float(ends[0]), float(ends[1]), n + 1, dtype=torch.float64)
    return process.t_from_sigma(log_s.exp()).clamp(process.t_min, 1.0)


def _t_uniform_log_sigma(u: torch.Tensor, process: NoiseProcess) -> torch.Tensor:
    """The t whose log sigma_t lies a fraction u (in [0, 1]) of the way up: table lookup."""
    table = _log_sigma_table(process)
    x = u * (table.shape[0] - 1)
    i = x.floor().clamp(max=table.shape[0] - 2).long()
    return torch.lerp(table[i], table[i + 1], x - i)


def sample_times(
    n: int, process: NoiseProcess, gen: torch.Generator, scheme: str = "log_sigma"
) -> torch.Tensor:
    """n training times on [t_min, 1], (n,) float64, stratified.

    u_i = (i + U_i) / n. "uniform": t = t_min + (1 - t_min) u. "log_sigma": the t of log sigma_t
    a fraction u of the way from log sigma(t_min) to log sigma(1). "mixed": even i take the
    uniform t, odd i the log sigma one, so each half is itself stratified. Its density is
    `time_density`.
    """
    if scheme not in TIME_SAMPLINGS:
        raise unknown_key("time sampling", scheme, TIME_SAMPLINGS)
    u = stratified_u(n, gen)
    if scheme == "log_sigma":
        return _t_uniform_log_sigma(u, process)
    t = process.t_uniform(u)
    if scheme == "mixed":
        t = torch.where(torch.arange(n) % 2 == 1, _t_uniform_log_sigma(u, process), t)
    return t


def time_density(process: NoiseProcess, t, scheme: str = "log_sigma") -> torch.Tensor:
    """The density q(t) of `sample_times` on [t_min, 1], float64 like t.

    uniform: 1 / (1 - t_min). log_sigma: d log sigma_t / dt over the log sigma range, where
    d log sigma / dt = (d sigma^2 / dt) / (2 sigma^2). mixed: half of each. Integrates to 1.
    """
    t = torch.as_tensor(t, dtype=torch.float64)
    uniform = torch.full_like(t, 1.0 / (1.0 - process.t_min))
    if scheme == "uniform":
        return uniform
    if scheme not in TIME_SAMPLINGS:
        raise unknown_key("time sampling", scheme, TIME_SAMPLINGS)
    ends = process.sigma(torch.tensor([process.t_min, 1.0], dtype=torch.float64)).log()
    log_sigma = process._dsigma2(t) / (2 * process._sigma2(t)) / float(ends[1] - ends[0])
    return log_sigma if scheme == "log_sigma" else 0.5 * uniform + 0.5 * log_sigma


class Adam:
    """Adam (Kingma & Ba 2015), the same update as torch.optim.Adam, with torch._foreach ops.

    Why not torch.optim.Adam: constructing it imports torch._dynamo, which costs 1.5-3 s on the
    first training of a process, as long as the whole default training.
    """

    def __init__(self, params, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.betas, self.eps, self.k = betas, eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def state(self) -> dict:
        """A copy of the moments and the step count (what `load` restores)."""
        return {"k": self.k, "m": [m.clone() for m in self.m], "v": [v.clone() for v in self.v]}

    def load(self, state: dict) -> None:
        self.k = int(state["k"])
        self.m = [m.clone() for m in state["m"]]
        self.v = [v.clone() for v in state["v"]]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: float) -> None:
        b1, b2 = self.betas
        self.k += 1
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        torch._foreach_lerp_(self.m, grads, 1 - b1)  # m = b1 m + (1 - b1) g
        torch._foreach_mul_(self.v, b2)
        torch._foreach_addcmul_(self.v, grads, grads, 1 - b2)  # v = b2 v + (1 - b2) g^2
        denom = torch._foreach_sqrt(self.v)
        torch._foreach_div_(denom, math.sqrt(1 - b2**self.k))
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.m, denom, -lr / (1 - b1**self.k))


class _Ema:
    """Exponential moving average of a network's weights (the copy the result uses)."""

    def __init__(self, net: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.net = copy.deepcopy(net)
        self._src = list(net.parameters())
        self._dst = list(self.net.parameters())

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self._dst, self._src, 1.0 - self.decay)


def _diverged(config: TrainConfig, step: int, loss: float) -> TrainingDivergedError:
    hint = f"Lower the learning rate (now {config.lr:g}), e.g. to {config.lr / 10:g}"
    if config.weighting in ("one", "x0") or config.model.parameterization == "x0":
        hint += ", or use the λ = σ² weighting with the ε output, which is the most stable"
    what = f"became {loss}" if not math.isfinite(loss) else f"exploded to {loss:.3g}"
    return TrainingDivergedError(
        f"Training diverged at step {step}: the loss {what}. {hint}, and train again."
    )


def key_of(config: TrainConfig) -> tuple[str, str, int]:
    """(distribution, process, seed) of a config."""
    return config.distribution, config.process, config.seed


def _batch(dist, points, n, gen) -> torch.Tensor:
    if points is None:
        return dist.sample(n, generator=gen)
    return points[torch.randint(points.shape[0], (n,), generator=gen)]


def stretch_tail(model: TrainedModel, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """eps with radii r > TAIL_R0 made TAIL_R0 + TAIL_K (r - TAIL_R0) where sigma_t < TAIL_BELOW
    (the model's sigma_t: a DAE's own), the rest unchanged; (N, 2) like eps."""
    _, _, sigma = model.schedule(t, eps.shape[0])
    r = eps.norm(dim=1, keepdim=True)
    grow = (TAIL_R0 + TAIL_K * (r - TAIL_R0)) / r.clamp(min=TAIL_R0)
    pick = (r > TAIL_R0) & (sigma < TAIL_BELOW)[:, None]
    return torch.where(pick, eps * grow, eps)


def _labelled_batch(dist, n, gen, n_classes: int, dropout: float):
    """x0 (n, 2) with classes (n,), each replaced by the null class n_classes w.p. dropout."""
    x0, labels = dist.sample_labelled(n, generator=gen)
    drop = torch.rand(n, generator=gen) < dropout
    return x0, torch.where(drop, torch.full_like(labels, n_classes), labels)


def _check_classes(config: TrainConfig, dist: GaussianMixture) -> None:
    if config.conditional and dist.n_classes != config.model.n_classes:
        raise ConfigError(
            f"This data has {dist.n_classes} class{'es' if dist.n_classes != 1 else ''} "
            f"(uploads and drawings have no labels: one), but the conditional model was set "
            f"up for {config.model.n_classes}."
        )


def _step(
    model: TrainedModel, opt: Adam, lr: float, ema: _Ema | None, batch, weighting, labels=None
) -> float:
    """One Adam step on the mean DSM loss of (x0, t, eps); returns the loss before the step."""
    more = () if labels is None else (labels,)  # a plain model's call as it was
    loss = output_loss(model, *batch, weighting, *more).mean()
    opt.zero_grad()
    loss.backward()
    opt.step(lr)
    if ema is not None:
        ema.update()
    return loss.item()


# A warm restart starts from this fraction of the original peak learning rate: at the full rate the
# first steps undo part of what was learned (the score error rose before it fell), at a third the
# error falls from the first report on.
CONTINUE_LR_FACTOR = 0.3


def continuation(result: TrainResult, steps: int | None = None) -> TrainConfig:
    """The config that trains `result` for `steps` more steps (default: as many as its last run).

    Pass it to `train` with init=result. Its model_id differs from the parent's: it names the
    parent by id and by content (`identity.content_digest`), so two parents with the same
    settings but other weights (a doctored model file) have different continuations.
    Its peak learning rate is CONTINUE_LR_FACTOR x the last run's, so each further restart of
    the same model starts lower again (0.3x, 0.09x, ... of the first run's).
    """
    cfg = result.config
    return dataclasses.replace(
        cfg,
        parent=result.model_id,
        parent_digest=content_digest(result),
        steps=int(steps if steps is not None else cfg.steps),
        lr=cfg.lr * CONTINUE_LR_FACTOR,
    )


def _check_init(config: TrainConfig, init: TrainResult) -> None:
    if config.parent != init.model_id:
        raise ConfigError(f"To continue model {init.model_id}, set parent={init.model_id!r}.")
    if config.parent_digest != content_digest(init):
        raise ConfigError(
            f"To continue model {init.model_id}, set parent_digest to its content digest "
            "(use training.continuation)."
        )
    same = ("distribution", "process", "model", "n_train", "coupling")
    if any(getattr(config, k) != getattr(init.config, k) for k in same):
        raise ConfigError(
            "A model can only be trained longer on its own data, process, architecture and "
            "training set: only steps, batch size, learning rate, weighting and seed may change."
        )


def _start(config: TrainConfig, dist: GaussianMixture, init: TrainResult | None):
    """(model, optimiser, generator, training points, history so far) for a run of `config`."""
    process = get_process(config.process)
    if init is None:
        model = build_model(config.model, process, seed=config.seed)
        gen = torch.Generator().manual_seed(config.seed)
        points = dist.sample(config.n_train, generator=gen) if config.n_train else None
        return model, Adam(model.net.parameters()), gen, points, None
    _check_init(config, init)
    model = TrainedModel(config.model, process, copy.deepcopy(init.model.net))
    model.net.train()
    opt = Adam(model.net.parameters())
    if init.optimizer is not None:
        opt.load(init.optimizer)
    # a stream of its own: continuing must not replay the parent's batches
    gen = torch.Generator().manual_seed(config.seed + 7919 * len(init.history))
    return model, opt, gen, init.train_points, init.history


def _history(losses, times, before: pd.DataFrame | None) -> pd.DataFrame:
    """One row per step; a continued run's steps and elapsed times run on from `before`'s."""
    step0 = int(before["step"].iloc[-1]) if before is not None and len(before) else 0
    t0 = float(before["elapsed"].iloc[-1]) if before is not None and len(before) else 0.0
    new = pd.DataFrame(
        {
            "step": range(step0 + 1, step0 + len(losses) + 1),
            "loss": losses,
            "elapsed": [t0 + t for t in times],
        }
    )
    return new if before is None else pd.concat([before, new], ignore_index=True)


def train(
    config: TrainConfig,
    progress: Callable[[TrainProgress], bool | None] | None = None,
    every: int = 25,
    dist: GaussianMixture | None = None,
    init: TrainResult | None = None,
) -> TrainResult:
    """Train `config`; call progress(TrainProgress) every `every` steps (True stops early).

    init: a finished result to train longer (see `continuation`): its weights, Adam state and
    training set are the start, and its history is continued.
    Raises TrainingDivergedError as soon as the loss is NaN, infinite or EXPLODE_FACTOR times
    above its first value.
    """
    if every < 1:
        raise ConfigError(f"Progress must be reported every >= 1 steps, got {every}.")
    dist = resolve_distribution(config, dist)
    _check_classes(config, dist)
    model, opt, gen, points, before = _start(config, dist, init)
    process = model.process
    ema = _Ema(model.net, config.ema) if config.ema is not None else None
    losses, times, stopped, window = [], [], False, []
    start = time.perf_counter()
    for step in range(1, config.steps + 1):
        labels = None
        if config.conditional:
            x0, labels = _labelled_batch(
                dist, config.batch_size, gen, config.model.n_classes, config.label_dropout
            )
        else:
            x0 = _batch(dist, points, config.batch_size, gen)
        t = sample_times(config.batch_size, process, gen, config.time_sampling)
        eps = pair(x0, torch.randn(x0.shape, generator=gen), config.coupling)
        if config.tail_stretch:
            eps = stretch_tail(model, t, eps)
        lr = config.lr * lr_factor(step, config.steps)
        value = _step(model, opt, lr, ema, (x0, t, eps), config.weighting, labels)
        limit = EXPLODE_FACTOR * max(losses[0] if losses else value, 1.0)
        if not math.isfinite(value) or value > limit:
            raise _diverged(config, step, value)
        losses.append(value)
        times.append(time.perf_counter() - start)
        window.append(value)
        if progress is not None and (step % every == 0 or step == config.steps):
            report = TrainProgress(step, config.steps, sum(window) / len(window), times[-1])
            window = []
            if progress(report) and step < config.steps:
                stopped = True
                break
    optimizer = opt.state()
    if ema is not None:
        model = TrainedModel(config.model, process, ema.net)
    model.net.eval()
    return TrainResult(
        config=config,
        model=model,
        history=_history(losses, times, before),
        model_id=config.model_id,
        elapsed=time.perf_counter() - start,
        stopped=stopped,
        train_points=points,
        optimizer=optimizer,
        from_file=init is not None and init.from_file,
    )
