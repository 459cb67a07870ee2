"""scoreviz benchmark: "trained in seconds, redrawn at once" — measured, printed, never asserted.

    .venv/bin/python benchmarks/bench.py            # full run, ~3-4 minutes on 2 cores
    .venv/bin/python benchmarks/bench.py --quick    # fewer repeats and budgets, ~1 minute

Three tables (Markdown, so they paste into the README):
1. Training quality vs time: sigma^2-weighted score error against the exact score (t uniform on
   [t_min, 1], `metrics.mean_score_error`) after 1, 2, 4, 8 s of training, for our default
   config and a tiny-diffusion-style config trained by the same loop on the same distribution,
   interleaved in one process; and the ratio of their times to reach a fixed error.
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
import logging
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from scoreviz import get_distribution, get_process  # noqa: E402
from scoreviz.metrics import mean_score_error  # noqa: E402
from scoreviz.models import ModelConfig  # noqa: E402
from scoreviz.training import TrainConfig, train  # noqa: E402

DIST, PROCESS = "eight_gaussians", "vp_linear"

# tanelp/tiny-diffusion's ddpm.py: MLP of width 128 with 3 hidden blocks, GELU, a 128-wide
# sinusoidal embedding of the time step, AdamW at lr 1e-3; the issue quotes batch 32. Trained
# here by our loop (same distribution, same process, same loss) so only the settings differ.
# Not reproduced: its residual blocks and its sinusoidal embedding of x (scale 25).
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
    out.append(table(["config", "budget s", "trained s", "steps", "σ²-score error"], rows))
    out += ["", table(["target error", "default s", "tiny-diffusion s", "speed-up"], [
        _reach_row(curves, target) for target in (0.05, 0.03)
    ])]  # fmt: skip
    out.append(f"\nThroughput: default {rates['default']:.0f} steps/s "
               f"(batch {configs['default'].batch_size}), tiny-diffusion style "
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
    """Each row: clear the page's cache, recompute for a new slider value, build the figure."""
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    from scoreviz.figures.dae import dae_reconstruction_figure, reconstruction_error_figure
    from scoreviz.figures.fields import score_difference_figure, score_field_figure
    from scoreviz.figures.forward import samples_density_figure
    from scoreviz.figures.loss import loss_vs_t_figure
    from scoreviz.figures.sampling import SamplingPanel, sampling_animation
    from scoreviz.forward import schedule_at, view_range
    from scoreviz.losses import WEIGHTINGS
    from scoreviz.samplers import SamplerConfig
    from scoreviz.ui import cache, compute

    dist, proc = get_distribution(DIST), get_process(PROCESS)
    res = train(TrainConfig(distribution=DIST, process=PROCESS))
    key = cache.model_key(res)
    models = {"default": res}
    keys = compute.model_keys(models)
    kinds = {"default": "learned", compute.EXACT: "exact"}
    rows = []

    def measure(view: str, compute_fn, build_fn, clear) -> None:
        def once():
            for c in clear:
                c.clear()
            return build_fn(compute_fn())

        ms, fig = median_ms(once, repeats)
        figs = fig if isinstance(fig, tuple) else (fig,)
        kb = sum(len(f.to_json()) for f in figs) / 1e3
        rows.append([view, f"{ms:.0f}", f"{kb:,.0f}"])

    t = 0.1
    xy = view_range(proc, t)
    measure(
        "Score field: 25×25 arrows ×2 + 48² density/error (t=0.1)",
        lambda: cache.score_field(key, res, DIST, dist, PROCESS, t),
        lambda f: (score_field_figure(f, xy, True), score_difference_figure(f, xy, True)),
        [cache.score_field],
    )
    s = schedule_at(proc, t)

    def forward_compute():
        return (
            cache.noised(DIST, dist, PROCESS, t, 1000, 0),
            cache.density_grid(DIST, dist, PROCESS, t, 120),
        )

    measure(
        "Data & forward: t slider, 120² exact density",
        forward_compute,
        lambda d: samples_density_figure(*d[0], *d[1], t, s["alpha"], s["sigma"], xy),
        [cache.noised, cache.density_grid],
    )
    sig = tuple(float(x) for x in np.geomspace(0.05, 2.0, 4))
    measure(
        "DAE: 4 σ panels × 120 points × 2 denoisers",
        lambda: compute.dae_panels(DIST, dist, PROCESS, keys, models, sig, 120, 0),
        lambda p: dae_reconstruction_figure(p, kinds),
        [compute.dae_panels],
    )
    measure(
        "DAE: reconstruction error vs σ (24 σ)",
        lambda: compute.dae_error(DIST, dist, PROCESS, keys, models),
        lambda df: reconstruction_error_figure(df, kinds, {}),
        [compute.dae_error],
    )
    ws = ("sigma2", "one")
    measure(
        "Loss vs t: 24 bins × 256 samples × 2 weightings + floors",
        lambda: (
            compute.loss_bins(key, res, DIST, dist, PROCESS, ws, 24, 256, 0),
            *compute.loss_floors(DIST, dist, PROCESS, ws, 24),
        ),
        lambda d: loss_vs_t_figure(d[0], d[1], d[2], WEIGHTINGS, ws),
        [compute.loss_bins, compute.loss_floors],
    )
    data = cache.samples(DIST, dist, 1000, 0)
    for name in ("reverse_sde", "pf_ode_heun", "annealed_langevin"):
        cfg = SamplerConfig(name=name, n_steps=200, n_particles=1000, n_frames=60)

        def sampling_compute(cfg=cfg):
            outs = {
                "learned": compute.sampling_run(key, res, DIST, dist, PROCESS, cfg),
                "exact": compute.sampling_run(None, None, DIST, dist, PROCESS, cfg),
            }
            return [
                SamplingPanel(
                    f"{r} score", r, o["frames"], o["field_xy"], o["field_score"], o["ranges"]
                )  # fmt: skip
                for r, o in outs.items()
            ]

        measure(
            f"Sampling: {name}, 1000 particles × 200 steps, learned + exact",
            sampling_compute,
            lambda panels: sampling_animation(panels, data=data),
            [compute.sampling_run],
        )
    out = [f"### 2. Interaction latency (median of {repeats}, cache cleared each time)", ""]
    out.append(table(["slider move (compute + figure build)", "ms", "figure JSON KB"], rows))
    return "\n".join(out)


