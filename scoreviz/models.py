"""Small score networks for 2D points: a time-conditioned MLP, and the classical single-sigma DAE.

The network F sees the scaled input u = c_in x_t with c_in = 1 / sqrt(alpha_t^2 + sigma_t^2) (the
data have unit spread, so u has roughly unit spread at every t, VE included), sinusoidal features
sin/cos(w_j u_k) of each coordinate at `x_freqs` log-spaced frequencies w_j in [0.5, 32] radians
per unit, and Fourier features of log sigma_t (default) or of t. The input features are what let
a small network draw thin shapes (letters, spirals: widths ~0.06 at unit spread): a plain MLP on
raw coordinates learns them only slowly (tanelp/tiny-diffusion embeds x the same way). The body
is a plain MLP by default; `residual=True` makes it h <- h + W act(LayerNorm(h)), which measured
no better here (4,000 steps: spirals 0.11 vs 0.08 nats lost, word 0.04 vs 0.03) at ~1.5x the
cost per step. Its 2D output is read in one of three parameterisations, and converted to the others
only through `scoreviz.conversions`:

    "eps"    eps_hat = F                       score = -eps_hat / sigma_t
    "score"  score   = F / sigma_t             (NCSNv2's output scaling: F's target sigma_t score
                                                = -eps stays O(1); raw scores reach 1/sigma_t)
    "x0"     x0_hat  = F                       score = (alpha_t x0_hat - x_t) / sigma_t^2
    "v"      v_hat   = F = E[eps - x0 | x_t]   score = -(x_t + alpha_t v_hat) / ((alpha_t +
                                                sigma_t) sigma_t)   (flow matching's velocity)

(`PARAMETERIZATION_TABLE`: key -> label and the three readings of F.)

Two things keep the network sane where training never goes (issue 21's stray samples). The eps
network used to saturate beyond the region training visits (|u| > 4.5: 1 training point in
20,000): at t = 0.95 its radial score was -4.2 at |x| = 8 where N(0, I) has -8, weaker than the
reverse SDE's f x needs, so a particle that wandered past |x| ~ 5 was pushed out to |x| ~ 10.
- `prior_skip`: F = k(t) u + fade(|u|) F_net, where k(t) u is the output's reading of the
  Gaussian prior N(0, (alpha^2 + sigma^2) I) (`_PRIOR_GAIN`, exact for data of unit spread at
  high noise) and fade = exp(-(|u| - FAR)^2 / 2) beyond |u| = FAR. Far out the score is the
  prior's, -x / (alpha^2 + sigma^2), whatever the weights; an untrained model starts there.
- `x_gate`: sin/cos(w u) fade in as the noise falls, times exp(-(w sigma_t c_in / GATE_WIDTH)^2
  / 2): at sampling's start only w <= 2 pass, so high frequencies cannot paint arbitrary
  ripples over the prior's tails (p_t has no detail finer than its noise anyway).
Model files from before these fields load with both off (`LEGACY_FIELDS`).

Class-conditional models (`n_classes` = C > 0, issue 24): the features also hold a learned
embedding of the class, C + 1 rows, the last the "null" class that stands for no label. Trained
with label dropout (`TrainConfig.label_dropout`), one network gives both the conditional score
s(x_t, t, c) and the unconditional one s(x_t, t, null), which is what classifier-free guidance
mixes. Its plain `score` (the ScoreFn every page uses) is the unconditional branch.

With this scaling "score" trains exactly like "eps" with the output's sign flipped (same loss
history, mirrored last layer): the 1/sigma_t a raw score needs is supplied by hand, not learned.
"x0" differs: its score error is amplified by alpha_t / sigma_t^2 at small sigma_t.

A classical DAE (kind="dae", Vincent 2011) has no time input: it reconstructs x0 from
x~ = alpha x0 + sigma eps at one noise level sigma = dae_sigma (t = process.t_from_sigma(sigma);
under VE that is x~ = x + sigma eps). Its score is (alpha f(x~) - x~) / sigma^2 at its own sigma,
whatever t it is asked about.

Shapes: x_t (N, 2), t (N,) or a scalar; every output (N, 2).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from scoreviz import conversions as conv
from scoreviz.errors import ConfigError, unknown_key
from scoreviz.processes import NoiseProcess

KINDS = {"score": "Score model (all noise levels)", "dae": "Classical DAE (one noise level)"}
ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
EMBEDDINGS = {"log_sigma": "Fourier features of log σ_t", "t": "sinusoidal features of t"}

# Frequency ranges (radians per unit) of the conditioning features. log sigma spans about
# [-4.6, 2.3] over all processes, t spans [0, 1]: the top frequency resolves ~0.2 in log sigma.
_FREQ_RANGE = {"log_sigma": (0.25, 16.0), "t": (1.0, 100.0)}
# Frequencies (radians per unit) of the input features of x at unit spread: 0.5 sees the whole
# cloud, 32 resolves details of ~0.05 (a tenth of a period), the width of the thinnest built-ins.
X_FREQ_RANGE = (0.5, 32.0)
# What a model file without the newer architecture fields was: raw coordinates into a plain MLP.
LEGACY_FIELDS = {
    "x_freqs": 0,
    "residual": False,
    "x_gate": False,
    "prior_skip": False,
    "n_classes": 0,
}
# Width of the learned class embedding of a conditional model (C + 1 rows: the classes and null).
CLASS_DIM = 16
# A frequency w of the input features is faded in as exp(-(w s / GATE_WIDTH)^2 / 2), s = sigma_t
# c_in the noise's spread in u: at s = 1 (sampling's start) w = 0.5-2 pass, w >= 8 are off; at
# s = 0.05 every w <= 32 passes at >= 0.6.
GATE_WIDTH = 2.0
# With `prior_skip` the network's part of the output fades out beyond |u| = FAR (as exp(-(|u| -
# FAR)^2 / 2)): training visits |u| > 4.5 in ~1 of 20,000 samples, and beyond what it visits an
# MLP's output is whatever its last linear pieces extrapolate to.
FAR = 5.0


def _check(key: str, registry: dict, kind: str) -> None:
    if key not in registry:
        raise unknown_key(kind, key, registry)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a score model (frozen, hashable: part of the model id)."""

    kind: str = "score"  # "score" (time-conditioned MLP) | "dae" (single-sigma DAE)
    parameterization: str = "eps"  # "eps" | "score" | "x0" (ignored for kind="dae": x0)
    width: int = 64
    depth: int = 3  # hidden layers
    activation: str = "silu"
    embedding: str = "log_sigma"  # "log_sigma" | "t"
    n_freqs: int = 16
    dae_sigma: float = 0.5  # kind="dae" only: its one noise level
    x_freqs: int = 16  # sinusoidal features of each input coordinate (0: raw coordinates only)
    residual: bool = False  # residual blocks with LayerNorm (False: a plain MLP)
    x_gate: bool = True  # fade each input frequency w in as sigma_t w falls (see GATE_WIDTH)
    prior_skip: bool = True  # F = Gaussian-prior reading + network (far field: the prior score)
    n_classes: int = 0  # C > 0: class-conditional, with a class embedding and a null class

    def __post_init__(self) -> None:
        _check(self.kind, KINDS, "model kind")
        _check(self.parameterization, PARAMETERIZATIONS, "parameterisation")
        _check(self.activation, ACTIVATIONS, "activation")
        _check(self.embedding, EMBEDDINGS, "time embedding")
        if not 1 <= self.width <= 4096:
            raise ConfigError(f"The width must lie in [1, 4096], got {self.width}.")
        if not 1 <= self.depth <= 32:
            raise ConfigError(f"The depth must lie in [1, 32], got {self.depth}.")
        if not 1 <= self.n_freqs <= 256:
            raise ConfigError(f"n_freqs must lie in [1, 256], got {self.n_freqs}.")
        if not 0 <= self.x_freqs <= 256:
            raise ConfigError(f"x_freqs must lie in [0, 256], got {self.x_freqs}.")
        if not 0 <= self.n_classes <= 256 or (self.n_classes and self.kind != "score"):
            raise ConfigError(
                f"n_classes must lie in [0, 256] (a DAE has none), got {self.n_classes}."
            )
        for name in ("residual", "x_gate", "prior_skip"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        if not (math.isfinite(self.dae_sigma) and self.dae_sigma > 0):
            raise ConfigError(f"The DAE noise level must be a number > 0, got {self.dae_sigma}.")
        object.__setattr__(self, "dae_sigma", float(self.dae_sigma))  # 1 and 1.0: one model id

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """A ModelConfig from `dataclasses.asdict` output; fields a file predates take their
        legacy values (`LEGACY_FIELDS`), so older model files keep their architecture."""
        return cls(**{**LEGACY_FIELDS, **d})

    @property
    def output(self) -> str:
        """What the network's output means: the parameterisation, or "x0" for a DAE."""
        return "x0" if self.kind == "dae" else self.parameterization


def _log_spaced(lo: float, hi: float, n: int) -> torch.Tensor:
    return torch.exp(torch.linspace(math.log(lo), math.log(hi), n))


class ScoreMLP(nn.Module):
    """F(u, c) -> (N, 2) on [u, sin/cos(w_j u_k), sin/cos(v_k c)] (see the module docstring).

    u (N, 2) is the scaled input, c (N,) the conditioning scalar (log sigma_t or t; a DAE has
    none). residual: h = Linear(features); h <- h + Linear(act(LayerNorm(h))) `depth` times;
    F = Linear(act(LayerNorm(h))). Plain: `depth` Linear+act layers, then Linear. The last layer
    starts at zero, so every parameterisation starts from a harmless constant.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.conditioned = config.kind == "score"
        self.residual = config.residual
        lo, hi = _FREQ_RANGE[config.embedding]
        self.register_buffer("freqs", _log_spaced(lo, hi, config.n_freqs), persistent=False)
        self.register_buffer(
            "x_freqs", _log_spaced(*X_FREQ_RANGE, config.x_freqs), persistent=False
        )
        act, width = ACTIVATIONS[config.activation], config.width
        n_in = 2 + 4 * config.x_freqs + (2 * config.n_freqs if self.conditioned else 0)
        self.n_classes = config.n_classes
        n_in += CLASS_DIM if self.n_classes else 0
        if self.residual:
            self.inp = nn.Linear(n_in, width)
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.LayerNorm(width), act(), nn.Linear(width, width))
                for _ in range(config.depth)
            )
            self.head = nn.Sequential(nn.LayerNorm(width), act())
        else:
            layers: list[nn.Module] = []
            for i in range(config.depth):
                layers += [nn.Linear(n_in if i == 0 else width, width), act()]
            self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(width, 2)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        if self.n_classes:  # created last: the layers above draw the same initial weights
            self.classes = nn.Embedding(self.n_classes + 1, CLASS_DIM)

    def features(
        self,
        u: torch.Tensor,
        c: torch.Tensor,
        noise: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[u, sin(w u), cos(w u), sin(v c), cos(v c)] (N, n_in), then a conditional model's
        class embedding (labels (N,) in [0, C]; C or None: the null class).

        With `noise` (N,), the noise's spread sigma_t c_in in u, each frequency's sin and cos are
        multiplied by exp(-(w noise / GATE_WIDTH)^2 / 2): detail finer than the noise fades out.
        """
        parts = [u]
        if self.x_freqs.numel():
            wu = (u[:, :, None] * self.x_freqs).flatten(1)  # (N, 2 x_freqs)
            if noise is None:
                parts += [torch.sin(wu), torch.cos(wu)]
            else:
                gate = torch.exp(-0.5 * (noise[:, None] * self.x_freqs / GATE_WIDTH) ** 2)
                gate = gate.repeat(1, 2)  # (N, 2 x_freqs), in wu's order: u_0's w, then u_1's
                parts += [torch.sin(wu) * gate, torch.cos(wu) * gate]
        if self.conditioned:
            vc = c[:, None] * self.freqs[None, :]
            parts += [torch.sin(vc), torch.cos(vc)]
        if self.n_classes:
            if labels is None:
                labels = torch.full((u.shape[0],), self.n_classes, dtype=torch.long)
            parts.append(self.classes(labels.to(u.device)).to(u.dtype))
        return torch.cat(parts, dim=1)

    def forward(
        self,
        u: torch.Tensor,
        c: torch.Tensor,
        noise: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        z = self.features(u, c, noise, labels)
        if not self.residual:
            return self.out(self.hidden(z))
        h = self.inp(z)
        for block in self.blocks:
            h = h + block(h)
        return self.out(self.head(h))


@dataclass(frozen=True)
class Parameterization:
    """How a raw output F (N, 2) reads as the score, x0_hat and eps_hat: each a formula
    (F, x_t, alpha, sigma) -> (N, 2), alpha and sigma (N,), through `scoreviz.conversions`."""

    label: str
    score: Callable[..., torch.Tensor]
    x0: Callable[..., torch.Tensor]
    eps: Callable[..., torch.Tensor]


def _div(raw: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return raw / sigma[:, None]  # "score": F = sigma_t * score


PARAMETERIZATION_TABLE: dict[str, Parameterization] = {
    "eps": Parameterization(
        "ε (noise)",
        score=lambda raw, x_t, alpha, sigma: conv.eps_to_score(raw, sigma),
        x0=conv.eps_to_x0,
        eps=lambda raw, x_t, alpha, sigma: raw,
    ),
    "score": Parameterization(
        "score (÷ σ)",
        score=lambda raw, x_t, alpha, sigma: _div(raw, sigma),
        x0=lambda raw, x_t, alpha, sigma: conv.score_to_x0(_div(raw, sigma), x_t, alpha, sigma),
        eps=lambda raw, x_t, alpha, sigma: conv.score_to_eps(_div(raw, sigma), sigma),
    ),
    "x0": Parameterization(
        "x₀ (denoiser)",
        score=conv.x0_to_score,
        x0=lambda raw, x_t, alpha, sigma: raw,
        eps=conv.x0_to_eps,
    ),
    "v": Parameterization(
        "v (velocity, flow matching)",
        score=conv.v_to_score,
        x0=conv.v_to_x0,
        eps=conv.v_to_eps,
    ),
}
PARAMETERIZATIONS = {k: p.label for k, p in PARAMETERIZATION_TABLE.items()}  # key -> label
# The Gaussian prior's reading k(t) u of each output, u = c_in x: data of unit spread at noise
# sigma_t is ~N(0, 1/c_in^2), score -c_in u, so eps = sigma c_in u, sigma score = -sigma c_in u,
# x0 = (x + sigma^2 score)/alpha = alpha c_in u. With `prior_skip` the network adds to it.
_PRIOR_GAIN: dict[str, Callable[..., torch.Tensor]] = {
    "eps": lambda alpha, sigma, c_in: sigma * c_in,
    "score": lambda alpha, sigma, c_in: -sigma * c_in,
    "x0": lambda alpha, sigma, c_in: alpha * c_in,
    "v": lambda alpha, sigma, c_in: (sigma - alpha) * c_in,  # v = eps - x0
}


class TrainedModel:
    """A score network plus the process it was trained for; provides a ScoreFn.

    `score`, `denoise`, `eps` run without autograd and return x_t's dtype; `outputs` is the
    differentiable path training uses. The network runs in its own dtype (float32 by default).
    """

    def __init__(self, config: ModelConfig, process: NoiseProcess, net: nn.Module | None = None):
        self.config = config
        self.process = process
        self.net = net if net is not None else ScoreMLP(config)
        dae_t = float(process.t_from_sigma(torch.tensor(config.dae_sigma, dtype=torch.float64)))
        self._dae_t = dae_t if config.kind == "dae" else None

    @property
    def dae_t(self) -> float | None:
        """The t whose sigma_t is the DAE's noise level (None for kind="score")."""
        return self._dae_t

    def schedule(self, t, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(t, alpha_t, sigma_t) as float64 (n,) tensors; a DAE always uses its own t."""
        if self._dae_t is not None:
            t = torch.full((n,), self._dae_t, dtype=torch.float64)
        else:
            t = torch.as_tensor(t).to(torch.float64).reshape(-1).expand(n)
        return t, self.process.alpha(t), self.process.sigma(t)

    @property
    def n_classes(self) -> int:
        """C for a class-conditional model, 0 for an unconditional one."""
        return self.config.n_classes

    def _labels(self, labels, n: int) -> torch.Tensor | None:
        """labels as (n,) longs in [0, C] (None stays None: the null class); a plain model has
        none to take."""
        if labels is None:
            return None
        if not self.n_classes:
            raise ConfigError("This model is not class-conditional: train a conditional one.")
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1).expand(n)
        if (labels < 0).any() or (labels > self.n_classes).any():
            raise ConfigError(
                f"Classes run from 0 to {self.n_classes - 1} (null: {self.n_classes})."
            )
        return labels

    def outputs(
        self, x_t: torch.Tensor, t, labels=None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(F, alpha_t, sigma_t): the raw network output (N, 2), differentiable, x_t's dtype.

        F is eps_hat, sigma_t * score or x0_hat according to `config.output`. labels: a
        conditional model's class per point (N,) or one int (None: the null class).
        """
        labels = self._labels(labels, x_t.shape[0])
        t64, alpha, sigma = self.schedule(t, x_t.shape[0])
        c_in = torch.rsqrt(alpha**2 + sigma**2)
        cond = torch.log(sigma) if self.config.embedding == "log_sigma" else t64
        dtype = next(self.net.parameters()).dtype
        u = (x_t * c_in[:, None].to(x_t.dtype)).to(dtype)
        more = {} if labels is None else {"labels": labels}  # a plain model's call as it was
        if self.config.x_gate:
            raw = self.net(u, cond.to(dtype), (sigma * c_in).to(dtype), **more)
        elif more:
            raw = self.net(u, cond.to(dtype), None, **more)
        else:
            raw = self.net(u, cond.to(dtype))
        if self.config.prior_skip:  # the prior's reading + F, F faded out beyond |u| = FAR
            fade = torch.exp(-0.5 * torch.relu(u.norm(dim=1, keepdim=True) - FAR) ** 2)
            gain = _PRIOR_GAIN[self.config.output](alpha, sigma, c_in).to(dtype)[:, None]
            raw = gain * u + fade * raw
        return raw.to(x_t.dtype), alpha.to(x_t.dtype), sigma.to(x_t.dtype)

    def score_with_grad(self, x_t: torch.Tensor, t, labels=None) -> torch.Tensor:
        """The score (N, 2), differentiable in the network weights (labels: see `outputs`)."""
        raw, alpha, sigma = self.outputs(x_t, t, labels)
        return PARAMETERIZATION_TABLE[self.config.output].score(raw, x_t, alpha, sigma)

    def class_score_fn(self, c: int | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The ScoreFn of a conditional model given class c (None: the unconditional branch)."""
        if c is not None:
            self._labels(int(c), 1)  # refuses a plain model and a class out of range
            if int(c) == self.n_classes:
                raise ConfigError(f"Classes run from 0 to {self.n_classes - 1}; None is null.")

        @torch.no_grad()
        def score(x_t: torch.Tensor, t) -> torch.Tensor:
            return self.score_with_grad(x_t, t, None if c is None else int(c))

        return score

    @torch.no_grad()
    def score(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """grad log p_t(x_t) as learned (a ScoreFn). DAE: (alpha f(x) - x)/sigma^2 at its sigma."""
        return self.score_with_grad(x_t, t)

    @torch.no_grad()
    def denoise(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """x0_hat = E[x_0 | x_t] as learned (Tweedie). DAE: f(x) at its own sigma."""
        raw, alpha, sigma = self.outputs(x_t, t)
        return PARAMETERIZATION_TABLE[self.config.output].x0(raw, x_t, alpha, sigma)

    @torch.no_grad()
    def eps(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """eps_hat = E[eps | x_t] as learned."""
        raw, alpha, sigma = self.outputs(x_t, t)
        return PARAMETERIZATION_TABLE[self.config.output].eps(raw, x_t, alpha, sigma)

    @torch.no_grad()
    def velocity(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """v_hat = E[eps - x_0 | x_t] as learned (the flow-matching velocity), (N, 2)."""
        raw, alpha, sigma = self.outputs(x_t, t)
        if self.config.output == "v":
            return raw
        table = PARAMETERIZATION_TABLE[self.config.output]
        return table.eps(raw, x_t, alpha, sigma) - table.x0(raw, x_t, alpha, sigma)


_INIT_LOCK = threading.Lock()


def build_model(config: ModelConfig, process: NoiseProcess, seed: int = 0) -> TrainedModel:
    """A freshly initialised model; the initial weights depend only on (config, seed).

    Seeds torch's global RNG inside `fork_rng`, so no other code's random stream is disturbed,
    under a lock: two sessions' training threads initialising at once would otherwise reseed
    each other's global stream mid-initialisation (same config and seed, different weights).
    """
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ScoreMLP(config)
    return TrainedModel(config, process, net)
