"""deploy/ on loopback: deploy/start.sh runs 3 replicas behind HAProxy with one model store, and
protocol sessions (benchmarks/loadgen.py's client, as a browser would speak) check that

- the balancer reports three healthy replicas (its stats CSV);
- a model trained through one replica is loaded from the store, not trained, by the others;
- 24 sessions spread over the replicas and keep theirs (a reconnect resumes the same session,
  which only the replica that holds it can do);
- killing one replica drops only its sessions; the others go on untouched, and the dropped ones
  reconnect to a healthy replica and get a working page (a new session, no traceback) with
  their view restored from its address and a message saying so.

Skipped only where haproxy is not installed, except in CI (.ci/run installs it), where that
fails. Timings are not asserted.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from email.message import Message
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import loadgen  # noqa: E402
from loadgen_hall import free_ports as _free_ports  # noqa: E402

pytestmark = pytest.mark.slow
REPLICAS = 3
SESSIONS = 24


class Hall:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.url = f"http://127.0.0.1:{_free_ports(1)}"
        self.stats = f"http://127.0.0.1:{_free_ports(1)}/stats;csv"
        self.base_port = _free_ports(REPLICAS)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "RUN_DIR": str(self.run_dir),
            "BASE_PORT": str(self.base_port),
            "SCOREVIZ_BIND": self.url.removeprefix("http://"),
            "SCOREVIZ_STATS_BIND": self.stats.removeprefix("http://").split("/")[0],
            "SCOREVIZ_MODEL_STORE": str(self.run_dir / "models"),
            "PYTHON": sys.executable,
        }
        self.proc = subprocess.Popen(
            ["bash", "deploy/start.sh", str(REPLICAS)],
            cwd=ROOT,
            env=env,
            stdout=open(self.run_dir / "start.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one in stop()
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # start.sh's trap stops every child
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def status(self) -> dict[str, str]:
        """Server name -> HAProxy's status ("UP", "DOWN", ...) for the app's backend."""
        with urllib.request.urlopen(self.stats, timeout=5) as resp:
            text = resp.read().decode().lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {r["svname"]: r["status"] for r in rows if r["pxname"] == "streamlit"}

    def wait_status(self, want: dict[str, str], timeout: float = 120.0) -> dict[str, str]:
        end, seen = time.monotonic() + timeout, {}
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.logs()
            try:
                seen = self.status()
            except OSError:
                seen = {}
            if all(seen.get(k) == v for k, v in want.items()):
                return seen
            time.sleep(0.5)
        raise AssertionError(f"HAProxy status {seen}, expected {want}\n{self.logs()}")

    def replica_pid(self, name: str) -> int:
        return int((self.run_dir / f"replica-{name.removeprefix('s')}.pid").read_text())

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
            for p in sorted(self.run_dir.glob("*.log"))
        )


@pytest.fixture(scope="module")
def hall(tmp_path_factory):
    """Skip without haproxy on a laptop; in CI (.ci/run installs it) a missing one fails."""
    if shutil.which("haproxy") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide haproxy (.ci/run installs it)")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    h = Hall(tmp_path_factory.mktemp("hall"))
    h.start()
    try:
        h.wait_status({f"s{i}": "UP" for i in range(1, REPLICAS + 1)})
        yield h
    finally:
        h.stop()
    for name in ("1", "2", "3"):  # nothing left running
        pid = int((h.run_dir / f"replica-{name}.pid").read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_balancer_reports_every_replica_healthy(hall):
    status = hall.status()
    assert {k: status[k] for k in ("s1", "s2", "s3", "BACKEND")} == dict.fromkeys(
        ("s1", "s2", "s3", "BACKEND"), "UP"
    )


def test_the_balancer_serves_the_app_and_hides_streamlits_metrics(hall):
    with urllib.request.urlopen(hall.url + "/_stcore/health", timeout=10) as resp:
        assert resp.read() == b"ok"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(hall.url + "/_stcore/metrics", timeout=10)
    assert err.value.code == 404


# Spellings of /_stcore/metrics that a replica (uvicorn decodes the path, then routes it)
# answers with the metrics; HAProxy must refuse every one.
METRICS_SPELLINGS = [
    "/_stcore/metrics",
    "/_stcore/%6Detrics",
    "/_stcore/%6detrics",
    "/%5Fstcore/metrics",
    "/_stcore%2Fmetrics",
    "/_stcore/%6D%65trics",
]
BLOCKED_TOO = ["/_stcore//metrics", "/_STCORE/Metrics", "/_stcore/metrics/", "//_stcore/metrics"]


def _get(url: str) -> tuple[int, bytes, Message]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, b"", err.headers


def test_encoded_metrics_paths_are_refused_by_the_balancer(hall):
    replica = f"http://127.0.0.1:{hall.base_port}"
    for path in METRICS_SPELLINGS:  # the replica itself serves each (so the check is real)
        status, body, _ = _get(replica + path)
        assert status == 200 and b"session" in body, (path, status)
    for path in METRICS_SPELLINGS + BLOCKED_TOO:
        assert _get(hall.url + path)[0] == 404, path
    assert _get(hall.url + "/_stcore/health")[:2] == (200, b"ok")


def test_the_balancer_forbids_framing_by_other_sites(hall):
    status, _, headers = _get(hall.url + "/")
    assert status == 200
    assert headers.get("Content-Security-Policy") == "frame-ancestors 'self'"
    assert headers.get("X-Frame-Options") == "SAMEORIGIN"


def test_a_model_trained_through_one_replica_is_loaded_by_the_others(hall):
    async def train_on(replica: str) -> list[str]:
        s = loadgen.StreamlitSession(hall.url, timeout=120, cookies={"SERVERID": replica})
        await s.connect()
        try:
            await s.rerun("home")
            await s.train_default()
            assert s.exceptions == [] and s.errors_shown == []
            return s.alerts
        finally:
            await s.close()

    first = asyncio.run(train_on("s1"))
    assert any("finished in" in a for a in first), first  # trained here
    stored = list((hall.run_dir / "models").glob("*.safetensors"))
    assert len(stored) == 1
    for replica in ("s2", "s3"):
        alerts = asyncio.run(train_on(replica))
        assert any("loaded from the shared model store" in a for a in alerts), alerts
    assert list((hall.run_dir / "models").glob("*.safetensors")) == stored


async def _lecture_start(s: loadgen.StreamlitSession, i: int) -> None:
    await s.connect()
    await s.rerun("home")
    await s.open_page("score_field")
    options = s.widget(loadgen.T_SLIDER).options
    await s.select(loadgen.T_SLIDER, options[i % len(options)])


def _params(query: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(query))


async def _reconnect(s: loadgen.StreamlitSession, reload: bool = False) -> str:
    """Drop the websocket and reconnect as the browser does; returns the session id served."""
    await s.close()
    await s.connect(resume=True, reload=reload)  # asks for s.session_id back
    s.session_id = ""  # what the server answers comes in its new_session message
    await s.rerun("home")
    return s.session_id


def test_sessions_keep_their_replica_and_a_dead_replica_loses_only_its_own(hall):
    asyncio.run(_affinity_and_failover(hall))


async def _affinity_and_failover(hall: Hall) -> None:
    sessions = [loadgen.StreamlitSession(hall.url, timeout=120) for _ in range(SESSIONS)]
    await asyncio.gather(*(_lecture_start(s, i) for i, s in enumerate(sessions)))
    try:
        spread = Counter(s.replica for s in sessions)
        assert set(spread) == {"s1", "s2", "s3"}, spread  # the balancer used every replica

        # Affinity: a reconnect carries the cookie, so it reaches the replica that holds the
        # session and resumes it (another replica would hand out a new session id).
        ids = [s.session_id for s in sessions]
        assert all(ids) and len(set(ids)) == SESSIONS
        resumed = await asyncio.gather(*(_reconnect(s) for s in sessions))
        assert resumed == ids
        await asyncio.gather(*(s.open_page("score_field") for s in sessions))

        # Kill one replica as a crash would.
        victim = "s2"
        lost = [s for s in sessions if s.replica == victim]
        kept = [s for s in sessions if s.replica != victim]
        os.kill(hall.replica_pid(victim), signal.SIGKILL)
        end = time.monotonic() + 30
        while not all(s.closed for s in lost) and time.monotonic() < end:
            await asyncio.sleep(0.2)
        assert all(s.closed for s in lost), "the dead replica's websockets must drop"
        assert not any(s.closed for s in kept), "other replicas' sessions must stay connected"
        options = kept[0].widget(loadgen.T_SLIDER).options
        await asyncio.gather(*(s.select(loadgen.T_SLIDER, options[-1]) for s in kept))
        assert all(s.session_id == sid for s, sid in zip(sessions, ids, strict=True) if s in kept)

        await asyncio.to_thread(hall.wait_status, {victim: "DOWN", "s1": "UP", "s3": "UP"}, 30)
        # The dropped sessions reconnect (the browser does it by itself): HAProxy sends them to a
        # healthy replica with a new cookie, which starts them a fresh, working session.
        # Their address (the query string the app keeps up to date) comes along: the new session
        # gets the view back and says so.
        before = {id(s): s.session_id for s in lost}
        address = {id(s): _params(s.query) for s in lost}
        assert all(a.get("t") for a in address.values()), address
        await asyncio.gather(*(_reconnect(s, reload=True) for s in lost))
        for s in lost:
            assert s.replica in {"s1", "s3"} and s.session_id != before[id(s)]
            assert s.interactions[-1].name == "home" and not s.closed
            assert any("restored from its address" in t for t in s.toasts), s.toasts
            assert _params(s.query)["t"] == address[id(s)]["t"]  # the same t, not the default
        assert all(s.exceptions == [] and s.errors_shown == [] for s in sessions)
    finally:
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
