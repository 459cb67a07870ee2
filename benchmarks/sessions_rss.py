"""Server memory when sessions upload, train and close — measured and printed, never asserted.

    .venv/bin/python benchmarks/sessions_rss.py                 # 12 sessions, 90 s after close
    .venv/bin/python benchmarks/sessions_rss.py --sessions 3 --watch 60 --steps 200

Starts `streamlit run app.py` on a free loopback port and drives it with headless Chromium
(/usr/bin/chromium). Each session is its own browser context: it opens Train, uploads its own
CSV (`--points` points of a random mixture), trains a model (Steps set to `--steps`, the rest of
the form at its defaults) and waits until the model is in the sidebar. All sessions stay open
until the last has trained; then every tab closes and the server's RSS (VmRSS of the streamlit
process) is sampled every `--every` seconds for `--watch` seconds.

Printed: RSS at server start, baseline (after one warm-up tab on Train has loaded torch and
closed), peak while the sessions were open, and RSS after the close; the issue's target is RSS
within 20 % of baseline within a minute of closing. Disconnected sessions are kept for
`server.disconnectedSessionTTL` (30 s) for a reconnect, then shut down (scoreviz.ui.sessions):
expect the drop after ~30-40 s. Run it on a quiet machine; the figure is a benchmark, not a test.

The server runs with MALLOC_ARENA_MAX=2, as README's run command says (`--arenas 0`: glibc's
default of 8 arenas per core, whose fragmented arenas kept most of the growth after the close:
4 sessions x 300 points, 348 -> 656 peak -> 572 MB, +65 %, against +19 % with 2 arenas). At the
end the Streamlit caches' sizes are printed (from /_stcore/metrics).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser_utils import CHROMIUM, CHROMIUM_ARGS, SIDEBAR, streamlit_server  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MB (from /proc, no psutil needed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Sampler:
    """Samples a process's RSS every `every` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, every: float = 1.0) -> None:
        self.pid, self.every, self.peak = pid, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop.wait(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def point_cloud(n: int, seed: int) -> bytes:
    """A CSV of `n` points from a random 5-component mixture (each session its own data)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(5, 2))
    pts = centres[rng.integers(0, 5, n)] + 0.4 * rng.normal(size=(n, 2))
    return ("x,y\n" + "".join(f"{x:.4f},{y:.4f}\n" for x, y in pts)).encode()


def cache_mb(url: str) -> dict[str, float]:
    """MB held per st.cache_data / st.cache_resource function (the server's /_stcore/metrics)."""
    import urllib.request

    text = urllib.request.urlopen(url + "/_stcore/metrics", timeout=10).read().decode()
    sizes: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r'cache_memory_bytes\{cache_type="(\w+)",cache="([^"]+)"\} (\S+)', line)
        if m:
            name = f"{m[1]}:{m[2].rsplit('.', 1)[-1]}"
            sizes[name] = sizes.get(name, 0.0) + float(m[3]) / 2**20
    return sizes


def wait_idle(page, timeout: float = 120.0) -> None:
    """Until the script run has finished (the status widget gone on two checks)."""
    deadline, stable = time.monotonic() + timeout, 0
    while stable < 2 and time.monotonic() < deadline:
        busy = page.locator('[data-testid="stStatusWidget"]').count() > 0
        stable = 0 if busy else stable + 1
        page.wait_for_timeout(500)


def open_session(browser, url: str, i: int, args) -> object:
    """A new tab that uploads its CSV and trains a model; returns its (open) context."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.goto(url + "/train")
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=120_000)
    wait_idle(page)
    csv = point_cloud(args.points, seed=i)
    page.locator('input[type="file"]').nth(0).set_input_files(
        {"name": f"cloud{i}.csv", "mimeType": "text/csv", "buffer": csv}
    )
    page.get_by_text("Loaded").last.wait_for(timeout=120_000)
    wait_idle(page)
    page.get_by_label("Steps").fill(str(args.steps))
    page.get_by_label("Steps").press("Tab")
    page.get_by_role("button", name="Train", exact=True).click()
    page.locator(SIDEBAR).get_by_text("Active model", exact=True).first.wait_for(
        timeout=args.train_timeout * 1000
    )
    wait_idle(page)
    return ctx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=12)
    ap.add_argument("--points", type=int, default=3000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--watch", type=float, default=90.0, help="seconds sampled after close")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between printed samples")
    ap.add_argument("--train-timeout", type=float, default=300.0)
    ap.add_argument("--arenas", type=int, default=2, help="MALLOC_ARENA_MAX (0: glibc default)")
    args = ap.parse_args()
    if args.arenas:  # inherited by the server (glibc reads it at start-up only)
        os.environ["MALLOC_ARENA_MAX"] = str(args.arenas)
    else:
        os.environ.pop("MALLOC_ARENA_MAX", None)
    from playwright.sync_api import sync_playwright

    with streamlit_server(with_pid=True) as (url, pid), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        start = rss_mb(pid)
        warm = browser.new_context()
        page = warm.new_page()
        page.goto(url + "/train")
        page.get_by_role("button", name="Train", exact=True).wait_for(timeout=120_000)
        wait_idle(page)
        warm.close()
        time.sleep(5)
        baseline = rss_mb(pid)
        print(f"RSS at start {start:.0f} MB, baseline (after a warm-up tab) {baseline:.0f} MB")
        with Sampler(pid) as sampler:
            t0, contexts = time.monotonic(), []
            for i in range(args.sessions):
                contexts.append(open_session(browser, url, i, args))
                print(f"  session {i + 1}: trained, RSS {rss_mb(pid):.0f} MB", flush=True)
            print(f"{args.sessions} sessions uploaded and trained in {time.monotonic() - t0:.0f} s")
            for ctx in contexts:
                ctx.close()
            closed = time.monotonic()
            open_peak = sampler.peak
            print(f"peak while open {open_peak:.0f} MB; tabs closed, sampling {args.watch:.0f} s")
            after = []
            while (dt := time.monotonic() - closed) <= args.watch:
                after.append((dt, rss_mb(pid)))
                print(f"  +{dt:5.1f} s  RSS {after[-1][1]:.0f} MB", flush=True)
                time.sleep(args.every)
            caches = cache_mb(url)
        browser.close()
    within = [dt for dt, r in after if r <= 1.2 * baseline]
    last = after[-1][1]
    print(
        f"\nsessions {args.sessions} x {args.points} points, {args.steps} steps: baseline "
        f"{baseline:.0f} MB, peak {sampler.peak:.0f} MB, {after[-1][0]:.0f} s after close "
        f"{last:.0f} MB ({100 * (last / baseline - 1):+.0f} %); "
        + (f"within 20 % of baseline after {within[0]:.0f} s" if within else "never within 20 %")
    )
    top = sorted(caches.items(), key=lambda kv: -kv[1])
    print(
        f"Streamlit caches at the end: {sum(caches.values()):.1f} MB; largest: "
        + ", ".join(f"{k} {v:.1f}" for k, v in top[:6])
    )


if __name__ == "__main__":
    main()
