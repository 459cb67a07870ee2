"""A lecture hall on loopback (deploy/start.sh: N replicas behind HAProxy), and how fast it heals.

    .venv/bin/python benchmarks/loadgen_hall.py --replicas 2 --kills 5 --sessions 6

`Hall` starts deploy/start.sh on free ports in its own process group, reads HAProxy's stats CSV,
waits on conditions (never a fixed sleep) and stops everything; tests/test_hall_heals.py and
benchmarks/loadgen.py (`--replicas`) use it. Run as a script it measures healing: `--sessions`
protocol students hold a lecture, one replica is killed (SIGKILL, as a crash or the OOM killer
would) `--kills` times, and for each kill it records

- *restarted*: seconds until the supervisor's new replica answers /_stcore/health directly;
- *in service*: seconds until HAProxy's stats say UP again *and* a request carrying the dead
  replica's affinity cookie is answered by it (HAProxy keeps the cookie: no redispatch);
- *students back*: seconds until every student of the dead replica has reconnected (as the
  browser does by itself) and has its page again, its view restored from the address.

Kills are `--gap` seconds apart after the hall has healed (the supervisor's backoff restarts at
its minimum once a replica has run RESTART_RESET seconds; the script sets that to `--gap` - 2).
Loopback only; prints mean ± sd and the raw values.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int) -> int:
    """A base port with n consecutive free loopback ports from it."""
    for _ in range(200):
        base = random.randrange(20_000, 60_000)
        if all(_free(base + i) for i in range(n)):
            return base
    raise RuntimeError("no free ports")


class Hall:
    """deploy/start.sh with `replicas` replicas on free loopback ports, logs under `run_dir`."""

    def __init__(self, run_dir: Path, replicas: int, app_dir: Path = ROOT, **env: str) -> None:
        self.run_dir, self.replicas, self.app_dir = run_dir, replicas, app_dir
        self.url = f"http://127.0.0.1:{free_ports(1)}"
        self.stats = f"http://127.0.0.1:{free_ports(1)}/stats;csv"
        self.base_port = free_ports(replicas)
        self.env = env
        self.proc: subprocess.Popen | None = None

    @property
    def names(self) -> list[str]:
        return [f"s{i}" for i in range(1, self.replicas + 1)]

    def replica_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.base_port + int(name.removeprefix('s')) - 1}"

    def start(self, timeout: float = 180.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "RUN_DIR": str(self.run_dir),
            "BASE_PORT": str(self.base_port),
            "SCOREVIZ_BIND": self.url.removeprefix("http://"),
            "SCOREVIZ_STATS_BIND": self.stats.removeprefix("http://").split("/")[0],
            "SCOREVIZ_MODEL_STORE": str(self.run_dir / "models"),
            "PYTHON": sys.executable,
            **self.env,
        }
        self.proc = subprocess.Popen(
            ["bash", str(self.app_dir / "deploy" / "start.sh"), str(self.replicas)],
            cwd=self.app_dir,
            env=env,
            stdout=open(self.run_dir / "start.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one in stop()
        )
        self.wait_status(dict.fromkeys(self.names, "UP"), timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # start.sh's trap stops every child
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> Hall:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- HAProxy's view
    def rows(self) -> dict[str, dict[str, str]]:
        """Server name -> HAProxy's stats row for the app's backend (status, check_status...)."""
        with urllib.request.urlopen(self.stats, timeout=5) as resp:
            text = resp.read().decode().lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {r["svname"]: r for r in rows if r["pxname"] == "streamlit"}

    def status(self) -> dict[str, str]:
        """Server name -> HAProxy's status ("UP", "DOWN", "UP 1/2" = going down, ...)."""
        return {k: r["status"] for k, r in self.rows().items()}

    def wait_status(self, want: dict[str, str], timeout: float = 120.0) -> dict[str, str]:
        return self.wait_for(lambda: _matches(self.status(), want), timeout, f"status {want}")

    def wait_for(self, condition, timeout: float, what: str):
        """Poll `condition()` (OSError counts as false) until truthy; AssertionError after
        `timeout` s with the logs. Returns its last value."""
        end, last = time.monotonic() + timeout, None
        while time.monotonic() < end:
            assert self.proc is not None and self.proc.poll() is None, self.logs()
            with contextlib.suppress(OSError):
                last = condition()
                if last:
                    return last
            time.sleep(0.1)
        raise AssertionError(f"no {what} within {timeout:.0f} s (last: {last})\n{self.logs()}")

    # --- the replicas
    def replica_pid(self, name: str) -> int:
        return int((self.run_dir / f"replica-{name.removeprefix('s')}.pid").read_text())

    def supervisor_pid(self, name: str) -> int:
        return int((self.run_dir / f"replica-{name.removeprefix('s')}.supervisor.pid").read_text())

    def restarts(self, name: str) -> int:
        path = self.run_dir / f"replica-{name.removeprefix('s')}.restarts"
        return int(path.read_text()) if path.exists() else 0

    def healthy(self, name: str) -> bool:
        with urllib.request.urlopen(self.replica_url(name) + "/_stcore/health", timeout=2) as r:
            return r.read().strip() == b"ok"

    def served_by(self, name: str) -> bool:
        """A request through HAProxy carrying `name`'s affinity cookie is answered by `name`
        (HAProxy sets a new SERVERID only when it sends the request elsewhere)."""
        cookies = loadgen._fetch_cookies(self.url, {"SERVERID": name})
        return cookies.get("SERVERID", name) == name

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
            for p in sorted(self.run_dir.glob("*.log"))
        )


