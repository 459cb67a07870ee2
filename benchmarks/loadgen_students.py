"""A lecture as students see it: diverse, open-loop protocol students plus real Chromium probes.

    .venv/bin/python benchmarks/loadgen_students.py --replicas 1 2 --sessions 16 32 --repeat 2
    .venv/bin/python benchmarks/loadgen_students.py --replicas 1 --sessions 8 --minutes 1 --probes 1

Each cell (replicas, N, start) is a fresh hall (`deploy/start.sh` through `loadgen_hall.Hall`,
HAProxy in front even of one replica, as the README says to serve one), so no run inherits an
earlier run's caches. *cold*: an empty model store, nothing imported yet. *warm*: the README's
warm step (`scripts/warm.py`'s store, given with `--warm-store`, copied in) and one visit per
replica before the students come.

N students: `--probes` real Chromium tabs, and N - probes protocol students
(`loadgen.StreamlitSession`, one websocket each, as the browser speaks). Every student:

- **differs**: its own settings from a realistic mix (`pick_settings`: half follow the
  lecturer's defaults, the others pick their own data, process, seed, sampler, steps and
  particles), sent in the address as a shared link would; its own random stream from the run's
  seed (`--seed`, new each run), so no t path repeats across runs or N;
- **arrives open-loop**: arrivals are a Poisson process over `--ramp` s; then actions come at
  Poisson times, `--think` s apart on average, whatever the server's speed; each action's
  latency runs from its *scheduled* time, so a slow server's queue is counted;
- **fetches the static files** on arrival (the page, the files it names and Plotly's bundle,
  gzip accepted, as a browser's first visit; `static` row), then opens Home and Score field;
- **acts**: moves t (a key press, sent at once even while its previous rerun runs: the server
  interrupts that rerun, as for a browser), sometimes three presses 0.15 s apart (`burst`, the
  last one timed), opens Sampling and goes back; a share (`--train-share`) trains its own
  settings once at a random time, polling twice a second while it trains as the browser does;
- **fails loudly**: an answer not received within `--timeout` s (training: `--train-timeout`)
  counts in the percentiles as the time waited and in `failed`, and with any exception or error
  shown on a page, makes the exit status 1.

Probes (Chromium, playwright, one thread each) do what a student does with real keys and clicks
and time what the student sees: `key` = arrow key on the t slider -> the chart's title shows
the new t; `sampling` = click the Sampling link -> its chart drawn; `score_field` = back;
`first_visit` = the page opened to the chart drawn; `train` (`--probe-train`) = Home's button ->
"is now active".

The servers' CPU time (every replica's process, from /proc) over the lecture gives CPU-s per
student per lecture minute. Output: a Markdown table per cell, a summary table with the
medians over repeats, and `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import statistics
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
import loadgen_hall  # noqa: E402
from loadgen import Interaction, StreamlitSession, percentile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------- the mix
# What students pick when they do not follow the lecturer (weights: common choices first).
DATA = {
    "eight_gaussians": 3,
    "two_moons": 3,
    "swiss_roll": 2,
    "checkerboard": 2,
    "rings": 1,
    "pinwheel": 1,
    "two_spirals": 1,
    "grid": 1,
}
PROCESSES = {"vp_linear": 4, "vp_cosine": 2, "ve": 2, "sub_vp": 1}
SAMPLERS = {"reverse_sde": 4, "pf_ode_heun": 2, "ddim": 2, "ddpm": 1, "pc": 1}
STEPS = {50: 1, 100: 2, 200: 3}
PARTICLES = {500: 1, 1000: 3, 2000: 1}


def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def pick_settings(rng: random.Random, follow: float) -> dict[str, str]:
    """A student's address parameters: {} (the lecturer's defaults) with probability `follow`,
    else its own data, process, seed, sampler, steps and particles."""
    if rng.random() < follow:
        return {}
    return {
        "data": _pick(rng, DATA),
        "process": _pick(rng, PROCESSES),
        "seed": str(rng.randrange(1, 1000)),
        "sampler": _pick(rng, SAMPLERS),
        "steps": str(_pick(rng, STEPS)),
        "particles": str(_pick(rng, PARTICLES)),
    }


def query(settings: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in settings.items())


# ----------------------------------------------------------------------------- static files
STATIC_REF = re.compile(r'(?:src|href)="\./(static/[^"]+)"')


def static_paths() -> list[str]:
    """Plotly's bundle (the first chart loads it): the largest file of a first visit, which the
    page does not name (Streamlit loads it on demand)."""
    import streamlit

    js = Path(streamlit.__file__).parent / "static" / "static" / "js"
    return [f"static/js/{p.name}" for p in js.glob("PlotlyChart.*.js")]


def first_visit_files(url: str, cookies: dict[str, str]) -> tuple[int, int]:
    """Fetch "/" and the static files a first visit needs, as a browser (gzip accepted);
    returns (requests, bytes received)."""
    headers = {
        "Accept-Encoding": "gzip",
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
    }

    def get(path: str) -> bytes:
        req = urllib.request.Request(f"{url}/{path}", headers=headers)
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.read()

    page = get("")
    paths = sorted(set(STATIC_REF.findall(page.decode(errors="replace")))) + static_paths()
    total = len(page) + sum(len(get(p)) for p in paths)
    return 1 + len(paths), total


# ----------------------------------------------------------------------------- a protocol student
@dataclass
class Plan:
    minutes: float  # lecture length after the ramp
    ramp: float  # arrivals spread over this many seconds (Poisson)
    think: float  # mean seconds between a student's actions (Poisson)
    train_share: float
    follow: float
    timeout: float
    train_timeout: float


@dataclass
class Student:
    """One protocol student: a session and its own random stream."""

    session: StreamlitSession
    rng: random.Random
    settings: dict[str, str]
    trains: bool
    page: str = "score_field"
    pending: asyncio.Task | None = None
    interrupted: int = 0
    errors: list[str] = field(default_factory=list)
    train_timeout: float = 600.0  # seconds a training (queue included) may take

    async def _answer(self, name: str, scheduled: float, before: int) -> None:
        """Wait for the run sent last to finish; record its latency from `scheduled`."""
        s = self.session
        try:
            status = await asyncio.wait_for(s._finished.get(), s.timeout)
        except asyncio.TimeoutError:
            status = None
        seconds = time.perf_counter() - scheduled
        failed = status is None
        s.interactions.append(Interaction(name, seconds, s.received - before, failed=failed))
        if failed:
            self.errors.append(f"{name}: no answer after {seconds:.0f} s")

    async def press(self, scheduled: float, name: str = "key") -> None:
        """A t key press: sent at once (a running rerun of the student's is interrupted by the
        server, as the browser's would be), answered in the background."""
        s = self.session
        if self.page != "score_field":
            return
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()
            self.interrupted += 1
        while not s._finished.empty():
            s._finished.get_nowait()
        w = s.widget(loadgen.T_SLIDER)
        state = loadgen.WidgetState(id=w.id)
        state.string_array_value.data.append(self.rng.choice(w.options))
        s.states[w.id] = state
        back = loadgen.BackMsg()
        cs = back.rerun_script
        cs.query_string, cs.page_script_hash, cs.fragment_id = s.query, s.page, w.fragment_id
        cs.context_info.timezone, cs.context_info.url = "UTC", s.url + "/"
        cs.widget_states.widgets.extend(s.states.values())
        before = s.received
        await s._ws.send(back.SerializeToString())
        self.pending = asyncio.ensure_future(self._answer(name, scheduled, before))

    async def settle(self) -> None:
        if self.pending is not None:
            await asyncio.gather(self.pending, return_exceptions=True)

    async def switch(self, scheduled: float) -> None:
        """Open Sampling (or go back to Score field): waits for the student's running answer
        first (a student looks before clicking elsewhere); timed from `scheduled`."""
        await self.settle()
        target = "sampling" if self.page == "score_field" else "score_field"
        await self._timed(f"page:{target}", scheduled, self.session.open_page(target))
        self.page = target

    async def train(self, scheduled: float) -> None:
        """Home's *Train the default model* with the student's own settings, polled twice a
        second (the browser's auto-rerun while a job runs), then back to Score field."""
        await self.settle()
        s = self.session
        timeout, s.timeout = s.timeout, self.train_timeout
        try:
            await self._timed("page:home", time.perf_counter(), s.open_page("Home"))
            await self._timed("train", scheduled, s.train_default(poll=0.5))
        finally:
            s.timeout = timeout
        await s.open_page("score_field")
        self.page = "score_field"

    async def _timed(self, name: str, scheduled: float, coro) -> None:
        s = self.session
        n = len(s.interactions)
        try:
            await coro
        except loadgen.ProtocolError as exc:
            self.errors.append(str(exc))
        # the protocol client timed from its own send: re-time from the schedule (queue counted)
        if len(s.interactions) > n:
            last = s.interactions[-1]
            last.name = name
            last.seconds = time.perf_counter() - scheduled if not last.failed else last.seconds
            del s.interactions[n:-1]


async def arrive_on(s: StreamlitSession, page_name: str) -> Interaction:
    """The session's first run on page `page_name`, as a browser opening `/<page_name>?...`
    sends it (by name: the page hashes are not known before the first run)."""
    back = loadgen.BackMsg()
    cs = back.rerun_script
    cs.query_string, cs.page_name = s.query, page_name
    cs.context_info.timezone, cs.context_info.url = "UTC", f"{s.url}/{page_name}"
    return await s._send("arrive", back)


async def student(url: str, plan: Plan, rng: random.Random, arrive: float, t0: float) -> Student:
    settings = pick_settings(rng, plan.follow)
    st = Student(
        StreamlitSession(url, timeout=plan.timeout), rng, settings, rng.random() < plan.train_share
    )
    st.train_timeout = plan.train_timeout
    s = st.session
    await asyncio.sleep(max(0.0, t0 + arrive - time.perf_counter()))
    end = t0 + plan.ramp + plan.minutes * 60
    try:
        start = time.perf_counter()
        s.cookies.update(await asyncio.to_thread(loadgen._fetch_cookies, url))
        n, nbytes = await asyncio.to_thread(first_visit_files, url, s.cookies)
        s.interactions.append(Interaction("static", time.perf_counter() - start, nbytes))
        s.query = query(settings)
        await s.connect()
        if settings:  # its own link, opened on Sampling: a page reads its settings from the
            # address on the session's first run only, so the sampler's must come then
            await st._timed("arrive:sampling", start, arrive_on(s, "sampling"))
        else:
            await st._timed("home", start, s.rerun("home"))
        await st._timed("page:score_field", time.perf_counter(), s.open_page("score_field"))
        train_at = rng.uniform(time.perf_counter(), end) if st.trains else None
        at = time.perf_counter()
        while True:
            at += rng.expovariate(1 / plan.think)
            if train_at is not None and train_at < at:
                at, train_at, action = train_at, None, "train"
            else:
                action = rng.choices(["key", "burst", "switch"], weights=[6, 1, 2])[0]
            if at > end:
                break
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            if action == "train":
                await st.train(at)
                at = time.perf_counter()  # the student looks at its model, then goes on
            elif action == "switch":
                await st.switch(at)
            elif action == "key":
                await st.press(at)
            else:
                for k in range(3):
                    await st.press(time.perf_counter(), "burst" if k == 2 else "burst-interrupted")
                    if k < 2:
                        await asyncio.sleep(0.15)
        await st.settle()
    except (loadgen.ProtocolError, OSError) as exc:
        st.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        await s.close()
    return st


# ----------------------------------------------------------------------------- a Chromium probe
@dataclass
class Probe:
    interactions: list[Interaction] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


CHART = '[data-testid="stMain"] [data-testid="stPlotlyChart"]'
TITLE_JS = (
    "() => { const t = document.querySelector('" + CHART + " .gtitle');"
    " return t ? t.textContent : ''; }"
)
SAMPLING_JS = (
    "() => location.pathname.endsWith('/sampling') && Array.from(document.querySelectorAll('"
    + CHART
    + " .js-plotly-plot')).some(e => e.textContent.includes(': x_t'))"
)
FIELD_JS = (
    "() => location.pathname.endsWith('/score_field') && (" + TITLE_JS + ")().includes('at t =')"
)
SLIDER = '[data-testid="stMain"] [data-testid="stSlider"] input[type="range"]'


def probe(
    url: str, plan: Plan, rng: random.Random, arrive: float, t0: float, train: bool, out: Probe
) -> None:
    """One Chromium tab doing a student's lecture (runs in its own thread)."""
    import first_visit
    from playwright.sync_api import sync_playwright

    settings = pick_settings(rng, plan.follow)
    end = t0 + plan.ramp + plan.minutes * 60
    ms = plan.timeout * 1000

    def timed(name: str, action, done, timeout_ms: float = ms) -> None:
        start = time.perf_counter()
        try:
            action()
            done(timeout_ms)
            out.interactions.append(Interaction(name, time.perf_counter() - start, 0))
        except Exception as exc:  # a timeout or a page that broke: counted, never dropped
            out.interactions.append(Interaction(name, time.perf_counter() - start, 0, failed=True))
            out.errors.append(f"probe {name}: {type(exc).__name__}: {str(exc)[:200]}")

    time.sleep(max(0.0, t0 + arrive - time.perf_counter()))
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=first_visit.CHROMIUM, args=first_visit.CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            link = f"{url}/score_field" + (f"?{query(settings)}" if settings else "")
            timed(
                "first_visit",
                lambda: page.goto(link, timeout=ms),
                lambda t: page.wait_for_function(FIELD_JS, timeout=t),
            )
            on_field = True
            now = time.perf_counter()
            train_at = rng.uniform(now, (now + end) / 2) if train else None  # in time to finish
            at = now
            while True:
                at += rng.expovariate(1 / plan.think)
                if at > end and train_at is None:
                    break
                time.sleep(max(0.0, at - time.perf_counter()))
                if train_at is not None and at > train_at:
                    train_at = None
                    home = page.get_by_role("link", name="Home").first.click
                    timed(
                        "page:home",
                        home,
                        lambda t: page.get_by_role("button", name=first_visit.HOME_READY).wait_for(
                            timeout=t
                        ),
                    )
                    timed(
                        "train",
                        lambda: page.get_by_role("button", name=first_visit.HOME_READY).click(),
                        lambda t: page.get_by_text(
                            re.compile("is now active|already trained")
                        ).first.wait_for(timeout=t),
                        plan.train_timeout * 1000,
                    )
                    on_field, at = False, time.perf_counter()
                elif on_field and rng.random() < 0.8:
                    before = page.evaluate(TITLE_JS)
                    at_end = page.locator(SLIDER).first.evaluate(
                        "e => Number(e.value) >= Number(e.max)"
                    )
                    key = "ArrowLeft" if at_end or rng.random() < 0.3 else "ArrowRight"

                    def press(key=key) -> None:
                        page.locator(SLIDER).first.focus()
                        page.keyboard.press(key)

                    timed(
                        "key",
                        press,
                        lambda t, b=before: page.wait_for_function(
                            f"() => {{ const v = ({TITLE_JS})(); "
                            f"return v && v !== {json.dumps(b)}; }}",
                            timeout=t,
                        ),
                    )
                elif on_field:
                    timed(
                        "page:sampling",
                        lambda: page.get_by_role("link", name="Sampling").first.click(),
                        lambda t: page.wait_for_function(SAMPLING_JS, timeout=t),
                    )
                    on_field = False
                else:
                    timed(
                        "page:score_field",
                        lambda: page.get_by_role("link", name="Score field").first.click(),
                        lambda t: page.wait_for_function(FIELD_JS, timeout=t),
                    )
                    on_field = True
        except Exception as exc:
            out.errors.append(f"probe: {type(exc).__name__}: {str(exc)[:200]}")
        finally:
            browser.close()


# ----------------------------------------------------------------------------- a run
def replica_pids(hall: loadgen_hall.Hall) -> list[int]:
    return [hall.replica_pid(name) for name in hall.names]


def servers_cpu(pids: list[int]) -> float:
    return sum(loadgen.cpu_seconds(pid) or 0.0 for pid in pids)


async def lecture(url: str, n: int, probes: int, plan: Plan, seed: int, probe_train: bool):
    """n students (probes of them in Chromium) for one lecture; (students, probes)."""
    master = random.Random(seed)
    arrivals, t = [], 0.0
    for _ in range(n):  # a Poisson process over the ramp: exponential gaps, mean ramp / n
        arrivals.append(t)
        t += master.expovariate(n / plan.ramp) if plan.ramp > 0 else 0.0
    rngs = [random.Random(f"{seed}/{i}") for i in range(n)]
    t0 = time.perf_counter()
    probe_out = [Probe() for _ in range(probes)]
    threads = [
        threading.Thread(
            target=probe,
            args=(url, plan, rngs[k], arrivals[k], t0, probe_train and k == 0, probe_out[k]),
            daemon=True,
        )
        for k in range(probes)
    ]
    for th in threads:
        th.start()
    students = await asyncio.gather(
        *(student(url, plan, rngs[i], arrivals[i], t0) for i in range(probes, n))
    )
    for th in threads:
        await asyncio.to_thread(th.join, plan.timeout + plan.train_timeout)
        if th.is_alive():
            probe_out[0].errors.append("a probe did not finish")
    return list(students), probe_out


def rows(students: list[Student], probes: list[Probe]) -> dict[str, dict]:
    """Per interaction kind ("probe:" prefixed for Chromium): count, failed, p50/p95/max."""
    groups: dict[str, list[Interaction]] = {}
    for st in students:
        for it in st.session.interactions:
            groups.setdefault(it.name, []).append(it)
    for pr in probes:
        for it in pr.interactions:
            groups.setdefault(f"probe:{it.name}", []).append(it)
    out = {}
    for name, items in sorted(groups.items()):
        secs = [it.seconds for it in items]
        out[name] = {
            "count": len(items),
            "failed": sum(it.failed for it in items),
            "p50": percentile(secs, 50),
            "p95": percentile(secs, 95),
            "max": max(secs),
            "mb_mean": statistics.fmean(it.bytes for it in items) / 1e6,
        }
    return out


def run_cell(args, replicas: int, n: int, start: str, seed: int) -> dict:
    """A fresh hall of `replicas`, cold or warm, and one lecture of n students."""
    run_dir = Path(args.run_dir) / f"r{replicas}-n{n}-{start}-{seed}"
    hall = loadgen_hall.Hall(run_dir, replicas, app_dir=args.app_dir)
    if start == "warm":
        shutil.copytree(args.warm_store, run_dir / "models")
    plan = Plan(
        args.minutes,
        args.ramp,
        args.think,
        args.train_share,
        args.follow,
        args.timeout,
        args.train_timeout,
    )
    with hall:
        if start == "warm":  # the lecturer opens the app once on each replica (imports torch)
            asyncio.run(_visit_each(hall))
        pids = replica_pids(hall)
        load_before, cpu0, t0 = os.getloadavg()[0], servers_cpu(pids), time.perf_counter()
        students, probes = asyncio.run(
            lecture(hall.url, n, args.probes, plan, seed, args.probe_train)
        )
        seconds, cpu = time.perf_counter() - t0, servers_cpu(pids) - cpu0
        restarts = sum(hall.restarts(name) for name in hall.names)
    errors = [e for st in students for e in st.errors] + [e for pr in probes for e in pr.errors]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "replicas": replicas,
        "sessions": n,
        "start": start,
        "seed": seed,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "seconds": seconds,
        "lecture_minutes": (plan.ramp + plan.minutes * 60) / 60,
        "server_cpu": cpu,
        "cpu_per_student_minute": cpu / n / ((plan.ramp + plan.minutes * 60) / 60),
        "trainers": sum(st.trains for st in students)
        + (1 if args.probe_train and args.probes else 0),
        "interrupted": sum(st.interrupted for st in students),
        "restarts": restarts,
        "errors": errors,
        "exceptions": sorted({e for st in students for e in st.session.exceptions}),
        "errors_shown": sorted({e for st in students for e in st.session.errors_shown}),
        "kinds": rows(students, probes),
    }


