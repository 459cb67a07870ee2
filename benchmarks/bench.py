"""scoreviz benchmark: "trained in seconds, redrawn at once" — measured, printed, never asserted.

    .venv/bin/python benchmarks/bench.py            # full run, ~25 minutes on 2 cores
    .venv/bin/python benchmarks/bench.py --quick    # fewer repeats and budgets, ~12 minutes

    .venv/bin/python benchmarks/bench.py --only quality [--dists word outline]

Sections (Markdown tables, so they paste into the README):
0. Quality vs training time on every built-in distribution and a thin-outline upload (read back
   through the app's upload path): nats lost (mean ± spread over sampler seeds), stray samples
   and energy ratio (`quality.assess`), W2 / two-sample floor against held-out points for the
   upload, for the default TrainConfig stopped at 1/4, 1/2
   and all of its steps (separate runs) and for tanelp/tiny-diffusion's network and settings
   trained by our loop for 10 s and 30 s; the time to reach 0.3 / 0.1 nats; and the picture grid
   docs/learned_vs_exact.png (exact-score vs learned-score samples, same sampler and seed).
0b. Every Train-form option (process, output, weighting) on the five hardest built-ins: nats
   lost over sampler seeds (mean ± spread), stray samples and the verdict (`--only options`).
1. Training quality vs time on eight Gaussians: sigma^2-weighted score error against the exact
   score (t uniform on [t_min, 1], `metrics.mean_score_error`) after 1, 2, 4, 8 s of training,
   for our default config and a config with tiny-diffusion's sizes on raw coordinates, trained
   by the same loop, interleaved in one process; the ratio of their times to reach an error.
2. Interaction latency: what one slider move costs on each page with a trained model (cache miss:
   the page's cached computation is cleared first) plus the figure build, medians of repeats,
   and the size of the figure JSON sent to the browser.
3. Cold start: `import scoreviz`, and `streamlit run app.py` until /_stcore/health answers and
   until headless Chromium shows the first page.

Run it on an idle machine: a second busy process on a 2-core laptop halves every number.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from scoreviz import get_distribution, get_process, quality, training  # noqa: E402
from scoreviz.data_io import parse_point_cloud, to_distribution  # noqa: E402
from scoreviz.distributions import DISTRIBUTIONS  # noqa: E402
from scoreviz.metrics import mean_score_error, wasserstein2  # noqa: E402
from scoreviz.models import ModelConfig, TrainedModel  # noqa: E402
from scoreviz.samplers import SamplerConfig, sample  # noqa: E402
from scoreviz.score import exact_score_fn  # noqa: E402
from scoreviz.training import TrainConfig, train  # noqa: E402

DIST, PROCESS = "eight_gaussians", "vp_linear"

# Section 1's comparison config: tiny-diffusion's *sizes* (width 128, 3 layers, GELU, a 128-wide
# sinusoidal embedding of t, batch 32, lr 1e-3) on raw coordinates: a plain MLP without its
# residual blocks and without its sinusoidal embedding of x (scale 25), the part that draws thin
# shapes. Labelled "tiny-style, raw x" in the tables; the real recipe is in section 0.
TINY = TrainConfig(
    distribution=DIST,
    process=PROCESS,
    model=ModelConfig(width=128, depth=3, activation="gelu", embedding="t", n_freqs=64),
    batch_size=32,
    lr=1e-3,
    ema=None,
)


# ----------------------------------------------------------------------------- helpers
def median_ms(fn, repeats: int) -> tuple[float, object]:
    """Median wall time of fn() in ms over `repeats` calls, and the last result."""
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times), out


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- 0. quality
# What a student sees: for every built-in distribution and a thin-outline upload, nats lost
# (quality.assess: reverse SDE, 200 steps, 2,000 particles, learned vs exact score from the same
# seeds, quality.N_SEEDS of them)
# after training for a given time, for the default config and for tiny-diffusion's recipe.
FRACTIONS = (0.25, 0.5, 1.0)  # of the default steps: separate runs (each with its own schedule)
TINY_BUDGETS = (10.0, 30.0)  # seconds of training for the tiny-diffusion recipe
NATS_TARGETS = (0.3, 0.1)
OUTLINE = "outline (upload)"
OUTLINE_N, OUTLINE_HELD, W2_N, W2_DRAWS = 6000, 1000, 1000, 5
PICTURE = ROOT / "docs" / "learned_vs_exact.png"


class TinyDiffusionMLP(torch.nn.Module):
    """tanelp/tiny-diffusion's `ddpm.MLP`: sinusoidal embeddings (size 128) of each coordinate
    (scale 25) and of the integer timestep, concatenated (384), Linear(384, 128) + GELU, three
    blocks h <- h + GELU(Linear(h)) of width 128, Linear(128, 2). Here it receives our (u, c):
    u = c_in x_t (unit spread) and c = t in [0, 1], which becomes the timestep 1000 t."""

    def __init__(self, size: int = 128, width: int = 128, blocks: int = 3, scale: float = 25.0):
        super().__init__()
        half = size // 2
        freqs = torch.exp(-math.log(10000.0) / (half - 1) * torch.arange(half))
        self.register_buffer("freqs", freqs, persistent=False)
        self.scale = scale
        self.inp = torch.nn.Linear(3 * size, width)
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(blocks))
        self.out = torch.nn.Linear(width, 2)

    def _embed(self, v: torch.Tensor) -> torch.Tensor:
        """[sin(v f), cos(v f)] (N, size) of a (N,) tensor."""
        arg = v[:, None] * self.freqs[None, :]
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)

    def forward(self, u: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        emb = [self._embed(self.scale * u[:, 0]), self._embed(self.scale * u[:, 1])]
        h = F.gelu(self.inp(torch.cat([*emb, self._embed(1000.0 * c)], dim=1)))
        for block in self.blocks:
            h = h + F.gelu(block(h))
        return self.out(h)


def tiny_config(distribution: str) -> TrainConfig:
    """The recipe's settings in our loop (its loss is our eps MSE = lambda sigma^2 weighting).

    Not reproduced: AdamW's weight decay and gradient clipping (our Adam, warm-up and cosine
    decay), its 50-step DDPM schedule (our vp_linear, t uniform on [t_min, 1])."""
    model = ModelConfig(width=128, depth=3, activation="gelu", embedding="t", x_freqs=0,
                        x_gate=False, prior_skip=False)  # fmt: skip
    return TrainConfig(distribution=distribution, process=PROCESS, model=model, batch_size=32,
                       lr=1e-3, time_sampling="uniform")  # fmt: skip


@contextlib.contextmanager
def tiny_network():
    """While active, `train` builds the tiny-diffusion network (seeded like build_model)."""
    original = training.build_model

    def build(config: ModelConfig, process, seed: int = 0) -> TrainedModel:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return TrainedModel(config, process, TinyDiffusionMLP())

    training.build_model = build
    try:
        yield
    finally:
        training.build_model = original


class _ExactScore:
    """quality's exact score, tagged with its distribution so its samples can be reused."""

    def __init__(self, dist, process) -> None:
        self.key = (id(dist), id(process))
        self.fn = exact_score_fn(dist, process)

    def __call__(self, x_t: torch.Tensor, t) -> torch.Tensor:
        return self.fn(x_t, t)