# ----------------------------------------------------------------------------- 2b. memorisation
def memorisation_section() -> str:
    """Sampling page (reverse SDE, 1000 particles x 200 steps: learned, exact and memorising-optimum
    rows) for a model trained on the largest allowed training set, before and after the memorising
    optimum was bounded to mixture.MAX_MEMORISED points (before: the exact score of all of them).
    One run each (the 'before' column alone takes about a minute)."""
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    import scoreviz.mixture as mixture
    from scoreviz.samplers import SamplerConfig
    from scoreviz.training import MAX_N_TRAIN
    from scoreviz.ui import cache, compute

    dist = get_distribution(DIST)
    small = ModelConfig(width=64, depth=2)
    res = train(TrainConfig(distribution=DIST, process=PROCESS, model=small, steps=200,
                            n_train=MAX_N_TRAIN))  # fmt: skip
    pts = res.train_points.numpy()
    key, cfg = cache.model_key(res), SamplerConfig("reverse_sde", 200, 1000, 50)
    bounded = mixture.memorising_optimum

    def page(limit: int) -> dict[str, float]:
        mixture.memorising_optimum = lambda p: bounded(p, max_points=limit)
        out = {}
        try:
            for row in ("learned", "exact", "memorised"):
                compute.sampling_run.clear()
                learned = row == "learned"
                t0 = time.perf_counter()
                compute.sampling_run(
                    key if learned else None, res if learned else None, DIST, dist, PROCESS, cfg,
                    train_key=key + ":train", _train_points=pts, memorised=row == "memorised",
                )  # fmt: skip
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


def _ms(t0: float) -> float:
    return 1e3 * (time.perf_counter() - t0)


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and budgets")
    ap.add_argument(
        "--skip", nargs="*", default=[], choices=["training", "latency", "memorised", "cold"]
    )
    args = ap.parse_args()
    repeats = 3 if args.quick else 7
    budgets = [1.0, 2.0, 4.0] if args.quick else [1.0, 2.0, 4.0, 8.0]
    tiny_extra = [] if args.quick else [16.0, 32.0]
    torch.set_num_threads(1)  # what training and the app's computations use (measured best)
    print(f"# scoreviz benchmark — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)\n")  # fmt: skip
    sections = [
        ("training", lambda: training_section(budgets, tiny_extra)),
        ("latency", lambda: latency_section(repeats)),
        ("memorised", memorisation_section),
        ("cold", lambda: cold_start_section(repeats)),
    ]
    for name, fn in sections:
        if name in args.skip:
            continue
        with contextlib.redirect_stderr(io.StringIO()):
            text = fn()
        print(text + "\n", flush=True)


if __name__ == "__main__":
    main()
