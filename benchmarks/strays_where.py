"""Where issue 21's remaining stray samples form: a particle-by-particle diagnosis.

    .venv/bin/python benchmarks/strays_where.py [--dist two_spirals] [--seed 0] [--tail]

Trains the default model (or takes `--variant` from benchmarks/strays.py), runs the reverse SDE
(quality's 200 steps, 2,000 particles, sampler seeds 0-2) with the learned and with the exact
score from the same noise, every step recorded, and prints:
- for the learned run's strays (below the data's 0.1 % log-density quantile) that the exact run
  with the same noise does not have: at each of the last steps, t, sigma_t, the particle's
  distance from the nearest component mean in arm widths (sqrt(s^2 + sigma_t^2 / alpha_t^2)
  after dividing x by alpha_t), and the learned / exact score length there;
- the sampler's side: stray counts of the exact score with 200 and 1,000 steps, and of the exact
  score shortened to `--weak` of its length below sigma_t = 0.08 (a learned score that is right
  except for being too weak at the end).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import strays  # noqa: E402  (the variants and their training hooks)
import torch  # noqa: E402

from scoreviz import get_distribution, quality  # noqa: E402
from scoreviz.samplers import SamplerConfig, sample  # noqa: E402
from scoreviz.score import exact_score_fn  # noqa: E402
from scoreviz.training import TrainConfig, train  # noqa: E402


def run(score_fn, process, seed, steps=quality.N_STEPS, n=2000):
    cfg = SamplerConfig(
        name="reverse_sde", n_steps=steps, n_particles=n, n_frames=steps + 1, seed=seed
    )
    return sample(score_fn, process, cfg)


def widths_off(x, t, dist, process):
    """Distance of x / alpha_t from the nearest component mean, in that component's widths."""
    t64 = torch.tensor(float(t), dtype=torch.float64)
    a, s = float(process.alpha(t64)), float(process.sigma(t64))
    y = torch.as_tensor(x, dtype=torch.float64) / a
    d = torch.cdist(y, dist.means)  # (n, K)
    w = torch.sqrt(dist.stds**2 + (s / a) ** 2)
    return (d / w).min(1).values


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dist", default="two_spirals")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", default="base")
    ap.add_argument("--weak", type=float, default=0.65)
    ap.add_argument("--last", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    dist = get_distribution(args.dist)
    row_variant = strays.VARIANTS[args.variant]
    hook = strays.HOOKS.get(args.variant, {})
    if "tail" in hook:
        strays._tail_step(*hook["tail"])
    if "stretch" in hook:
        strays._stretch_step(*hook["stretch"])
    config = dataclasses.replace(TrainConfig(distribution=args.dist, seed=args.seed), **row_variant)
    result = train(config)
    process = result.model.process
    exact = exact_score_fn(dist, process)
    learned = result.score_fn()
    cut = quality.stray_cut(dist)
    ratios_all = []
    total = {"learned": 0, "exact": 0, "excess": 0}
    for seed in range(quality.N_SEEDS):
        lt, et = run(learned, process, seed), run(exact, process, seed)
        lp = dist.log_prob(torch.as_tensor(lt.final, dtype=torch.float64))
        ep = dist.log_prob(torch.as_tensor(et.final, dtype=torch.float64))
        total["learned"] += int((lp < cut).sum())
        total["exact"] += int((ep < cut).sum())
        mine = torch.nonzero((lp < cut) & (ep >= cut)).flatten()
        total["excess"] += len(mine)
        for k in range(len(lt.times) - 1 - args.last, len(lt.times)):
            t = float(lt.times[k])
            x = torch.as_tensor(lt.xs[k][mine.numpy()], dtype=torch.float64)
            off = widths_off(x, t, dist, process)
            off_exact = widths_off(et.xs[k][mine.numpy()], t, dist, process)
            sl, se = learned(x, t), exact(x, t)
            ratio = sl.norm(dim=1) / se.norm(dim=1)
            cos = (sl * se).sum(1) / (sl.norm(dim=1) * se.norm(dim=1))
            sig = float(process.sigma(torch.tensor(t, dtype=torch.float64)))
            if seed == 0 or k == len(lt.times) - 1:
                print(
                    f"seed {seed} t={t:.4f} sigma={sig:.3f}: {len(mine)} strays at "
                    f"{off.median():.1f} widths off (the exact run's "
                    f"{off_exact.median():.1f}); "
                    f"learned/exact score length {ratio.median():.2f} "
                    f"[{ratio.quantile(0.1):.2f}-{ratio.quantile(0.9):.2f}], cos {cos.median():.2f}"
                )
            if sig < 0.08:
                ratios_all.append(ratio)
    print("strays over", quality.N_SEEDS, "seeds:", total)
    r = torch.cat(ratios_all)
    print(f"learned/exact length at the strays, sigma_t < 0.08: median {r.median():.2f}")
    # the sampler's side

    def count(score_fn, steps=quality.N_STEPS) -> int:
        finals = [run(score_fn, process, s, steps).final for s in range(quality.N_SEEDS)]
        x = torch.as_tensor(np.concatenate(finals), dtype=torch.float64)
        return int((dist.log_prob(x) < cut).sum())

    def weak(x, t):
        tt = torch.as_tensor(t, dtype=torch.float64)
        f = torch.where(process.sigma(tt) < 0.08, args.weak, 1.0)
        return exact(x, t) * f.reshape(-1, 1)

    of = f"of {2000 * quality.N_SEEDS}"
    for steps in (200, 1000):
        print(
            f"{steps} steps: exact score {count(exact, steps)} strays {of}, "
            f"learned {count(learned, steps)}"
        )
    print(f"exact score x {args.weak} below sigma_t 0.08, 200 steps: {count(weak)} strays {of}")


if __name__ == "__main__":
    main()
