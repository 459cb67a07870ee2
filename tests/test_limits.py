"""Server-wide limits in the app (scoreviz.ui.limits: heavy computations in the FIFO slots of
scoreviz.jobs) and the cost caps of the core, with real threads."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from scoreviz.errors import ConfigError
from scoreviz.jobs import Slots, SlotWaitAbandoned
from scoreviz.mixture import memorising_optimum
from scoreviz.training import MAX_N_TRAIN, TrainConfig
from scoreviz.ui import limits
from tests.test_jobs import Gauge


def _wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_heavy_computations_run_at_most_heavy_slots_at_once(monkeypatch):
    monkeypatch.setattr(limits, "_HEAVY", Slots(limits.HEAVY_SLOTS))
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
    monkeypatch.setattr(limits, "_HEAVY", Slots(1))
    monkeypatch.setattr(limits, "current_session_id", lambda: "s1")
    alive = {"s1": True}
    monkeypatch.setattr(limits, "session_alive", lambda sid: alive[sid])
    calls = []
    work = limits.heavy(lambda: calls.append(1))
    alive["s1"] = False
    with pytest.raises(SlotWaitAbandoned, match="closed"):
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
    except SlotWaitAbandoned as exc:
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
    from scoreviz.ui import cache
    from tests.apptest_utils import assert_no_exception, chart_specs, make_app, open_page

    slots = Slots(1)
    monkeypatch.setattr(limits, "_HEAVY", slots)
    at = make_app().run()
    cache.weighting_floors.clear()
    cache.loss_floors.clear()
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