def _matches(seen: dict[str, str], want: dict[str, str]) -> bool:
    return all(seen.get(k) == v for k, v in want.items())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ----------------------------------------------------------------------------- healing
async def start_lecture(s: loadgen.StreamlitSession, t_index: int) -> None:
    """A student on Score field with the t slider moved (so the address holds a view)."""
    await s.connect()
    await s.rerun("home")
    await s.open_page("score_field")
    options = s.widget(loadgen.T_SLIDER).options
    await s.select(loadgen.T_SLIDER, options[t_index % len(options)])


async def reconnect(s: loadgen.StreamlitSession) -> None:
    """As a browser whose websocket dropped: fetch the page (a new cookie when HAProxy picks
    another replica), reconnect asking for the old session, rerun the current page."""
    await s.close()
    await s.connect(resume=True, reload=True)
    s.session_id = ""
    await s.rerun("home")


async def kill_and_heal(hall: Hall, victim: str, sessions: list, timeout: float = 120.0) -> dict:
    """Kill `victim` (SIGKILL) while `sessions` hold a lecture; seconds from the kill to each
    stage of healing (see the module docstring). The students reconnect at once, as browsers do,
    while the replica restarts."""
    lost = [s for s in sessions if s.replica == victim]
    old = hall.replica_pid(victim)
    start = time.monotonic()
    os.kill(old, signal.SIGKILL)

    def restarted() -> bool:
        pid = hall.replica_pid(victim)
        return pid != old and alive(pid) and hall.healthy(victim)

    def in_service() -> bool:
        return hall.status().get(victim) == "UP" and hall.served_by(victim)

    async def replica() -> tuple[float, float]:
        await asyncio.to_thread(hall.wait_for, restarted, timeout, f"restart of {victim}")
        t_restarted = time.monotonic() - start
        await asyncio.to_thread(hall.wait_for, in_service, timeout, f"{victim} in the pool")
        return t_restarted, time.monotonic() - start

    async def students() -> float:
        end = time.monotonic() + timeout
        while not all(s.closed for s in lost) and time.monotonic() < end:
            await asyncio.sleep(0.1)
        await asyncio.gather(*(reconnect(s) for s in lost))
        return time.monotonic() - start

    t_back, (t_restarted, t_service) = await asyncio.gather(students(), replica())
    return {
        "restarted": t_restarted,
        "in_service": t_service,
        "students_back": t_back,
        "students": len(lost),
        "load": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--sessions", type=int, default=6)
    p.add_argument("--gap", type=float, default=15.0, help="seconds between heal and next kill")
    p.add_argument("--run-dir", type=Path, default=None)
    args = p.parse_args(argv)
    run_dir = args.run_dir or Path(os.environ.get("TMPDIR", "/tmp")) / f"hall-{os.getpid()}"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    reset = str(max(1, int(args.gap) - 2))
    rows = []
    with Hall(run_dir, args.replicas, RESTART_RESET=reset) as hall:
        for k in range(args.kills):
            rows.append(asyncio.run(_one_kill(hall, "s1", args.sessions)))
            print(k + 1, rows[-1], flush=True)
            time.sleep(args.gap)  # the replica outlives RESTART_RESET: backoff at its minimum
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')} UTC, {args.replicas} replicas, {len(rows)} kills")
    for key in ("restarted", "in_service", "students_back"):
        xs = [r[key] for r in rows]
        sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
        print(f"{key:>14}: {statistics.fmean(xs):.1f} ± {sd:.1f} s (max {max(xs):.1f}) {xs}")
    print("load (1 min) at each heal:", [round(r["load"], 1) for r in rows])
    return 0


async def _one_kill(hall: Hall, victim: str, n: int) -> dict:
    """n students start a lecture, half of them on `victim`, which is then killed."""
    sessions = [loadgen.StreamlitSession(hall.url, timeout=120) for _ in range(n)]
    for s in sessions[: n // 2]:
        s.cookies["SERVERID"] = victim  # as if HAProxy had put them there
    try:
        await asyncio.gather(*(start_lecture(s, i) for i, s in enumerate(sessions)))
        row = await kill_and_heal(hall, victim, sessions)
        row["exceptions"] = sum(len(s.exceptions) for s in sessions)
        return row
    finally:
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


if __name__ == "__main__":
    raise SystemExit(main())