class Assessor:
    """quality.assess with the exact-score run (the same for every model of a distribution: same
    sampler, same seed) done once per distribution, and the last samples kept for the picture."""

    def __init__(self) -> None:
        self.exact_runs: dict = {}
        self.last: dict[str, np.ndarray] = {}

    def _sample(self, score_fn, process, config):
        if not isinstance(score_fn, _ExactScore):
            out = sample(score_fn, process, config)
            self.last["learned"] = out.xs[-1]
            return out
        key = (score_fn.key, config)
        if key not in self.exact_runs:
            self.exact_runs[key] = sample(score_fn, process, config)
        self.last["exact"] = self.exact_runs[key].xs[-1]
        return self.exact_runs[key]

    def __call__(self, score_fn, dist, process) -> quality.Quality:
        saved = quality.sample, quality.exact_score_fn
        quality.sample, quality.exact_score_fn = self._sample, _ExactScore
        try:
            return quality.assess(score_fn, dist, process, seed=0)
        finally:
            quality.sample, quality.exact_score_fn = saved


def outline_points(n: int, seed: int = 0, noise: float = 0.01) -> np.ndarray:
    """A five-pointed star-like closed curve of size ~2.6 with noise ~1 % of its size (the
    thin-outline pattern of tests/test_data_io.py)."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0, 2 * np.pi, n)
    r = 1 + 0.3 * np.sin(5 * u)
    p = np.stack([r * np.cos(u), r * np.sin(u)], 1)
    return p + noise * 2.6 * rng.normal(size=p.shape)


@dataclass
class Problem:
    """One distribution to learn: its name in the tables, its mixture, its TrainConfig key and,
    for the upload, the uploaded points and held-out points of the same outline (standardised)."""

    name: str
    dist: object
    key: str
    points: np.ndarray | None = None
    held_out: np.ndarray | None = None


def outline_problem() -> Problem:
    """OUTLINE_N points of the outline as CSV bytes through the app's upload path
    (parse_point_cloud + to_distribution), and OUTLINE_HELD more points held out."""
    raw = outline_points(OUTLINE_N + OUTLINE_HELD, seed=3)
    data = "\n".join(f"{x:.6f},{y:.6f}" for x, y in raw[:OUTLINE_N]).encode()
    parsed = parse_point_cloud(data, "outline.csv")
    held = (raw[OUTLINE_N:] - np.array(parsed.centre)) / parsed.scale
    dist = to_distribution(parsed)
    return Problem(OUTLINE, dist, "upload:" + parsed.sha, np.array(parsed.points), held)


def problems(only: list[str] | None = None) -> list[Problem]:
    """Every built-in distribution and the outline upload ("outline"), or those in `only`."""
    keep = [k for k in [*DISTRIBUTIONS, "outline"] if only is None or k in only]
    return [
        outline_problem() if k == "outline" else Problem(k, get_distribution(k), k) for k in keep
    ]


def w2_ratio(samples: np.ndarray, problem: Problem) -> float:
    """Mean W2 of W2_DRAWS draws of W2_N samples vs the held-out points, / the two-sample floor
    (the same for draws of the uploaded points). W2 along a curve varies +-30 % between draws."""

    def mean_w2(x: np.ndarray) -> float:
        chunks = [x[i * W2_N : (i + 1) * W2_N] for i in range(W2_DRAWS)]
        return float(np.mean([wasserstein2(c, problem.held_out) for c in chunks]))

    return mean_w2(samples) / mean_w2(problem.points)


def learned_w2(result, problem: Problem) -> float:
    """w2_ratio of the reverse SDE's samples with the learned score (a seed assess does not use)."""
    cfg = SamplerConfig(name="reverse_sde", n_steps=quality.N_STEPS, n_frames=2, seed=1,
                        n_particles=W2_N * W2_DRAWS)  # fmt: skip
    x = np.asarray(sample(result.score_fn(), result.model.process, cfg).xs[-1])
    return w2_ratio(x[np.isfinite(x).all(1)], problem)


