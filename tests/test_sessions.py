"""scoreviz.ui.sessions: a session gone for the grace period is closed (its state and upload
freed), a connected or reconnected one never is. A fake clock and a fake runtime; the real
close is measured by benchmarks/sessions_rss.py."""

from __future__ import annotations

import gc
import weakref

from scoreviz.ui.sessions import SessionReaper


class FakeRuntime:
    """Sessions with their state; `close` drops a session's state like AppSession.shutdown."""

    def __init__(self) -> None:
        self.states: dict[str, dict] = {}
        self.connected: set[str] = set()
        self.closed: list[str] = []

    def close(self, sid: str) -> None:
        self.closed.append(sid)
        self.states.pop(sid, None)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Upload:  # an object a weak reference can follow
    pass


def _reaper(rt: FakeRuntime, clock: Clock, released: list) -> SessionReaper:
    return SessionReaper(
        30.0, rt.connected.__contains__, rt.close, lambda: released.append(1), clock
    )


def test_a_closed_sessions_state_is_released_after_the_grace_period():
    rt, clock, released = FakeRuntime(), Clock(), []
    reaper = _reaper(rt, clock, released)
    for sid in ("a", "b"):
        rt.states[sid] = {"upload": Upload()}
        rt.connected.add(sid)
        reaper.track(sid)
    upload = weakref.ref(rt.states["a"]["upload"])
    rt.connected.discard("a")  # tab closed
    assert reaper.sweep() == []  # first seen gone now
    clock.now = 29.0
    assert reaper.sweep() == [] and upload() is not None  # within the grace: kept
    clock.now = 31.0
    assert reaper.sweep() == ["a"]
    gc.collect()
    assert upload() is None  # nothing else held the session's upload
    assert rt.closed == ["a"] and "b" in rt.states and released == [1]
    assert reaper.tracked() == 1  # the closed session is forgotten
    clock.now = 100.0
    assert reaper.sweep() == [] and rt.closed == ["a"]  # closed once; "b" is connected


def test_a_reconnect_within_the_grace_period_keeps_the_session():
    rt, clock, released = FakeRuntime(), Clock(), []
    reaper = _reaper(rt, clock, released)
    reaper.track("a")
    reaper.sweep()  # gone at t = 0
    clock.now = 20.0
    rt.connected.add("a")  # back
    reaper.sweep()
    rt.connected.discard("a")
    clock.now = 40.0
    assert reaper.sweep() == []  # gone again at t = 40: a fresh grace period
    clock.now = 65.0
    assert reaper.sweep() == []
    clock.now = 71.0
    assert reaper.sweep() == ["a"] and released == [1]


def test_a_failing_close_does_not_stop_the_others():
    rt, clock = FakeRuntime(), Clock()

    def close(sid: str) -> None:
        if sid == "bad":
            raise RuntimeError("event loop closed")
        rt.close(sid)

    reaper = SessionReaper(30.0, rt.connected.__contains__, close, clock=clock)
    for sid in ("bad", "good"):
        reaper.track(sid)
    reaper.sweep()
    clock.now = 30.0
    assert sorted(reaper.sweep()) == ["bad", "good"] and rt.closed == ["good"]


def test_outside_a_server_tracking_is_a_no_op():
    from scoreviz.ui.sessions import track_session

    track_session()  # no runtime, no script run: nothing to track, no thread, no error
