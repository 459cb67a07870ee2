"""A hall that heals: deploy/start.sh with 2 replicas; one is killed (SIGKILL, as a crash or the
OOM killer would) in the middle of a lecture, and

- its supervisor starts a new replica process, which answers /_stcore/health;
- HAProxy's stats show it UP, and a request carrying its affinity cookie is answered by it
  (not redispatched), so it is back in the pool;
- its students reconnect (as the browser does by itself) and get a working page with their
  view (the same t) restored from the address; the other replica's students stay connected;
- a second kill is healed too (the supervisor keeps supervising, backoff and all), and stopping
  the hall leaves no replica or supervisor behind.

Conditions are waited for with generous timeouts (a busy CI box); nothing asserts speed. The
seconds each stage took are printed (benchmarks/loadgen_hall.py measures them over many kills).
Skipped only where haproxy is not installed, except in CI (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import loadgen  # noqa: E402
import loadgen_hall  # noqa: E402

pytestmark = pytest.mark.slow
TIMEOUT = 180.0  # seconds for any one condition on a busy box


@pytest.fixture(scope="module")
def hall(tmp_path_factory):
    if shutil.which("haproxy") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide haproxy (.ci/run installs it)")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    h = loadgen_hall.Hall(tmp_path_factory.mktemp("hall"), 2)
    with h:
        yield h
    pids = [p for name in h.names for p in (h.replica_pid(name), h.supervisor_pid(name))]
    assert not [p for p in pids if loadgen_hall.alive(p)], "start.sh left processes behind"


def _t(s: loadgen.StreamlitSession) -> str:
    return dict(urllib.parse.parse_qsl(s.query))["t"]


def test_a_killed_replica_is_restarted_and_its_students_get_their_view_back(hall):
    asyncio.run(_kill_twice(hall))


async def _kill_twice(hall: loadgen_hall.Hall) -> None:
    victim, other = "s1", "s2"
    for kill in (1, 2):
        sessions = [loadgen.StreamlitSession(hall.url, timeout=TIMEOUT) for _ in range(4)]
        for s, name in zip(sessions, (victim, victim, other, other), strict=True):
            s.cookies["SERVERID"] = name  # two students on each replica
        try:
            await asyncio.gather(
                *(loadgen_hall.start_lecture(s, 3 + i) for i, s in enumerate(sessions))
            )
            assert [s.replica for s in sessions] == [victim, victim, other, other]
            views = [_t(s) for s in sessions]
            ids = [s.session_id for s in sessions]
            old_pid = hall.replica_pid(victim)

            healed = await loadgen_hall.kill_and_heal(hall, victim, sessions, TIMEOUT)
            print(f"kill {kill}: {healed}")

            assert not loadgen_hall.alive(old_pid)
            assert hall.replica_pid(victim) != old_pid and hall.restarts(victim) == kill
            assert hall.status() == {victim: "UP", other: "UP", "BACKEND": "UP"}
            lost, kept = sessions[:2], sessions[2:]
            for s, view, sid in zip(lost, views[:2], ids[:2], strict=True):
                assert not s.closed and s.session_id and s.session_id != sid  # a new session
                assert any("restored from its address" in t for t in s.toasts), s.toasts
                assert _t(s) == view  # the student's t, not the default
            assert [s.session_id for s in kept] == ids[2:] and not any(s.closed for s in kept)
            # Every student works: the restored ones on whichever replica took them.
            await asyncio.gather(*(s.open_page("score_field") for s in sessions))
            assert all(s.exceptions == [] and s.errors_shown == [] for s in sessions)
        finally:
            await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
    # The restarted replica takes new students through the balancer: affinity to it works.
    fresh = loadgen.StreamlitSession(hall.url, timeout=TIMEOUT, cookies={"SERVERID": victim})
    try:
        await loadgen_hall.start_lecture(fresh, 0)
        assert fresh.replica == victim and fresh.exceptions == []
    finally:
        await fresh.close()
