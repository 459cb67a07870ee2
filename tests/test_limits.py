"""Server-wide limits (scoreviz.ui.limits) and the cost caps of the core, with real threads."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from scoreviz.errors import ConfigError
from scoreviz.mixture import memorising_optimum
from scoreviz.training import MAX_N_TRAIN, TrainConfig
from scoreviz.ui import limits


def _wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


class Gauge:
    """Counts how many threads are inside at once (and the most ever)."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.lock = threading.Lock()

    def work(self, release: threading.Event) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        release.wait(10)
        with self.lock:
            self.now -= 1


def test_slots_admit_at_most_capacity_at_once():
    slots, gauge, release = limits.Slots(2), Gauge(), threading.Event()

    def body():
        with slots.slot():
            gauge.work(release)

    threads = [threading.Thread(target=body) for _ in range(6)]
    for th in threads:
        th.start()
    _wait_for(lambda: len(slots.snapshot()[1]) == 4)  # 2 hold, 4 wait
    assert gauge.now == 2
    release.set()
    for th in threads:
        th.join(10)
    assert gauge.most == 2 and gauge.now == 0
    assert slots.snapshot() == ([], [])


def test_waiters_get_their_queue_position_and_are_admitted_in_order():
    slots = limits.Slots(2)
    a, b = slots.acquire("a"), slots.acquire("b")
    seen: dict[str, list[int]] = {"c": [], "d": [], "e": []}
    order: list[str] = []

    def waiter(name):
        slots.acquire(name, on_wait=lambda ahead: seen[name].append(ahead), poll=0.01)
        order.append(name)

    threads = []
    for name in ("c", "d", "e"):
        threads.append(threading.Thread(target=waiter, args=(name,)))
        threads[-1].start()
        _wait_for(lambda name=name: slots.position(name) is not None)
    assert [slots.position(n) for n in ("c", "d", "e")] == [0, 1, 2]
    _wait_for(lambda: all(seen.values()))
    assert (seen["c"][0], seen["d"][0], seen["e"][0]) == (0, 1, 2)
    slots.release(a)
    _wait_for(lambda: order == ["c"])
    assert [slots.position(n) for n in ("d", "e")] == [0, 1]
    slots.release(b)
    slots.release("c")
    for th in threads:
        th.join(10)
    assert order == ["c", "d", "e"]


def test_a_wait_can_be_abandoned_and_leaves_the_queue():
    slots = limits.Slots(1)
    held = slots.acquire()
    with pytest.raises(limits.SlotWaitAbandoned):
        slots.acquire("late", on_wait=lambda ahead: True)
    assert slots.position("late") is None and slots.snapshot()[1] == []
    slots.release(held)
    slots.release(slots.acquire("next"))  # the slot is free again


def test_heavy_computations_run_at_most_heavy_slots_at_once(monkeypatch):
    monkeypatch.setattr(limits, "_HEAVY", limits.Slots(limits.HEAVY_SLOTS))
    gauge, release = Gauge(), threading.Event()
    work = limits.heavy(lambda: gauge.work(release))
    threads = [threading.Thread(target=work) for _ in range(limits.HEAVY_SLOTS + 3)]
    for th in threads:
        th.start()
    _wait_for(lambda: len(limits._HEAVY.snapshot()[1]) == 3)
    release.set()
    for th in threads:
        th.join(10)
    assert gauge.most == limits.HEAVY_SLOTS and gauge.now == 0


def test_heavy_work_of_a_session_that_has_gone_is_dropped(monkeypatch):
    monkeypatch.setattr(limits, "_HEAVY", limits.Slots(1))
    monkeypatch.setattr(limits, "current_session_id", lambda: "s1")
    alive = {"s1": True}
    monkeypatch.setattr(limits, "session_alive", lambda sid: alive[sid])
    calls = []
    work = limits.heavy(lambda: calls.append(1))
    alive["s1"] = False
    with pytest.raises(limits.SlotWaitAbandoned, match="closed"):
        work()  # gone before it starts
    held = limits._HEAVY.acquire()
    alive["s1"] = True
    errors = []
    th = threading.Thread(target=lambda: _catch(work, errors))
    th.start()
    _wait_for(lambda: limits._HEAVY.snapshot()[1])
    alive["s1"] = False  # the tab closes while the computation waits for a slot
    th.join(10)
    limits._HEAVY.release(held)
    assert calls == [] and len(errors) == 1 and "closed" in str(errors[0])
    assert limits._HEAVY.snapshot() == ([], [])


def _catch(fn, errors):
    try:
        fn()
    except limits.SlotWaitAbandoned as exc:
        errors.append(exc)


def test_wait_text_names_the_position():
    assert "you are next" in limits.heavy_wait_text(0)
    assert "2 ahead of you" in limits.heavy_wait_text(2)


def test_session_alive_without_a_runtime():
    assert limits.session_alive(None) and limits.session_alive("no-such-session")


# ----------------------------------------------------------------------------- cost caps
def test_n_train_over_the_cap_is_refused_with_a_clear_message():
    TrainConfig(n_train=MAX_N_TRAIN)
    with pytest.raises(ConfigError, match=r"\[1, 5,000\].*100,000.*infinite data"):
        TrainConfig(n_train=100_000)


def test_memorising_optimum_keeps_at_most_max_points_of_the_training_set():
    pts = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(memorising_optimum(pts, max_points=50).means, pts)
    sub = memorising_optimum(pts, max_points=20, seed=3).means
    assert sub.shape == (20, 2)
    assert len({tuple(p) for p in sub.tolist()}) == 20  # without replacement
    assert {tuple(p) for p in sub.tolist()} <= {tuple(p) for p in pts.tolist()}
    assert torch.equal(sub, memorising_optimum(pts, max_points=20, seed=3).means)


# ----------------------------------------------------------------------------- in the app
@pytest.mark.slow
def test_a_page_waits_for_a_compute_slot_then_draws_and_clears_the_notice(monkeypatch):
    from scoreviz.ui import compute
    from tests.apptest_utils import assert_no_exception, chart_specs, make_app, open_page

    slots = limits.Slots(1)
    monkeypatch.setattr(limits, "_HEAVY", slots)
    at = make_app().run()
    compute.weighting_floors.clear()
    compute.loss_floors.clear()
    held = slots.acquire()  # another session's computation holds the only slot
    page = threading.Thread(target=lambda: open_page(at, "views/loss.py"))
    page.start()
    _wait_for(lambda: slots.snapshot()[1], timeout=60)  # the page waits in the queue
    slots.release(held)
    page.join(120)
    assert not page.is_alive()
    assert_no_exception(at)
    assert chart_specs(at), "the page drew nothing after its wait"
    assert not any("compute slot" in i.value for i in at.info)
    assert slots.snapshot() == ([], [])