def exact_w2(problem: Problem) -> float:
    """w2_ratio of samples of the exact (smoothed) mixture itself: the exact panel's fidelity."""
    gen = torch.Generator().manual_seed(11)
    x = problem.dist.sample(W2_N * W2_DRAWS, gen, dtype=torch.float64).numpy()
    return w2_ratio(x, problem)


@dataclass
class Run:
    problem: str
    config: str
    steps: int
    seconds: float
    quality: quality.Quality
    w2: float | None = None


def run_one(problem: Problem, config: TrainConfig, label: str, assessor: Assessor) -> Run:
    res = train(config, dist=problem.dist)
    q = assessor(res.score_fn(), problem.dist, res.model.process)
    w2 = learned_w2(res, problem) if problem.held_out is not None else None
    return Run(problem.name, label, config.steps, res.elapsed, q, w2)


def _rate(config: TrainConfig, dist) -> float:
    """Training steps per second of `config` (after a short warm-up run)."""
    train(replace(config, steps=30), dist=dist)
    return 300 / train(replace(config, steps=300), dist=dist).elapsed


def quality_runs(fractions, budgets, assessor: Assessor, pictures: dict, only=None):
    """Every problem: the default at each fraction of its steps, the tiny recipe per budget;
    (runs, steps/s of each config)."""
    probs = problems(only)
    first = probs[0]
    rates = {"default": _rate(TrainConfig(distribution=first.key), first.dist)}
    with tiny_network():
        rates["tiny"] = _rate(tiny_config(first.key), first.dist)
    runs = []
    for p in probs:
        base = TrainConfig(distribution=p.key)
        for f in fractions:
            cfg = replace(base, steps=max(10, round(f * base.steps)))
            runs.append(run_one(p, cfg, "default" if f == 1 else f"default × {f:g}", assessor))
        pictures[p.name] = tuple(np.asarray(assessor.last[k]) for k in ("exact", "learned"))
        for b in budgets:
            with tiny_network():
                cfg = replace(tiny_config(p.key), steps=round(rates["tiny"] * b))
                runs.append(run_one(p, cfg, f"tiny-diffusion, {b:g} s budget", assessor))
        if p.held_out is not None:
            runs.append(Run(p.name, "exact mixture (the exact panel)", 0, 0.0, None, exact_w2(p)))
        print(f"  {p.name}: done", file=sys.__stderr__, flush=True)
    return runs, rates


def _nats(q: quality.Quality | None) -> str:
    """'0.04 ± 0.01': the mean over assess's sampler seeds and half their max - min."""
    return "–" if q is None else f"{q.nats_lost:.2f} ± {q.nats_spread / 2:.2f}"


def _strays(q: quality.Quality | None) -> str:
    """'3 / 1 of 6,000': learned / exact-score samples below the data's 0.1 % log-density."""
    return "–" if q is None else f"{q.strays} / {q.expected_strays} of {q.n:,}"


def _run_row(r: Run) -> list:
    q = r.quality
    energy = "–" if q is None else f"{q.energy_ratio:.1f}"
    w2 = "–" if r.w2 is None else f"{r.w2:.2f}"
    steps = f"{r.steps:,}" if r.steps else "–"
    secs = f"{r.seconds:.1f}" if r.steps else "–"
    return [r.problem, r.config, steps, secs, _nats(q), _strays(q), energy, w2]


