"""Issue 24's targets for drawn data: a shape of a few strokes -> a trained model in <= 15 s, and
the exact panel within 1.25x the two-sample W2 floor of the drawn shape.

    python benchmarks/sketch_target.py [--seeds 3]

The drawing is a smiley on the Train page's 340 px canvas (a face circle, two eye taps, a smile
arc: four strokes), as the browser test drags it. For each seed it times what the app does
after the last stroke (canvas JSON -> code -> points -> leave-one-out width -> mixture; the
default training; the quality check `assess_result` the app runs before the model is shown),
(wall clock, and the CPU seconds of its one thread: the wall clock of an idle core), and
measures W2 against held-out points of the drawn shape (uniform along the strokes, a tap
uniform in its disc), each a mean over W2_DRAWS draws of W2_N points:
  floor   another draw of the shape itself (two samples of one law)
  mixture samples of the exact (smoothed) mixture
  exact   the exact panel: the reverse SDE (200 steps) with the exact score
  learned the learned panel: the same sampler and seeds with the trained model's score
Prints mean +- standard deviation over the seeds, with the machine's load.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from scoreviz import sketch  # noqa: E402
from scoreviz.metrics import wasserstein2  # noqa: E402
from scoreviz.quality import assess_result  # noqa: E402
from scoreviz.samplers import SamplerConfig, sample  # noqa: E402
from scoreviz.score import exact_score_fn  # noqa: E402
from scoreviz.training import TrainConfig, train  # noqa: E402

CANVAS = 340
W2_N, W2_DRAWS = 600, 5


def smiley_strokes() -> list[np.ndarray]:
    """Four strokes in canvas pixels as a mouse draws them (one point per mouse move)."""
    a = np.linspace(0, 2 * math.pi, 64)
    face = np.stack([170 + 120 * np.cos(a), 170 + 120 * np.sin(a)], 1)
    b = np.linspace(0.2 * math.pi, 0.8 * math.pi, 24)
    smile = np.stack([170 + 70 * np.cos(b), 175 + 60 * np.sin(b)], 1)
    return [face, np.array([[125.0, 130.0]]), np.array([[215.0, 130.0]]), smile]


def canvas_json(strokes: list[np.ndarray]) -> dict:
    """What the canvas returns for these strokes: Fabric paths (M, Q through midpoints, L)."""
    objects = []
    for s in strokes:
        if len(s) == 1:
            path = [["M", *s[0]], ["L", *s[0]]]
        else:
            mids = (s[:-1] + s[1:]) / 2
            path = [["M", *s[0]]] + [["Q", *c, *m] for c, m in zip(s[:-1], mids, strict=True)]
            path.append(["L", *s[-1]])
        lo, hi = s.min(0), s.max(0)
        centre, size = (lo + hi) / 2, hi - lo
        objects.append({"type": "Path", "originX": "center", "originY": "center",
                        "left": float(centre[0]), "top": float(centre[1]),
                        "width": float(size[0]), "height": float(size[1]), "strokeWidth": 6,
                        "path": [[c[0], *map(float, c[1:])] for c in path]})  # fmt: skip
    return {"objects": objects}


def mean_w2(samples: np.ndarray, ref: np.ndarray) -> float:
    chunks = [samples[i * W2_N : (i + 1) * W2_N] for i in range(W2_DRAWS)]
    return float(np.mean([wasserstein2(c, ref) for c in chunks]))


def run(seed: int) -> dict:
    c0 = time.thread_time()  # this thread's CPU seconds: what an idle core would take (1 thread)
    t0 = time.perf_counter()
    code = sketch.encode_strokes(
        sketch.canvas_strokes(canvas_json(smiley_strokes())), CANVAS, CANVAS
    )
    sk = sketch.from_code(code)
    h, dist = sketch.to_distribution(sk)
    t_data = time.perf_counter() - t0
    config = TrainConfig(distribution=sk.key, seed=seed)
    t1 = time.perf_counter()
    result = train(config, dist=dist)
    t_train = time.perf_counter() - t1
    t2 = time.perf_counter()
    result.quality = assess_result(result, dist)
    t_assess = time.perf_counter() - t2
    cpu = time.thread_time() - c0
    ref = sketch.shape_sample(code, W2_N, seed=100 + seed)
    floor = mean_w2(sketch.shape_sample(code, W2_N * W2_DRAWS, seed=200 + seed), ref)
    gen = torch.Generator().manual_seed(300 + seed)
    mix = dist.sample(W2_N * W2_DRAWS, gen, dtype=torch.float64).numpy()
    cfg = SamplerConfig(name="reverse_sde", n_steps=200, n_frames=2, seed=400 + seed,
                        n_particles=W2_N * W2_DRAWS)  # fmt: skip
    exact = np.asarray(
        sample(exact_score_fn(dist, result.model.process), result.model.process, cfg).xs[-1]
    )
    learned = np.asarray(sample(result.score_fn(), result.model.process, cfg).xs[-1])
    learned = learned[np.isfinite(learned).all(1)]
    return {
        "data s": t_data,
        "train s": t_train,
        "assess s": t_assess,
        "to model s": t_data + t_train + t_assess,
        "to model CPU s": cpu,
        "h": h,
        "floor W2": floor,
        "mixture/floor": mean_w2(mix, ref) / floor,
        "exact panel/floor": mean_w2(exact, ref) / floor,
        "learned panel/floor": mean_w2(learned, ref) / floor,
        "nats lost": result.quality.nats_lost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load before: {os.getloadavg()}")
    rows = [run(s) for s in range(args.seeds)]
    print(f"load after: {os.getloadavg()}")
    for key in rows[0]:
        v = np.array([r[key] for r in rows])
        spread = v.std(ddof=1) if len(v) > 1 else 0.0
        print(f"{key:>20}: {v.mean():.4g} +- {spread:.2g}  {np.round(v, 4)}")


if __name__ == "__main__":
    main()
