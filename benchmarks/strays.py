"""Stray samples of trained models (issue 21): variants x training seeds x sampler seeds.

    .venv/bin/python benchmarks/strays.py --dists two_spirals word --seeds 0 1 2 --variants base

Each (variant, distribution, training seed) is trained once with one torch thread (two at a
time, `--jobs`), then `quality.assess` compares it with the exact score over quality.N_SEEDS
sampler seeds. Printed per variant and distribution: nats lost (mean over training seeds, the
spread is the range of the per-model means), excess strays in % of the samples (mean [min-max]
over training seeds), and the training time (mean, with the box's load). Variants are named
changes to the default TrainConfig (`VARIANTS`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from scoreviz import get_distribution, quality, training  # noqa: E402
from scoreviz.models import ModelConfig  # noqa: E402
from scoreviz.training import TrainConfig, train  # noqa: E402

VARIANTS: dict[str, dict] = {
    "base": {},
    "tail_stretch": {"tail_stretch": True},  # training.stretch_tail (off by default)
    "x0": {"model": ModelConfig(parameterization="x0")},
    "score": {"model": ModelConfig(parameterization="score")},
    "min_snr": {"weighting": "min_snr"},
    "vp_cosine": {"process": "vp_cosine"},
    "ve": {"process": "ve"},
    "sub_vp": {"process": "sub_vp"},
}
for _f, _k, _b in [
    (0.1, 1.5, 0.2),
    (0.1, 2.0, 0.2),
    (0.25, 1.5, 0.2),
    (0.05, 2.0, 0.3),
    (0.1, 1.5, 0.1),
    (0.2, 1.25, 0.2),
    (0.1, 1.5, 0.3),
    (0.05, 1.5, 0.2),
]:
    VARIANTS[f"tail{_f}x{_k}<{_b}"] = {}


# Prototype hooks (not TrainConfig fields): "tail": (fraction, factor, sigma_below) inflates the
# noise of that fraction of the batch's samples whose sigma_t < sigma_below by `factor`, with the
# ordinary DSM target (x_t - alpha x0) / sigma_t.
HOOKS: dict[str, dict] = {}
_PLAIN_STEP = training._step  # hooks wrap this, never an earlier hook (pool workers are reused)


for _name in VARIANTS:
    if _name.startswith("tail"):
        _f, _rest = _name[4:].split("x")
        _k, _b = _rest.split("<")
        HOOKS[_name] = {"tail": (float(_f), float(_k), float(_b))}


def _tail_step(fraction, factor, below):
    plain = _PLAIN_STEP

    def step(model, opt, lr, ema, batch, weighting):
        x0, t, eps = batch
        sigma = model.process.sigma(t)
        pick = (torch.rand(t.shape) < fraction) & (sigma < below)
        eps = torch.where(pick[:, None], eps * factor, eps)
        return plain(model, opt, lr, ema, (x0, t, eps), weighting)

    training._step = step


def _stretch_step(r0, k, below):
    """eps's radius r beyond r0 becomes r0 + k (r - r0) where sigma_t < below."""
    plain = _PLAIN_STEP

    def step(model, opt, lr, ema, batch, weighting):
        x0, t, eps = batch
        r = eps.norm(dim=1, keepdim=True)
        grow = torch.where(r > r0, (r0 + k * (r - r0)) / r, torch.ones_like(r))
        low = (model.process.sigma(t) < below)[:, None]
        eps = torch.where(low, eps * grow, eps)
        return plain(model, opt, lr, ema, (x0, t, eps), weighting)

    training._step = step


for _r0, _k, _b in [
    (2.0, 2.0, 0.2),
    (2.0, 1.5, 0.2),
    (2.0, 3.0, 0.2),
    (1.5, 2.0, 0.2),
    (2.0, 2.0, 9.0),
]:
    _name = f"stretch{_r0}x{_k}<{_b}"
    VARIANTS[_name], HOOKS[_name] = {}, {"stretch": (_r0, _k, _b)}


def one(variant: str, dist: str, seed: int) -> dict:
    torch.set_num_threads(1)
    training._step = _PLAIN_STEP
    hook = HOOKS.get(variant, {})
    if "tail" in hook:
        _tail_step(*hook["tail"])
    if "stretch" in hook:
        _stretch_step(*hook["stretch"])
    config = dataclasses.replace(TrainConfig(distribution=dist, seed=seed), **VARIANTS[variant])
    result = train(config)
    q = quality.assess(
        result.score_fn(),
        get_distribution(dist),
        result.model.process,
        cache_key=(dist, config.process),
    )
    return {
        "variant": variant,
        "dist": dist,
        "seed": seed,
        "nats": q.nats_lost,
        "spread": q.nats_spread,
        "excess": 100 * q.excess_strays,
        "strays": q.strays,
        "expected": q.expected_strays,
        "energy": q.energy_ratio,
        "elapsed": result.elapsed,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dists", nargs="+", default=["two_spirals", "word"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=["base"])
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    jobs = [(v, d, s) for v in args.variants for d in args.dists for s in args.seeds]
    t0 = time.time()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(one, *zip(*jobs, strict=True)))
    for r in rows:
        print(
            f"  {r['variant']:>12} {r['dist']:>12} seed {r['seed']}: {r['nats']:.3f} nats "
            f"(±{r['spread'] / 2:.3f}), strays {r['strays']} vs exact {r['expected']} "
            f"-> excess {r['excess']:.2f} %, "
            f"energy {r['energy']:.2f}x, {r['elapsed']:.1f} s"
        )
    load = os.getloadavg()[0]
    print(f"| variant | distribution | nats lost | excess strays % | train s (load {load:.1f}) |")
    print("|---|---|---|---|---|")
    for v in args.variants:
        for d in args.dists:
            rs = [r for r in rows if r["variant"] == v and r["dist"] == d]
            nats = [r["nats"] for r in rs]
            ex = [r["excess"] for r in rs]
            print(
                f"| {v} | {d} | {statistics.mean(nats):.3f} [{min(nats):.3f}–{max(nats):.3f}] | "
                f"{statistics.mean(ex):.2f} [{min(ex):.2f}–{max(ex):.2f}] | "
                f"{statistics.mean(r['elapsed'] for r in rs):.1f} |"
            )
    print(f"wall {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
