"""Time what a slider move on the core pages costs: compute, figure build, JSON size.

    .venv/bin/python scripts/bench_views.py            # trains a small model first (~3 s)

Runs torch on one thread, as the app's cached calls do (scoreviz.ui.cache.one_thread). Prints
the best of 5 per row in milliseconds, and the size of the figure JSON sent to the browser.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoreviz import get_distribution, get_process  # noqa: E402
from scoreviz.figures.fields import score_difference_figure, score_field_figure  # noqa: E402
from scoreviz.figures.forward import (  # noqa: E402
    forward_animation,
    samples_density_figure,
    schedule_figure,
)
from scoreviz.forward import (  # noqa: E402
    forward_trajectory,
    schedule_at,
    schedule_table,
    view_range,
)
from scoreviz.grids import log_density_grid, make_grid, score_field  # noqa: E402
from scoreviz.models import ModelConfig  # noqa: E402
from scoreviz.training import TrainConfig, train  # noqa: E402


def best(fn, n: int = 5):
    """(best wall time in ms over n calls, the last result)."""
    out, times = None, []
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times), out


def row(view: str, dist: str, t: str, compute, build) -> None:
    """Time compute() then build(data) -> figures; print one line."""
    c_ms, data = best(compute)
    b_ms, figs = best(lambda: build(data))
    kb = sum(len(f.to_json()) for f in figs) / 1e3
    print(f"{view:30s} {dist:16s} {t:>6s} {c_ms:8.1f} {b_ms:7.1f} {kb:6.0f}")


def score_field_rows(proc, res) -> None:
    for name in ("eight_gaussians", "two_moons", "word"):
        dist = get_distribution(name)
        for t in (proc.t_min, 0.25, 1.0):
            xy = view_range(proc, t)
            row(
                "score field (2 figures)",
                name,
                f"{t:.3f}",
                lambda d=dist, t=t, xy=xy: score_field(d, proc, t, res.score_fn(), xy),
                lambda f, xy=xy: (score_field_figure(f, xy), score_difference_figure(f, xy)),
            )


def forward_rows(proc) -> None:
    t = 0.25
    s, xy = schedule_at(proc, t), view_range(proc, t)
    grid = make_grid(120, xy)
    for name in ("eight_gaussians", "two_moons", "word"):
        dist = get_distribution(name)

        def compute(d=dist):
            dens = np.exp(log_density_grid(d, proc, t, grid))
            return dens, forward_trajectory(d, proc, [0.0, t], n=600)

        def build(data):
            dens, traj = data
            fig = samples_density_figure(
                traj[0], traj[1], grid, dens, t, s["alpha"], s["sigma"], xy
            )
            return fig, schedule_figure(schedule_table(proc), t)

        row("forward t slider (2 figures)", name, f"{t:.3f}", compute, build)
    times = np.linspace(0, 1, 26)
    ranges = np.array([view_range(proc, x) for x in times])
    dist = get_distribution("eight_gaussians")
    row(
        "forward animation (26 frames)",
        "eight_gaussians",
        "",
        lambda: forward_trajectory(dist, proc, times, n=600),
        lambda traj: (forward_animation(traj, times, ranges),),
    )


def main() -> None:
    torch.set_num_threads(1)
    proc = get_process("vp_linear")
    print("training a 128x3 model, 1000 steps ...", flush=True)
    res = train(TrainConfig(steps=1000, model=ModelConfig()))
    print(f"{'view':30s} {'dist':16s} {'t':>6s} {'compute':>8s} {'build':>7s} {'KB':>6s}")
    score_field_rows(proc, res)
    forward_rows(proc)


if __name__ == "__main__":
    main()