async def _visit_each(hall: loadgen_hall.Hall) -> None:
    for name in hall.names:
        s = StreamlitSession(hall.url, timeout=300, cookies={"SERVERID": name})
        await s.connect()
        try:
            await s.rerun("home")
            await s.open_page("score_field")
        finally:
            await s.close()


KEY_ROWS = (
    "key",
    "burst",
    "page:sampling",
    "page:score_field",
    "train",
    "static",
    "probe:key",
    "probe:page:sampling",
    "probe:first_visit",
    "probe:train",
)


def cell_table(cell: dict) -> str:
    head = (
        f"{cell['date']}: {cell['replicas']} replica(s), N = {cell['sessions']} "
        f"({cell['start']}), load {cell['load_before']:.1f} -> {cell['load_after']:.1f}, "
        f"server CPU {cell['server_cpu']:.0f} s = {cell['cpu_per_student_minute']:.2f} "
        f"CPU-s per student-minute, {cell['trainers']} trainers, "
        f"{cell['interrupted']} interrupted reruns, {len(cell['errors'])} errors"
    )
    lines = [
        head,
        "",
        "| interaction | count | failed | p50 s | p95 s | max s | MB each |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, k in cell["kinds"].items():
        lines.append(
            f"| {name} | {k['count']} | {k['failed']} | {k['p50']:.2f} | "
            f"{k['p95']:.2f} | {k['max']:.2f} | {k['mb_mean']:.2f} |"
        )
    return "\n".join(lines)


def summary(cells: list[dict]) -> str:
    """Medians over repeats: one row per (replicas, N, start), p95 of the key rows."""
    groups: dict[tuple, list[dict]] = {}
    for c in cells:
        groups.setdefault((c["replicas"], c["sessions"], c["start"]), []).append(c)
    cols = ["key", "probe:key", "page:sampling", "probe:page:sampling", "train"]
    lines = [
        "| replicas | N | start | runs | "
        + " | ".join(f"{c} p95 s" for c in cols)
        + " | failed | CPU-s / student-min | load |",
        "| ---: | ---: | --- | ---: | "
        + " | ".join("---:" for _ in cols)
        + " | ---: | ---: | --- |",
    ]
    for (r, n, start), cs in sorted(groups.items()):

        def med(col: str, cs: list[dict] = cs) -> str:
            xs = [c["kinds"][col]["p95"] for c in cs if col in c["kinds"]]
            if not xs:
                return ""
            return f"{statistics.median(xs):.2f}" + (
                f" ({min(xs):.2f}-{max(xs):.2f})" if len(xs) > 1 else ""
            )

        failed = sum(k["failed"] for c in cs for k in c["kinds"].values())
        cpu = statistics.median(c["cpu_per_student_minute"] for c in cs)
        loads = ", ".join(f"{c['load_before']:.0f}-{c['load_after']:.0f}" for c in cs)
        lines.append(
            f"| {r} | {n} | {start} | {len(cs)} | "
            + " | ".join(med(c) for c in cols)
            + f" | {failed} | {cpu:.2f} | {loads} |"
        )
    return "\n".join(lines)


def capacity(cells: list[dict]) -> str:
    """CPU-s per student per lecture minute (median over cells), the cores that 100 such
    students keep busy, and the check: a 2-replica hall of 2N students should answer like a
    1-replica hall of N (same students per replica, one core each) where cores are free."""
    per = [c["cpu_per_student_minute"] for c in cells]
    med = statistics.median(per)
    busy = med * 100 / 60  # CPU-s per second for 100 students = cores kept busy
    lines = [
        f"CPU-s per student per lecture minute: median {med:.2f} "
        f"(range {min(per):.2f}-{max(per):.2f}, {len(per)} cells)",
        f"100 students keep {busy:.1f} cores busy; at 60 % utilisation (headroom for the p95): "
        f"{busy / 0.6:.1f} cores, one replica per core",
        "",
        "| prediction: 2 replicas, 2N vs 1 replica, N | key p95 s | probe:key p95 s "
        "| page:sampling p95 s |",
        "| --- | ---: | ---: | ---: |",
    ]
    by = {(c["replicas"], c["sessions"], c["start"]): [] for c in cells}
    for c in cells:
        by[(c["replicas"], c["sessions"], c["start"])].append(c)

    def med_p95(cs: list[dict], col: str) -> str:
        xs = [c["kinds"][col]["p95"] for c in cs if col in c["kinds"]]
        return f"{statistics.median(xs):.2f}" if xs else ""

    for (r, n, start), cs in sorted(by.items()):
        twin = by.get((2, 2 * n, start)) if r == 1 else None
        if twin:
            cols = ("key", "probe:key", "page:sampling")
            lines.append(
                f"| 1 replica N={n} -> 2 replicas N={2 * n} ({start}) | "
                + " | ".join(f"{med_p95(cs, k)} -> {med_p95(twin, k)}" for k in cols)
                + " |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    p.add_argument("--sessions", type=int, nargs="+", default=[16, 32])
    p.add_argument("--start", nargs="+", choices=["cold", "warm"], default=["cold"])
    p.add_argument("--warm-store", type=Path, help="a store filled by scripts/warm.py (warm rows)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--probes", type=int, default=1, help="Chromium tabs among the N students")
    p.add_argument("--probe-train", action="store_true", help="the first probe trains once too")
    p.add_argument("--minutes", type=float, default=1.5, help="lecture length after the ramp")
    p.add_argument("--ramp", type=float, default=20.0, help="seconds over which students arrive")
    p.add_argument("--think", type=float, default=3.0, help="mean seconds between actions")
    p.add_argument("--train-share", type=float, default=0.1, help="share that trains once")
    p.add_argument("--follow", type=float, default=0.5, help="share at the lecturer's defaults")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds an answer may take")
    p.add_argument("--train-timeout", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=None, help="default: a new one per run")
    p.add_argument("--run-dir", default=os.environ.get("TMPDIR", "/tmp") + "/loadgen-students")
    p.add_argument("--app-dir", type=Path, default=ROOT)
    p.add_argument("--json", type=Path, help="append each cell here (JSON lines)")
    p.add_argument("--summarise", type=Path, help="only print the tables of a --json file")
    args = p.parse_args(argv)
    if args.summarise:
        cells = [json.loads(line) for line in args.summarise.read_text().splitlines() if line]
        print(summary(cells), "\n\n" + capacity(cells))
        return 0
    if "warm" in args.start and not (args.warm_store and args.warm_store.is_dir()):
        p.error("warm rows need --warm-store (a directory filled by scripts/warm.py)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cells = []
    for _ in range(args.repeat):
        for r in args.replicas:
            for n in args.sessions:
                for start in args.start:
                    seed = args.seed if args.seed is not None else random.randrange(2**31)
                    cells.append(run_cell(args, r, n, start, seed))
                    print(cell_table(cells[-1]), "\n", flush=True)
                    for e in cells[-1]["errors"][:5]:
                        print("  !", e, flush=True)
                    if args.json:
                        with args.json.open("a") as f:
                            f.write(json.dumps(cells[-1]) + "\n")
    print(summary(cells), "\n\n" + capacity(cells))
    bad = any(c["errors"] or c["exceptions"] or c["errors_shown"] for c in cells)
    bad |= any(k["failed"] for c in cells for k in c["kinds"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
