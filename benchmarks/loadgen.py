"""Load generator: N simulated students, each speaking Streamlit's own websocket protocol.

    .venv/bin/python benchmarks/loadgen.py --serve --sessions 1 8 32     # starts its own server
    .venv/bin/python benchmarks/loadgen.py --url http://127.0.0.1:8501 --sessions 8 --train

No browser per user: a session is one websocket to `/_stcore/stream` carrying the protobufs the
browser sends (`BackMsg.rerun_script` with a `ClientState`: page, widget states, fragment id) and
reading the `ForwardMsg`s the browser reads (deltas, navigation, script_finished). What a student
does (`lecture`): open Home, optionally train (or reuse) the default model, open Score field,
move the t slider `--moves` times (a fragment rerun, as the browser sends it: the slider lives in
an `@st.fragment`), open Sampling (which runs the sampler at its defaults). Each interaction's
latency is the time from sending the BackMsg to the ForwardMsg that says the run finished, and
its bytes are the websocket payload received in between. Sessions start spread over `--ramp`
seconds and wait `--think` seconds (uniform 0.5x-1.5x) between interactions.

How it differs from a browser (so the figures are a lower bound on bytes, an upper one on
nothing): no `cached_message_hashes` are sent, so the server never replaces a repeated large
message by a reference (a browser would skip re-downloading an identical Sampling figure); no
`auto_rerun` fragments are run (the training progress bar is polled by a plain rerun each second
instead); no static files (the JS bundle, ~6 MB once per browser) are fetched.

Loopback only (any other host is refused), every wait has a timeout, the whole run has a
deadline (`--max-seconds`), and `--serve` kills the server it started. Timings are printed, never
asserted; `tests/test_deploy.py` reuses `StreamlitSession` to check behaviour, not speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
T_SLIDER = "Time t (noise level)"  # the t control's label (scoreviz.ui.controls)
TRAIN_BUTTON = "Train the default model"  # views/home.py
TRAINED = ("is now active", "already trained")  # the notices training_runner shows on success
DONE = {
    ForwardMsg.FINISHED_SUCCESSFULLY,
    ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
    ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
}


class ProtocolError(RuntimeError):
    """The server did not answer as the browser expects (closed, timed out, page not found)."""


@dataclass
class Widget:
    """A widget seen in a delta: its id, the fragment that draws it, and its formatted options."""

    id: str
    kind: str  # the Element oneof name: "slider", "button", ...
    fragment_id: str
    options: list[str]
    value: list[str]  # a slider's current value as formatted text (raw_value), else []


@dataclass
class Interaction:
    name: str  # "home", "page:<url path>", "slider", "train"
    seconds: float
    bytes: int
    # CPU seconds the server process used meanwhile (all its sessions': exact only for N = 1)
    server_cpu: float | None = None
    # True when it never got its answer (timed out, connection closed, refused): `seconds` is
    # then the time waited (the timeout), and it counts in the percentiles as that
    failed: bool = False


@dataclass
class StreamlitSession:
    """One browser tab's worth of protocol: a websocket, the pages, the widgets of the last run.

    `rerun` sends what the browser sends when a page opens or a widget changes and waits for the
    run to finish; `interactions` records each one. `replica` is haproxy's SERVERID cookie (None
    when talking to a server directly).
    """

    url: str  # http://127.0.0.1:<port>
    timeout: float = 60.0
    cookies: dict[str, str] = field(default_factory=dict)
    session_id: str = ""
    pages: dict[str, str] = field(default_factory=dict)  # url path -> page_script_hash
    page: str = ""  # the current page's script hash
    widgets: dict[str, Widget] = field(default_factory=dict)  # label -> widget
    states: dict[str, WidgetState] = field(default_factory=dict)  # widget id -> value sent
    # the select boxes' and number inputs' values on screen (the sidebar's data, process, seed;
    # the sampler): a browser sends every widget's value with each run, and without them the
    # app would fall back to its defaults after a session's first run
    shown: dict[str, WidgetState] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)  # st.error/warning/success/info bodies
    exceptions: list[str] = field(default_factory=list)  # Streamlit's exception elements
    errors_shown: list[str] = field(default_factory=list)  # st.error bodies, every run's
    toasts: list[str] = field(default_factory=list)  # st.toast bodies, every run's
    query: str = ""  # the page's query string, as the app last set it (the browser's address)
    interactions: list[Interaction] = field(default_factory=list)
    received: int = 0  # bytes of websocket payload
    closed: bool = False

    def __post_init__(self) -> None:
        host = urlsplit(self.url).hostname
        if host not in LOOPBACK:
            raise ValueError(f"loadgen talks to loopback only, not {host!r}")
        self._ws = None
        self._finished: asyncio.Queue = asyncio.Queue()
        self._reader: asyncio.Task | None = None

    @property
    def replica(self) -> str | None:
        return self.cookies.get("SERVERID")

    # --- connection
    async def connect(self, resume: bool = False, reload: bool = False) -> None:
        """Open the websocket, first fetching "/" like a browser (which picks up haproxy's
        affinity cookie) unless a cookie is already held and not `reload`. resume=True asks the
        server for this session back, as the browser does when it reconnects."""
        if reload or not self.cookies:
            self.cookies.update(await asyncio.to_thread(_fetch_cookies, self.url, self.cookies))
        ws_url = "ws" + self.url[len("http") :] + "/_stcore/stream"
        protocols = ["streamlit", "xsrf-unused"] + ([self.session_id] if resume else [])
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        self._ws = await websocket_connect(
            ws_url,
            subprotocols=protocols,
            additional_headers=headers,
            open_timeout=self.timeout,
            max_size=256 * 2**20,
            compression=None,  # as a browser against server.enableWebsocketCompression=false
        )
        self.closed = False
        self._reader = asyncio.ensure_future(self._read())

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 5)
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 5)

    async def _read(self) -> None:
        try:
            async for data in self._ws:
                self.received += len(data)
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._handle(msg)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self._finished.put_nowait(None)

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.session_id = msg.new_session.initialize.session_id or self.session_id
            self._pages(msg.new_session.app_pages)
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "navigation":
            self._pages(msg.navigation.app_pages)
            self.page = msg.navigation.page_script_hash or self.page
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg.delta.new_element, msg.delta.fragment_id)
        elif kind == "script_finished":
            if msg.script_finished in DONE:
                self._finished.put_nowait(msg.script_finished)
        elif kind == "page_not_found":
            self.alerts.append(f"page not found: {msg.page_not_found.page_name}")

    def _pages(self, app_pages) -> None:
        for p in app_pages:
            self.pages[p.url_pathname or p.page_name] = p.page_script_hash

    def _element(self, el, fragment_id: str) -> None:
        kind = el.WhichOneof("type")
        if kind == "alert":
            self.alerts.append(el.alert.body)
            if el.alert.format == Alert.ERROR:
                self.errors_shown.append(el.alert.body)
        elif kind == "toast":
            self.toasts.append(el.toast.body)
        elif kind == "exception":
            self.exceptions.append(f"{el.exception.type}: {el.exception.message}")
        elif kind in ("slider", "button", "checkbox", "radio", "selectbox"):
            w = getattr(el, kind)
            options = list(getattr(w, "options", []))
            value = list(w.raw_value) if kind == "slider" else []
            self.widgets[w.label] = Widget(w.id, kind, fragment_id, options, value)
        if kind == "selectbox" and el.selectbox.options:
            w = el.selectbox
            text = w.raw_value if w.HasField("raw_value") else w.options[w.default or 0]
            self.shown[w.id] = WidgetState(id=w.id, string_value=text)
        elif kind == "number_input":
            w = el.number_input
            value = w.value if w.HasField("value") else w.default
            self.shown[w.id] = (
                WidgetState(id=w.id, int_value=int(value))
                if w.data_type == w.INT
                else WidgetState(id=w.id, double_value=value)
            )

    # --- what the browser sends
    async def rerun(
        self,
        name: str,
        page: str | None = None,
        fragment_id: str = "",
        widget: WidgetState | None = None,
    ) -> Interaction:
        """Send one rerun_script (a page switch when `page` is a url path, else the current page)
        and wait for its script_finished. A trigger (button) is sent once, values persist."""
        back = BackMsg()
        cs = back.rerun_script
        cs.query_string = self.query  # the browser sends its address with every run
        if page is not None:
            if page not in self.pages and self.pages:
                raise ProtocolError(f"no page {page!r}; the app has {sorted(self.pages)}")
            self.page = self.pages.get(page, "")
            self.widgets.clear()
        cs.page_script_hash = self.page
        cs.fragment_id = fragment_id
        cs.context_info.timezone = "UTC"
        cs.context_info.url = self.url + "/"
        states = {**self.shown, **self.states}
        if widget is not None:
            states[widget.id] = widget
            if widget.WhichOneof("value") != "trigger_value":
                self.states[widget.id] = widget
        cs.widget_states.widgets.extend(states.values())
        return await self._send(name, back)

    async def _send(self, name: str, back: BackMsg) -> Interaction:
        while not self._finished.empty():  # stale ends (a run finished before this request)
            self._finished.get_nowait()
        self.alerts.clear()  # alerts: the last run's only
        before, start = self.received, time.perf_counter()
        cpu = cpu_seconds(getattr(self.url, "pid", None))
        try:
            await self._ws.send(back.SerializeToString())
            status = await asyncio.wait_for(self._finished.get(), self.timeout)
        except (ConnectionClosed, asyncio.TimeoutError) as exc:
            self._failed(name, start, before)
            raise ProtocolError(f"{name}: {type(exc).__name__}") from exc
        if status is None:
            self._failed(name, start, before)
            raise ProtocolError(f"{name}: the server closed the connection")
        done = Interaction(name, time.perf_counter() - start, self.received - before)
        if cpu is not None:
            done.server_cpu = cpu_seconds(getattr(self.url, "pid", None)) - cpu
        self.interactions.append(done)
        return done

    def _failed(self, name: str, start: float, before: int) -> None:
        """Record an interaction that got no answer: a timeout counts as the timeout (a student
        waited at least that long), never as missing."""
        waited = max(time.perf_counter() - start, 0.0)
        self.interactions.append(Interaction(name, waited, self.received - before, failed=True))

    async def open_page(self, url_path: str) -> Interaction:
        return await self.rerun(f"page:{url_path}", page=url_path)

    async def click(self, label: str) -> Interaction:
        w = self.widget(label)
        state = WidgetState(id=w.id, trigger_value=True)
        return await self.rerun(f"click:{label}", fragment_id=w.fragment_id, widget=state)

    async def select(self, label: str, option: str, name: str = "slider") -> Interaction:
        """Set a select_slider / slider whose options are strings to `option` (as the browser
        does: the formatted option text, a fragment rerun when it lives in a fragment)."""
        w = self.widget(label)
        state = WidgetState(id=w.id)
        state.string_array_value.data.append(option)
        return await self.rerun(name, fragment_id=w.fragment_id, widget=state)

    def widget(self, label: str) -> Widget:
        """The widget labelled `label` in the last run of this page (ProtocolError if none)."""
        if label not in self.widgets:
            raise ProtocolError(f"no widget {label!r} on this page; it has {sorted(self.widgets)}")
        return self.widgets[label]

    async def train_default(self, poll: float = 1.0) -> Interaction:
        """Press Home's "Train the default model" and rerun every `poll` s until the success
        notice shows (the browser's auto-rerun fragment would poll twice a second). An error
        notice (training failed or was refused) raises ProtocolError with its text."""
        start, before, errors = time.perf_counter(), self.received, len(self.errors_shown)
        await self.click(TRAIN_BUTTON)
        while not any(m in a for a in self.alerts for m in TRAINED):
            if len(self.errors_shown) > errors:
                self._failed("train", start, before)
                raise ProtocolError(f"training failed: {self.errors_shown[-1]}")
            if time.perf_counter() - start > self.timeout:
                self._failed("train", start, before)
                raise ProtocolError(f"training did not finish within {self.timeout:.0f} s")
            await asyncio.sleep(poll)
            await self.rerun("train-poll")
        done = Interaction("train", time.perf_counter() - start, self.received - before)
        self.interactions.append(done)
        return done


def _fetch_cookies(url: str, cookies: dict[str, str] | None = None) -> dict[str, str]:
    """GET "/" with `cookies`, as a browser does first; returns the cookies set (haproxy's
    SERVERID, a new one when the replica it named is down)."""
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
    request = urllib.request.Request(url + "/", headers=headers if cookies else {})
    with urllib.request.urlopen(request, timeout=30) as resp:
        headers = resp.headers.get_all("Set-Cookie") or []
    pairs = (h.split(";", 1)[0].split("=", 1) for h in headers)
    return {k.strip(): v.strip() for k, v in pairs}


# ----------------------------------------------------------------------------- the lecture
@dataclass(frozen=True)
class Script:
    moves: int = 5  # t slider moves on Score field
    think: float = 1.0  # mean seconds between interactions
    train: bool = False  # press "Train the default model" on Home first
    sampling: bool = True


async def lecture(session: StreamlitSession, script: Script, rng: random.Random) -> None:
    """One student: Home, (train), Score field, move t `moves` times, Sampling."""

    async def think() -> None:
        await asyncio.sleep(script.think * rng.uniform(0.5, 1.5))

    await session.connect()
    try:
        await session.rerun("home")
        if script.train:
            await think()
            await session.train_default()
        await think()
        await session.open_page("score_field")
        options = session.widget(T_SLIDER).options
        for _ in range(script.moves):
            await think()
            await session.select(T_SLIDER, rng.choice(options))
        if script.sampling:
            await think()
            await session.open_page("sampling")
    finally:
        await session.close()


@dataclass
class RunResult:
    n: int
    sessions: list[StreamlitSession]
    errors: list[str]
    seconds: float
    load: tuple[float, float, float]
    server_cpu: float | None = None  # CPU seconds the server process used during the run


async def run_sessions(
    url: str, n: int, script: Script, ramp: float, deadline: float, seed: int | None = None
) -> RunResult:
    """n lecture sessions against `url`, starts spread over `ramp` s, all cut at `deadline` s.
    When `url` is a `Server` (from `serve`), its CPU time during the run is measured too.

    Session i's t path comes from `random.Random(f"{seed}/{n}/{i}")`: a new `seed` (default: a
    fresh one per call) gives every run its own paths, so a run never finds the figures an
    earlier run (an N = 32 before an N = 64) left in the server's caches."""
    seed = random.randrange(2**32) if seed is None else seed
    cpu_before = cpu_seconds(getattr(url, "pid", None))
    sessions = [StreamlitSession(url, timeout=max(30.0, deadline / 2)) for _ in range(n)]
    errors: list[str] = []

    async def one(i: int, s: StreamlitSession) -> None:
        await asyncio.sleep(ramp * i / max(n, 1))
        try:
            await lecture(s, script, random.Random(f"{seed}/{n}/{i}"))
        except (ProtocolError, OSError) as exc:
            errors.append(f"session {i}: {exc}")
        except asyncio.CancelledError:  # cut at the deadline: its unanswered wait counts too
            s.interactions.append(Interaction("cut", time.perf_counter() - start, 0, failed=True))
            raise

    start = time.perf_counter()
    tasks = [asyncio.ensure_future(one(i, s)) for i, s in enumerate(sessions)]
    done, pending = await asyncio.wait(tasks, timeout=deadline)
    for t in pending:
        t.cancel()
    if pending:
        errors.append(f"{len(pending)} sessions cut at the {deadline:.0f} s deadline")
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
    elapsed, cpu_after = time.perf_counter() - start, cpu_seconds(getattr(url, "pid", None))
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return RunResult(n, sessions, errors, elapsed, os.getloadavg(), cpu)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process `pid` (all its threads) from /proc; None if unknown.

    Unlike latency, this does not depend on what else the machine runs: the server's capacity is
    about (cores x seconds) / (CPU seconds per session) when nothing else competes.
    """
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


# ----------------------------------------------------------------------------- statistics
def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation (numpy's default method)."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarise(result: RunResult) -> dict:
    """Latency p50/p95/max per interaction kind (seconds) and MB received per session."""
    by_kind: dict[str, list[Interaction]] = {}
    for s in result.sessions:
        for it in s.interactions:
            by_kind.setdefault(it.name, []).append(it)
    kinds = {}
    for name, items in sorted(by_kind.items()):
        secs = [it.seconds for it in items]  # failed ones included, as the time they waited
        cpus = [it.server_cpu for it in items if it.server_cpu is not None]
        kinds[name] = {
            "cpu_p50": percentile(cpus, 50) if cpus else None,
            "count": len(items),
            "failed": sum(it.failed for it in items),
            "p50": percentile(secs, 50),
            "p95": percentile(secs, 95),
            "max": max(secs),
            "mb_mean": statistics.fmean(it.bytes for it in items) / 1e6,
        }
    mb = [s.received / 1e6 for s in result.sessions]
    return {
        "sessions": result.n,
        "errors": result.errors,
        "exceptions": sorted({e for s in result.sessions for e in s.exceptions}),
        "errors_shown": sorted({e for s in result.sessions for e in s.errors_shown}),
        "seconds": result.seconds,
        "load_after": result.load,
        "mb_per_session": statistics.fmean(mb) if mb else 0.0,
        "server_cpu_per_session": None
        if result.server_cpu is None
        else result.server_cpu / result.n,
        "kinds": kinds,
    }


def table(summaries: list[dict]) -> str:
    """A Markdown table: one row per (N, interaction kind)."""
    lines = [
        "| N | interaction | count | failed | p50 s | p95 s | max s | server CPU s (p50) "
        "| MB each | MB/session | server CPU s/session | load (1 min) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def num(x: float | None) -> str:
        return "" if x is None else f"{x:.2f}"

    for s in summaries:
        for name, k in s["kinds"].items():
            lines.append(
                f"| {s['sessions']} | {name} | {k['count']} | {k.get('failed', 0)} | "
                f"{k['p50']:.3f} | {k['p95']:.3f} | "
                f"{k['max']:.3f} | {num(k.get('cpu_p50'))} | {k['mb_mean']:.2f} | "
                f"{s['mb_per_session']:.1f} | {num(s.get('server_cpu_per_session'))} | "
                f"{s['load_after'][0]:.1f} |"
            )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- a server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 90.0, proc: subprocess.Popen | None = None) -> None:
    """Poll `url`/_stcore/health until it answers "ok" (RuntimeError after `timeout` s)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return
        time.sleep(0.3)
    raise RuntimeError(f"{url} not healthy after {timeout:.0f} s")


