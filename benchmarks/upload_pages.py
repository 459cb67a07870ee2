"""Page times for a 20,000-point upload (issue 13) — measured and printed, never asserted.

    .venv/bin/python benchmarks/upload_pages.py                  # 20,000 points, 300 steps
    .venv/bin/python benchmarks/upload_pages.py --points 5000 --pages forward,sampling

A CSV of curves (a circle, a spiral, a sine) and blobs is uploaded through the Train page's file
uploader in a streamlit AppTest (parse + leave-one-out bandwidth + merge to <= 2,000 components,
the real `_accept_upload`), a model of the default TrainConfig (steps from `--steps`) is trained
on the upload's mixture and injected as the active model, then each page is opened cold
(`st.cache_data` / `st.cache_resource` entries of the pages cleared first) and its `at.run()`
timed. The upload's own steps are also timed outside Streamlit. The issue's target: every page
answers in <= 2 s on the 2-core box. Printed: a Markdown table, with `uptime`'s load before and
after, since the box is shared.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import scoreviz  # noqa: E402,F401  (thread policy first)

PAGES = {
    "forward": ("Data & forward", "views/forward.py"),
    "score_field": ("Score field", "views/score_field.py"),
    "dae": ("DAE reconstructions", "views/dae.py"),
    "loss": ("Loss vs t", "views/loss.py"),
    "sampling": ("Sampling", "views/sampling.py"),
}


def curves_and_blobs(n: int, seed: int = 0) -> bytes:
    """A CSV of `n` points: 60 % on three thin curves, 40 % in four blobs."""
    rng = np.random.default_rng(seed)
    k = n // 5
    th = rng.uniform(0, 2 * np.pi, k)
    circle = np.c_[np.cos(th), np.sin(th)] * 3 + [-4, 3]
    s = rng.uniform(0.5, 3 * np.pi, k)
    spiral = np.c_[s * np.cos(s), s * np.sin(s)] * 0.4 + [4, 3]
    x = rng.uniform(-6, 6, k)
    sine = np.c_[x, 1.2 * np.sin(1.5 * x) - 4]
    m = n - 3 * k
    centres = np.array([[-5.0, -1.0], [0.0, 0.0], [5.0, -1.0], [0.0, 6.0]])
    blobs = centres[rng.integers(0, 4, m)] + 0.35 * rng.normal(size=(m, 2))
    pts = np.concatenate([circle, spiral, sine, blobs]) + 0.03 * rng.normal(size=(n, 2))
    rng.shuffle(pts)
    return ("x,y\n" + "".join(f"{a:.5f},{b:.5f}\n" for a, b in pts)).encode()


def load() -> str:
    out = subprocess.run(["uptime"], capture_output=True, text=True).stdout
    return out.split("load average:")[-1].strip()


def clear_caches() -> None:
    import streamlit as st

    st.cache_data.clear()


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=20_000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--pages", default=",".join(PAGES))
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per AppTest run")
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from scoreviz import data_io, training
    from tests.apptest_utils import assert_no_exception, inject_model, make_app, open_page

    load_before = load()
    csv = curves_and_blobs(args.points)
    rows: list[tuple[str, float, str]] = []

    # The upload's steps outside Streamlit (the same calls as ui/transfer._accept_upload).
    parsed, t_parse = timed(lambda: data_io.parse_point_cloud(csv, "curves.csv"))
    h, t_bw = timed(lambda: data_io.select_bandwidth(parsed.points))
    mix, t_merge = timed(lambda: data_io.reduce_components(parsed.points, h))
    rows += [
        ("upload: parse", t_parse, f"{len(csv) / 1e6:.2f} MB CSV"),
        ("upload: bandwidth (LOO)", t_bw, f"h = {h:.3g}"),
        ("upload: merge", t_merge, f"{len(mix.weights)} components"),
    ]

    # The same upload through the app: Train page, file uploader, rerun.
    at = make_app(timeout=args.timeout)
    open_page(at, "views/train.py")
    clear_caches()
    at.file_uploader(key="upload_file").set_value(("curves.csv", csv, "text/csv"))
    _, t_up = timed(at.run)
    assert_no_exception(at)
    up = at.session_state["upload"]
    rows.append(("upload through Train page (AppTest run)", t_up, f"{up.n_points} points"))

    cfg = training.TrainConfig(distribution="upload:" + up.sha, steps=args.steps)
    result, t_train = timed(lambda: training.train(cfg, dist=up.dist))
    inject_model(at, result, "bench model")
    at.session_state["distribution"] = "upload"

    for key in args.pages.split(","):
        title, path = PAGES[key]
        clear_caches()
        at.switch_page(path)
        _, dt = timed(at.run)
        assert_no_exception(at)
        _, warm = timed(at.run)
        rows.append((title, dt, f"warm rerun {warm:.2f} s"))
        print(f"  {title}: {dt:.2f} s cold, {warm:.2f} s warm", file=sys.stderr, flush=True)

    print(
        f"\n{args.points:,} points ({len(mix.weights)} components), model: default TrainConfig, "
        f"{args.steps} steps (trained in {t_train:.1f} s, not in the table)\n"
    )
    print("| step / page (cold) | seconds | note |\n| --- | ---: | --- |")
    for name, secs, note in rows:
        flag = " **over 2 s**" if secs > 2 and not name.startswith("upload:") else ""
        print(f"| {name} | {secs:.2f}{flag} | {note} |")
    print(f"\nload average (1, 5, 15 min) before: {load_before}; after: {load()} (2 cores)")


if __name__ == "__main__":
    main()