def _reach(runs: list[Run], target: float) -> str:
    """Seconds of the shortest measured run at or below `target` nats ('≤': the runs are a few
    points of a curve, the target may be met sooner); else the best measured."""
    ok = [r for r in runs if r.quality.nats_lost <= target]
    if ok:
        r = min(ok, key=lambda r: r.seconds)
        return f"≤ {r.seconds:.1f} s ({r.steps:,} steps)"
    best = min(runs, key=lambda r: r.quality.nats_lost)
    return f"not reached (best {best.quality.nats_lost:.2f} at {best.seconds:.1f} s)"


def reach_table(runs: list[Run]) -> str:
    rows = []
    for name in dict.fromkeys(r.problem for r in runs):
        trained = [r for r in runs if r.problem == name and r.quality is not None]
        default = [r for r in trained if r.config.startswith("default")]
        tiny = [r for r in trained if r.config.startswith("tiny")]
        rows.append([name, *(_reach(default, t) for t in NATS_TARGETS),
                     *(_reach(tiny, t) if tiny else "–" for t in NATS_TARGETS)])  # fmt: skip
    heads = [f"{who} ≤ {t} nats" for who in ("default", "tiny-diffusion") for t in NATS_TARGETS]
    return table(["distribution", *heads], rows)


def picture_grid(pictures: dict, path: Path) -> str:
    """Exact-score samples (top) and learned-score samples (bottom), one column per problem."""
    from plotly.subplots import make_subplots

    from scoreviz.figures.style import PALETTE

    names = list(pictures)
    fig = make_subplots(rows=2, cols=len(names), column_titles=names,
                        row_titles=["exact score", "learned (default)"],
                        horizontal_spacing=0.01, vertical_spacing=0.02)  # fmt: skip
    for j, name in enumerate(names, start=1):
        panels = zip(("exact", "learned"), pictures[name], strict=True)
        for i, (kind, x) in enumerate(panels, start=1):
            fig.add_scatter(x=x[:, 0], y=x[:, 1], mode="markers", row=i, col=j,
                            marker=dict(size=2, color=PALETTE[kind]), showlegend=False)  # fmt: skip
    fig.update_xaxes(range=[-2.6, 2.6], showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(range=[-2.6, 2.6], showticklabels=False, showgrid=False, zeroline=False)
    for k in range(1, 2 * len(names) + 1):  # each panel square
        fig.update_yaxes(scaleanchor=f"x{k if k > 1 else ''}", row=(k - 1) // len(names) + 1,
                         col=(k - 1) % len(names) + 1)  # fmt: skip
    fig.update_annotations(font_size=13)
    width, height = 150 * len(names) + 60, 340
    fig.update_layout(width=width, height=height, plot_bgcolor="white",
                      margin=dict(l=10, r=40, t=40, b=10))  # fmt: skip
    import kaleido  # dev dependency; 1.x drives /usr/bin/chromium. No MathJax: no CDN request

    opts = dict(format="png", width=width, height=height, scale=2)
    kaleido.write_fig_sync(fig, path=str(path), opts=opts, kopts=dict(mathjax=False))
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def quality_section(fractions, budgets, only: list[str] | None = None, path: Path = PICTURE) -> str:
    assessor, pictures = Assessor(), {}
    runs, rates = quality_runs(fractions, budgets, assessor, pictures, only)
    picture = picture_grid(pictures, path)
    d, tiny = TrainConfig(), tiny_config(DIST)
    out = ["### 0. What the student sees: quality vs training time, every distribution", ""]
    out.append(f"Nats lost: mean ± half the range over sampler seeds 0-{quality.N_SEEDS - 1}; "
               "strays: learned / exact-score samples below the data's own 0.1 % log-density "
               "quantile, all seeds together.\n")  # fmt: skip
    out.append(table(["distribution", "config", "steps", "train s", "nats lost", "strays",
                      "energy ratio", "W2 / floor"], [_run_row(r) for r in runs]))  # fmt: skip
    out += ["", "Time to reach the nats-lost targets (among the runs above):", ""]
    out.append(reach_table(runs))
    out.append(
        f"\nThroughput (one torch thread): default {rates['default']:.0f} steps/s (batch "
        f"{d.batch_size}, {d.model.width}×{d.model.depth}, x_freqs {d.model.x_freqs}, residual "
        f"{d.model.residual}), tiny-diffusion recipe {rates['tiny']:.0f} steps/s (batch "
        f"{tiny.batch_size}). Load average at the end: {os.getloadavg()[0]:.2f}. "
        f"Picture: {picture}."
    )
    return "\n".join(out)


# ----------------------------------------------------------------------------- 0b. options
# Every choice the Train form offers, with the form's other settings at their defaults, on the
# five hardest built-ins (issue 21's target: mean nats lost <= 0.3 for every process, output and
# Min-SNR; lambda = 1 and the x0-MSE weighting must fail legibly, not fly off).
HARD = ("word", "two_spirals", "rings", "pinwheel", "checkerboard")
OPTIONS: dict[str, dict] = {
    "default (VP linear, ε, λ = σ²)": {},
    "score output": {"model": ModelConfig(parameterization="score")},
    "x₀ output": {"model": ModelConfig(parameterization="x0")},
    "Min-SNR-5 weighting": {"weighting": "min_snr"},
    "λ = σ⁴/α² (x₀-MSE) weighting": {"weighting": "x0"},
    "λ = 1 weighting": {"weighting": "one"},
    "VP cosine": {"process": "vp_cosine"},
    "VE": {"process": "ve"},
    "sub-VP": {"process": "sub_vp"},
    # flow matching: its own output and loss (replace() keeps TrainConfig()'s resolved weighting)
    "linear path, v output (v-MSE)": {
        "process": "linear",
        "model": ModelConfig(parameterization="v"),
        "weighting": "v",
    },  # fmt: skip
}


def options_section(only: list[str] | None = None) -> str:
    """Each Train-form option on HARD (or `only`): train, assess over sampler seeds."""
    rows, worst = [], {}
    for label, change in OPTIONS.items():
        for name in [d for d in HARD if only is None or d in only]:
            cfg = replace(TrainConfig(distribution=name), **change)
            res = train(cfg)
            q = quality.assess_result(res)
            worst[label] = max(worst.get(label, 0.0), q.nats_lost)
            rows.append([label, name, f"{res.elapsed:.1f}", _nats(q), _strays(q), q.verdict])
            print(f"  {label} / {name}: {q.summary()}", file=sys.__stderr__, flush=True)
    out = ["### 0b. Every Train-form option on the five hardest built-ins", ""]
    seeds = f"0-{quality.N_SEEDS - 1}"
    out.append(f"Default steps ({TrainConfig().steps:,}); nats lost over sampler seeds {seeds} "
               "(mean ± half the range); strays as in section 0.\n")  # fmt: skip
    out.append(table(["option", "distribution", "train s", "nats lost", "strays", "verdict"], rows))
    out.append("\nWorst mean nats lost per option: "
               + ", ".join(f"{k} {v:.2f}" for k, v in worst.items()) + ".")  # fmt: skip
    return "\n".join(out)


# ----------------------------------------------------------------------------- 1. training
def steps_per_second(config: TrainConfig) -> float:
    """Measured training throughput of `config` (after a short warm-up run)."""
    train(replace(config, steps=30))
    res = train(replace(config, steps=300))
    return 300 / res.elapsed


def run_budget(config: TrainConfig, rate: float, budget: float) -> tuple[float, float]:
    """Train with as many steps as fit in `budget` seconds; (seconds taken, score error)."""
    cfg = replace(config, steps=max(10, round(rate * budget)))
    res = train(cfg)
    dist, proc = get_distribution(DIST), get_process(PROCESS)
    return res.elapsed, mean_score_error(res.score_fn(), dist, proc)


def time_to_reach(points: list[tuple[float, float]], target: float) -> float | None:
    """First time the error falls to `target`, interpolated in log time; None if never."""
    prev = None
    for t, err in points:
        if err <= target:
            if prev is None or prev[1] <= err:
                return t
            lt0, lt1 = np.log(prev[0]), np.log(t)
            frac = (prev[1] - target) / (prev[1] - err)
            return float(np.exp(lt0 + frac * (lt1 - lt0)))
        prev = (t, err)
    return None


def training_section(budgets: list[float], tiny_extra: list[float]) -> str:
    configs = {"default": TrainConfig(distribution=DIST, process=PROCESS), "tiny-diffusion": TINY}
    rates = {name: steps_per_second(cfg) for name, cfg in configs.items()}
    curves: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    for b in budgets:  # interleaved, so machine load hits both alike
        for name, cfg in configs.items():
            curves[name].append(run_budget(cfg, rates[name], b))
    for b in tiny_extra:  # the slower config gets more time to reach the targets at all
        curves["tiny-diffusion"].append(run_budget(TINY, rates["tiny-diffusion"], b))
    rows = []
    for name, pts in curves.items():
        for (sec, err), b in zip(pts, budgets + tiny_extra, strict=False):
            rows.append([name, f"{b:g}", f"{sec:.2f}", round(rates[name] * b), f"{err:.4f}"])
    out = ["### 1. Training quality vs time (eight Gaussians, VP linear)", ""]
    for row in rows:
        row[0] = row[0].replace("tiny-diffusion", "tiny-style, raw x")
    out.append(table(["config", "budget s", "trained s", "steps", "σ²-score error"], rows))
    out += ["", table(["target error", "default s", "tiny-style, raw x s", "speed-up"], [
        _reach_row(curves, target) for target in (0.05, 0.03)
    ])]  # fmt: skip
    out.append(f"\nThroughput: default {rates['default']:.0f} steps/s "
               f"(batch {configs['default'].batch_size}), tiny-style, raw x "
               f"{rates['tiny-diffusion']:.0f} steps/s (batch {TINY.batch_size}).")  # fmt: skip
    return "\n".join(out)


def _reach_row(curves, target: float) -> list:
    a = time_to_reach(curves["default"], target)
    b = time_to_reach(curves["tiny-diffusion"], target)
    limit = max(t for t, _ in curves["tiny-diffusion"])
    fa = f"{a:.2f}" if a else "not reached"
    fb = f"{b:.2f}" if b else f"> {limit:.1f}"
    ratio = f"{(b or limit) / a:.1f}×" + ("" if b else " (at least)") if a else "–"
    return [target, fa, fb, ratio]


# ----------------------------------------------------------------------------- 2. latency
def latency_section(repeats: int) -> str:
    """Each row: recompute a page's view pipeline for a new slider value, build the figure
    (the uncached core calls the app caches: `scoreviz.pipelines`)."""
    from scoreviz import pipelines as pl
    from scoreviz.figures.dae import dae_error_figure, dae_figure
    from scoreviz.figures.fields import field_figures
    from scoreviz.figures.forward import forward_figures
    from scoreviz.figures.loss import loss_figure
    from scoreviz.figures.sampling import sampling_figure
    from scoreviz.problem import Problem

    res = train(TrainConfig(distribution=DIST, process=PROCESS))
    exact = Problem.builtin(DIST, PROCESS)
    problem = exact.with_model("default", res)
    rows = []

    def measure(view: str, compute_fn, build_fn) -> None:
        ms, fig = median_ms(lambda: build_fn(compute_fn()), repeats)
        figs = fig if isinstance(fig, tuple) else (fig,)
        kb = sum(len(f.to_json()) for f in figs) / 1e3
        rows.append([view, f"{ms:.0f}", f"{kb:,.0f}"])

    t = 0.1
    measure(
        "Score field: 25×25 arrows ×2 + 48² density/error (t=0.1)",
        lambda: pl.score_field_view(problem, t),
        field_figures,
    )
    p0 = pl.density_at(exact, 0.0, 80)  # cached in the app: moving t does not recompute p_0

    def density(p, t, n):
        return p0 if t == 0.0 else pl.density_at(p, t, n)

    measure(
        "Data & forward: t slider, 120² exact density (3 figures built, KB of the p_t one)",
        lambda: pl.forward_view(exact, pl.ForwardSettings(t, 1000, 120, 80, 0), density=density),
        lambda v: forward_figures(v)[1],
    )
    sig = tuple(float(x) for x in np.geomspace(0.05, 2.0, 4))
    measure(
        "DAE: 4 σ panels × 120 points × 2 denoisers",
        lambda: pl.dae_view(problem, pl.DaeSettings(sig, 120, 0)),
        dae_figure,
    )
    measure(
        "DAE: reconstruction error vs σ (24 σ)",
        lambda: pl.dae_error_view(problem),
        dae_error_figure,
    )
    ws = ("sigma2", "one")
    measure(
        "Loss vs t: 24 bins × 256 samples × 2 weightings, learned + exact + floors",
        lambda: pl.loss_view(problem, pl.LossSettings(ws, 24, 256, 0)),
        lambda v: loss_figure(v, ws),
    )
    for name in ("reverse_sde", "pf_ode_heun", "annealed_langevin"):
        cfg = SamplerConfig(name=name, n_steps=200, n_particles=1000, n_frames=60)
        measure(
            f"Sampling: {name}, 1000 particles × 200 steps, learned + exact",
            lambda cfg=cfg: pl.sampling_view(problem, pl.SamplingSettings(cfg)),
            sampling_figure,
        )
    out = [f"### 2. Interaction latency (median of {repeats}, the uncached core pipelines)", ""]
    out.append(table(["slider move (compute + figure build)", "ms", "figure JSON KB"], rows))
    return "\n".join(out)


# ----------------------------------------------------------------------------- 2b. memorisation
def memorisation_section() -> str:
    """Sampling page (reverse SDE, 1000 particles x 200 steps: learned, exact and memorising-optimum
    rows) for a model trained on the largest allowed training set, before and after the memorising
    optimum was bounded to mixture.MAX_MEMORISED points (before: the exact score of all of them).
    One run each (the 'before' column alone takes about a minute)."""
    import scoreviz.mixture as mixture
    from scoreviz import pipelines as pl
    from scoreviz.problem import Problem
    from scoreviz.samplers import SamplerConfig
    from scoreviz.training import MAX_N_TRAIN

    small = ModelConfig(width=64, depth=2)
    res = train(TrainConfig(distribution=DIST, process=PROCESS, model=small, steps=200,
                            n_train=MAX_N_TRAIN))  # fmt: skip
    problem = Problem.builtin(DIST, PROCESS).with_model("big", res)
    cfg = SamplerConfig("reverse_sde", 200, 1000, 50)
    bounded = mixture.memorising_optimum

    def page(limit: int) -> dict[str, float]:
        mixture.memorising_optimum = lambda p: bounded(p, max_points=limit)
        out = {}
        try:
            for row in ("learned", "exact", "memorised"):
                settings = pl.SamplingSettings(cfg, rows=(row,))
                t0 = time.perf_counter()
                pl.sampling_view_row(pl.row_problem(problem, row), row, settings)
                out[row] = time.perf_counter() - t0
        finally:
            mixture.memorising_optimum = bounded
        return out

    before, after = page(MAX_N_TRAIN), page(mixture.MAX_MEMORISED)
    rows = [[r, f"{before[r]:.1f}", f"{after[r]:.1f}"] for r in before]
    rows.append(["**page total**", f"{sum(before.values()):.1f}", f"{sum(after.values()):.1f}"])
    out = [f"### 2b. Sampling with a model trained on n_train = {MAX_N_TRAIN:,} points", ""]
    head = f"memorising optimum of {MAX_N_TRAIN:,} → {mixture.MAX_MEMORISED:,} points"
    out.append(table(["row (reverse SDE, 1000 × 200)", "before: s", "after: s"], rows))
    out.append(f"\n{head}; n_train = 100,000 (allowed before, refused now): 318 s in issue 13.")
    return "\n".join(out)


# ----------------------------------------------------------------------------- 3. cold start
def cold_start_section(repeats: int) -> str:
    py = sys.executable
    base = median_ms(lambda: subprocess.run([py, "-c", "pass"], check=True), repeats)[0]
    imp = median_ms(lambda: subprocess.run([py, "-c", "import scoreviz"], check=True), repeats)[0]
    full = median_ms(
        lambda: subprocess.run(
            [py, "-c", "import scoreviz.training, scoreviz.samplers, scoreviz.figures.fields"],
            check=True,
        ),
        repeats,
    )[0]
    rows = [
        ["python -c 'import scoreviz' (minus bare interpreter)", f"{imp - base:.0f}"],
        ["… plus training, samplers, figures", f"{full - base:.0f}"],
    ]
    runs = [_server_times() for _ in range(max(1, repeats // 2))]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    label = f" (median of {len(runs)} server starts)"
    rows.append(["`streamlit run app.py` → /_stcore/health ok" + label, f"{med['health']:.0f}"])
    if "home" in med:
        rows += [
            ["health ok → Home rendered in Chromium (first session: imports torch)",
             f"{med['home']:.0f}"],
            ["a second session → Home rendered (each student opening the URL)",
             f"{med['second']:.0f}"],
            ["Home → Score field charts drawn (exact field)", f"{med['field']:.0f}"],
            ["total: `streamlit run` → Home visible", f"{med['health'] + med['home']:.0f}"],
        ]  # fmt: skip
    else:
        rows.append(["first page in Chromium", "skipped (no /usr/bin/chromium)"])
    out = ["### 3. Cold start", "", table(["what", "ms"], rows)]
    return "\n".join(out)


def _server_times() -> dict[str, float]:
    """One fresh `streamlit run app.py`: ms to health, first and second session's Home, a page."""
    sys.path.insert(0, str(ROOT / "tests"))
    from browser_utils import CHROMIUM, CHROMIUM_ARGS, streamlit_server

    out = {}
    t0 = time.perf_counter()
    with streamlit_server() as url:
        out["health"] = _ms(t0)
        if not Path(CHROMIUM).exists():
            return out
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for key in ("home", "second"):
                page = browser.new_page()
                t1 = time.perf_counter()
                page.goto(url)
                page.get_by_role("button", name="Train the default model").wait_for(timeout=60_000)
                out[key] = _ms(t1)
            t2 = time.perf_counter()
            page.get_by_role("link", name="Score field").first.click()
            page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=60_000)
            out["field"] = _ms(t2)
            browser.close()
    return out


SLIDER_INPUT = '[data-testid="stMain"] [data-testid="stSlider"] input[type="range"]'
REDRAW_PAGES = ("Score field", "Data & forward process", "DAE reconstructions")
# a signature of the main chart's data, read from Plotly's graph div (gd.data, and the images
# and shapes that draw densities, point clouds and arrows) in the page
_SIGNATURE = """() => { const gd = document.querySelector('.st-key-main_figure .js-plotly-plot');
  if (!gd || !gd.data || !gd.layout) return null;
  const head = (a) => (a && a.length) ? Array.from(a).slice(0, 40) : null;
  return JSON.stringify([gd.layout.title && gd.layout.title.text,
    (gd.layout.annotations || []).map(a => a.text),
    gd.data.map(t => [head(t.y), t.z ? head(t.z[Math.floor(t.z.length / 2)]) : null]),
    (gd.layout.images || []).map(i => String(i.source).slice(-60)),
    (gd.layout.shapes || []).map(s => String(s.path).slice(0, 60))]); }"""


# In the page: from the key press, check the main chart in every animation frame; the first
# frame that has the new data is the one painted next (a frame callback cannot run while a chart
# is being drawn). window.__redraw: ms from the key press to that frame. Measured in the page,
# so neither Playwright's round trips nor a later chart's drawing (which would delay any
# callback queued after the first change) count.
_WATCH = f"""() => {{ const sig = {_SIGNATURE};
  window.__redraw = null;
  document.addEventListener('keydown', () => {{
    const t0 = performance.now(), before = sig();
    const poll = () => {{ if (sig() !== before) window.__redraw = performance.now() - t0;
      else requestAnimationFrame(poll); }};
    requestAnimationFrame(poll);
  }}, {{capture: true, once: true}}); }}"""


def redraw_section(repeats: int) -> str:
    """A t-slider step in Chromium, key press -> new data in the main chart (issue 11's target:
    <= 300 ms on an idle server), per page: median and max over `repeats` steps to the next
    stop, each a t not seen before (which the page has built in the background while the last
    step was drawn: `ui.prefetch`), then the same steps back (cache hits in the server and in the
    browser's message cache), then 3 jumps of a tenth of the slider (PageUp: stops nobody has
    built, the server computes them on the step)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from browser_utils import CHROMIUM, CHROMIUM_ARGS, SIDEBAR, streamlit_server

    if not Path(CHROMIUM).exists():
        return "### 4. Slider redraw in Chromium\n\nskipped (no /usr/bin/chromium)"
    from playwright.sync_api import sync_playwright

    rows = []
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(url)
        page.get_by_role("button", name="Train the default model").click()
        page.locator(SIDEBAR).get_by_text("Active model", exact=True).first.wait_for(
            timeout=180_000
        )
        for title in REDRAW_PAGES:
            page.get_by_role("link", name=title).first.click()
            page.wait_for_function(f"({_SIGNATURE})() !== null", timeout=90_000)
            page.wait_for_timeout(1500)
            thumb = page.locator(SLIDER_INPUT).first
            steps = (("new t, next stop", "ArrowRight", repeats),
                     ("t seen before", "ArrowLeft", repeats),
                     ("new t, a tenth of the slider on", "PageUp", 3))  # fmt: skip
            for label, key, n in steps:
                times = [_redraw_ms(page, thumb, key) for _ in range(n)]
                rows.append([title, label, f"{statistics.median(times):.0f}", f"{max(times):.0f}"])
        browser.close()
    load = f"load average {os.getloadavg()[0]:.2f} at the end"
    head = ["page", "step", "median ms", "max ms"]
    return "\n".join(["### 4. Slider redraw in Chromium (key press → new chart drawn)", "",
                      table(head, rows), "", load])  # fmt: skip


def _redraw_ms(page, thumb, key: str) -> float:
    """One key press on the slider's thumb; ms until the main chart shows new data."""
    page.evaluate(_WATCH)
    thumb.focus()
    thumb.press(key)
    page.wait_for_function("() => window.__redraw !== null", timeout=30_000)
    ms = page.evaluate("window.__redraw")
    page.wait_for_timeout(400)  # let the run finish before the next step
    return ms


def _ms(t0: float) -> float:
    return 1e3 * (time.perf_counter() - t0)


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and budgets")
    names = ["quality", "options", "training", "latency", "memorised", "cold", "redraw"]
    ap.add_argument("--skip", nargs="*", default=[], choices=names)
    ap.add_argument("--only", nargs="*", default=None, choices=names, help="run just these")
    ap.add_argument("--dists", nargs="*", default=None, choices=[*DISTRIBUTIONS, "outline"],
                    help="quality section: just these distributions (default: all)")  # fmt: skip
    args = ap.parse_args()
    repeats = 3 if args.quick else 7
    budgets = [1.0, 2.0, 4.0] if args.quick else [1.0, 2.0, 4.0, 8.0]
    tiny_extra = [] if args.quick else [16.0, 32.0]
    fractions = (0.5, 1.0) if args.quick else FRACTIONS
    tiny_budgets = TINY_BUDGETS[:1] if args.quick else TINY_BUDGETS
    # only a full quality run redraws the README's picture; a partial one draws beside it
    full = not args.quick and args.dists is None
    picture = PICTURE if full else Path(tempfile.mkdtemp(prefix="scoreviz-bench-")) / PICTURE.name
    torch.set_num_threads(1)  # what training and the app's computations use (measured best)
    print(f"# scoreviz benchmark — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), "
          f"load average {os.getloadavg()[0]:.2f} at the start\n")  # fmt: skip
    sections = [
        ("quality", lambda: quality_section(fractions, tiny_budgets, args.dists, picture)),
        ("options", lambda: options_section(args.dists)),
        ("training", lambda: training_section(budgets, tiny_extra)),
        ("latency", lambda: latency_section(repeats)),
        ("memorised", memorisation_section),
        ("cold", lambda: cold_start_section(repeats)),
        ("redraw", lambda: redraw_section(repeats)),
    ]
    for name, fn in sections:
        if name in args.skip or (args.only is not None and name not in args.only):
            continue
        with contextlib.redirect_stderr(io.StringIO()):
            text = fn()
        print(text + "\n", flush=True)


if __name__ == "__main__":
    main()