def server_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
    ]


def server_env(**extra: str) -> dict[str, str]:
    """The README's server environment (few malloc arenas, passive OpenMP waits) plus `extra`."""
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    return {**env, **extra}


class Server(str):
    """A server's URL (a str) that also knows the server's process id."""

    pid: int | None = None


@contextlib.contextmanager
def serve(log_path: Path | None = None, app_dir: Path = ROOT) -> Iterator[str]:
    """A `streamlit run app.py` (of `app_dir`) on a free loopback port for the duration; yields
    its URL."""
    port = free_port()
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        server_command(port), cwd=app_dir, env=server_env(), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        url = Server(f"http://127.0.0.1:{port}")
        url.pid = proc.pid
        wait_healthy(url, proc=proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not subprocess.DEVNULL:
            log.close()


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running server (loopback only), e.g. http://127.0.0.1:8501")
    where.add_argument("--serve", action="store_true", help="start `streamlit run app.py` here")
    p.add_argument("--sessions", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--moves", type=int, default=5, help="t slider moves per session")
    p.add_argument("--think", type=float, default=1.0, help="mean seconds between interactions")
    p.add_argument("--ramp", type=float, default=5.0, help="seconds over which sessions start")
    p.add_argument("--train", action="store_true", help="train/reuse the default model first")
    p.add_argument("--no-sampling", action="store_true", help="skip the Sampling page")
    p.add_argument("--max-seconds", type=float, default=300.0, help="deadline per N")
    p.add_argument("--json", type=Path, help="also write the summaries here")
    p.add_argument("--server-pid", type=int, help="with --url: measure this process's CPU time")
    p.add_argument(
        "--app-dir",
        type=Path,
        default=ROOT,
        help="with --serve: the checkout to serve (e.g. `git archive HEAD` unpacked, to measure "
        "a commit while the working tree is being edited)",
    )
    args = p.parse_args(argv)
    if max(args.sessions) > 512:
        p.error("at most 512 sessions (each holds a websocket and a server-side session)")
    script = Script(args.moves, args.think, args.train, not args.no_sampling)
    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so `serve` still stops its server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def measure(url: Server) -> list[dict]:
        if args.train:  # the model is trained once, outside the measured runs
            asyncio.run(run_sessions(url, 1, Script(0, 0, True, False), 0, args.max_seconds))
        out = []
        for n in args.sessions:
            res = asyncio.run(run_sessions(url, n, script, args.ramp, args.max_seconds))
            out.append(summarise(res))
            print(table(out[-1:]), flush=True)
            for e in (res.errors + out[-1]["exceptions"] + out[-1]["errors_shown"])[:5]:
                print("  !", e, flush=True)
        return out

    if args.serve:
        log = Path(os.environ.get("LOADGEN_SERVER_LOG", os.devnull))
        with serve(log, args.app_dir.resolve()) as url:
            summaries = measure(url)
    else:
        url = Server(args.url.rstrip("/"))
        url.pid = args.server_pid
        summaries = measure(url)
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPUs\n")
    print(table(summaries))
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=1))
    # a failed or timed-out interaction, an error on screen or an exception fails the run
    bad = ("errors", "errors_shown", "exceptions")
    return 1 if any(s[k] for s in summaries for k in bad) else 0


if __name__ == "__main__":
    raise SystemExit(main())
