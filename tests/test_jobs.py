"""scoreviz.jobs without Streamlit, with real threads: FIFO slots; the background training job
(Stop stops, divergence is caught, queueing, a job whose session has gone stops after the grace
period, an overrunning job is stopped, identical jobs train once); the shared model store; every
running job stopped and joined by `stop_all`. Barriers are events and polled state, never sleeps."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from scoreviz.errors import TrainingDivergedError
from scoreviz.jobs import SharedModels, Slots, SlotWaitAbandoned
from scoreviz.jobs import training_job as tr
from scoreviz.models import ModelConfig
from scoreviz.training import TrainConfig

SMALL = ModelConfig(width=32, depth=2)
trains = pytest.mark.slow  # runs real (small) trainings


def _wait_for(cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


# ----------------------------------------------------------------------------- slots
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
    slots, gauge, release = Slots(2), Gauge(), threading.Event()

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
    slots = Slots(2)
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
    slots = Slots(1)
    held = slots.acquire()
    with pytest.raises(SlotWaitAbandoned):
        slots.acquire("late", on_wait=lambda ahead: True)
    assert slots.position("late") is None and slots.snapshot()[1] == []
    slots.release(held)
    slots.release(slots.acquire("next"))  # the slot is free again


# ----------------------------------------------------------------------------- training jobs
@trains
def test_stop_event_really_stops_training():
    job = tr.TrainingJob(TrainConfig(steps=20_000, model=SMALL), name="long", every=10).start()
    _wait_for(lambda: job.steps_done >= 20)
    job.request_stop()
    assert job.wait(30), "training did not stop"
    assert job.error is None and job.result is not None
    assert job.result.stopped
    assert len(job.result.history) < 20_000
    assert not job.thread.is_alive()
    hist = job.history()
    assert list(hist.columns) == ["step", "loss", "elapsed"] and len(hist) >= 2
    assert hist["step"].is_monotonic_increasing


@trains
def test_divergence_is_recorded_not_raised():
    job = tr.TrainingJob(TrainConfig(steps=200, lr=1e6, model=SMALL), name="boom").start()
    assert job.wait(60)
    assert job.result is None and isinstance(job.error, TrainingDivergedError)
    assert "learning rate" in str(job.error)


@trains
def test_finished_job_reports_full_progress():
    job = tr.TrainingJob(TrainConfig(steps=60, model=SMALL), name="short", every=20)
    job.run()  # synchronous: the same body the thread runs
    assert job.done and job.fraction == 1.0 and not job.result.stopped
    assert job.history()["step"].tolist() == [20, 40, 60]


@trains
def test_queued_job_can_be_cancelled_before_it_starts():
    held = [tr.SLOTS.acquire() for _ in range(tr.MAX_CONCURRENT)]
    try:
        job = tr.TrainingJob(TrainConfig(steps=50, model=SMALL), name="queued").start()
        _wait_for(lambda: job.queue_place() is not None)  # it waits in the slots' queue
        assert job.queued and not job.done
        job.request_stop()
    finally:
        for ticket in held:
            tr.SLOTS.release(ticket)
    assert job.wait(30)
    assert job.result is None and "stopped before it started" in str(job.error)


def _counting_train(monkeypatch) -> list[str]:
    """Record every real call of training.train (the job imports it at call time)."""
    import scoreviz.training as training

    calls: list[str] = []
    real = training.train

    def counted(config, **kw):
        calls.append(config.model_id)
        return real(config, **kw)

    monkeypatch.setattr(training, "train", counted)
    return calls


@trains
def test_identical_jobs_pressed_together_train_once(monkeypatch):
    """A hall of students pressing Train at the same moment: one training, one shared result."""
    calls = _counting_train(monkeypatch)
    store = SharedModels(8)
    config = TrainConfig(steps=300, model=SMALL, seed=11)
    jobs = [
        tr.TrainingJob(config, name=f"student {i}", store=store, every=10).start() for i in range(6)
    ]
    _wait_for(lambda: any(j.leader() is not None for j in jobs))  # followers see the leader
    assert all(j.wait(120) for j in jobs)
    assert calls == [config.model_id], "identical configs must train exactly once"
    results = {id(j.result) for j in jobs}
    assert len(results) == 1 and all(j.error is None for j in jobs)
    assert sum(not j.reused for j in jobs) == 1  # one leader, five followers
    assert store.get(config.model_id) is jobs[0].result
    # A different config is not deduplicated against it.
    other = tr.TrainingJob(replace(config, seed=12), name="other", store=store)
    other.run()
    assert len(calls) == 2 and not other.reused


@trains
def test_a_stopped_leader_is_not_shared_and_a_follower_trains_itself(monkeypatch):
    calls = _counting_train(monkeypatch)
    store = SharedModels(8)
    config = TrainConfig(steps=20_000, model=SMALL, seed=21)
    leader = tr.TrainingJob(config, name="leader", store=store, every=10).start()
    _wait_for(lambda: leader.steps_done >= 20)
    follower = tr.TrainingJob(replace(config), name="follower", store=store, every=10).start()
    _wait_for(lambda: follower.leader() is leader)
    assert follower.queued
    leader.request_stop()
    assert leader.wait(30) and leader.result.stopped
    _wait_for(lambda: follower.steps_done >= 20)  # the follower now trains itself
    follower.request_stop()
    assert follower.wait(30)
    assert calls == [config.model_id] * 2 and not follower.reused
    assert store.get(config.model_id) is None  # partial models are never shared


@trains
def test_a_follower_can_stop_waiting_without_stopping_the_leader():
    store = SharedModels(8)
    config = TrainConfig(steps=20_000, model=SMALL, seed=31)
    leader = tr.TrainingJob(config, name="leader", store=store, every=10).start()
    _wait_for(lambda: leader.steps_done >= 10)
    follower = tr.TrainingJob(config, name="follower", store=store).start()
    _wait_for(lambda: follower.leader() is leader)
    follower.request_stop()
    assert follower.wait(10) and "stopped before it started" in str(follower.error)
    assert not leader.done and not leader.stop_event.is_set()
    leader.request_stop()
    assert leader.wait(30)


# ----------------------------------------------------------------------------- lifecycle
def test_a_job_stops_once_its_session_has_been_gone_for_the_grace_period():
    here = {"alive": True}
    now = [1000.0]
    job = tr.TrainingJob(
        TrainConfig(steps=20_000, model=SMALL), name="tab", every=10, grace=30.0,
        alive=lambda: here["alive"], clock=lambda: now[0],
    )  # fmt: skip
    assert not job._should_stop()
    here["alive"] = False  # the tab closes
    assert not job._should_stop()  # within the grace period: a reconnect would be fine
    now[0] += 29.0
    assert not job._should_stop()
    here["alive"] = True  # it reconnected: the clock starts again
    assert not job._should_stop()
    here["alive"] = False
    now[0] += 1.0
    assert not job._should_stop()
    now[0] += 30.0
    assert job._should_stop() and job.end_reason == "session gone"


@trains
def test_a_training_job_of_a_gone_session_really_stops():
    here = {"alive": True}
    job = tr.TrainingJob(
        TrainConfig(steps=20_000, model=SMALL), name="tab", every=10, grace=0.2,
        alive=lambda: here["alive"],
    ).start()  # fmt: skip
    _wait_for(lambda: job.steps_done >= 20)
    here["alive"] = False
    assert job.wait(30), "the job kept training after its session had gone"
    assert job.result.stopped and job.end_reason == "session gone"
    assert len(job.result.history) < 20_000


@trains
def test_a_waiting_job_of_a_gone_session_leaves_the_queue():
    held = [tr.SLOTS.acquire() for _ in range(tr.MAX_CONCURRENT)]
    try:
        job = tr.TrainingJob(
            TrainConfig(steps=50, model=SMALL), name="queued", grace=0.0, alive=lambda: False
        ).start()
        assert job.wait(10), "a gone session's job kept waiting for a slot"
    finally:
        for ticket in held:
            tr.SLOTS.release(ticket)
    assert job.result is None and "stopped before it started" in str(job.error)
    assert job not in tr.SLOTS.snapshot()[1]


@trains
def test_an_overrunning_job_is_stopped_and_keeps_its_model():
    job = tr.TrainingJob(
        TrainConfig(steps=20_000, model=SMALL), name="long", every=10, time_limit=0.3
    ).start()
    assert job.wait(60), "the time limit did not stop the job"
    assert job.error is None and job.result.stopped and job.end_reason == "time limit"
    assert 0 < len(job.result.history) < 20_000


@trains
def test_queue_position_and_estimate_with_three_jobs_and_two_slots():
    assert tr.MAX_CONCURRENT == 2
    jobs = [
        tr.TrainingJob(TrainConfig(steps=20_000, model=SMALL, seed=40 + i), name=f"j{i}", every=10)
        for i in range(3)
    ]
    try:
        for job in jobs[:2]:
            job.start()
        _wait_for(lambda: all(j.steps_done >= 10 for j in jobs[:2]))
        jobs[2].start()
        _wait_for(lambda: jobs[2].queue_place() is not None)
        assert jobs[0].queue_place() is None and jobs[1].queue_place() is None
        place, wait = jobs[2].queue_place()
        assert place == 1 and jobs[2].queued
        assert 0 < wait <= max(j.remaining() for j in jobs[:2]) + 1e-9
        jobs[0].request_stop()  # a slot frees: the third job starts
        _wait_for(lambda: jobs[2].steps_done >= 10)
        assert jobs[2].queue_place() is None
    finally:
        for job in jobs:
            job.request_stop()
        assert all(j.wait(30) for j in jobs if j.thread is not None)


class _Fake:
    def __init__(self, left: float) -> None:
        self.left = self.estimate = left

    def remaining(self) -> float:
        return self.left


def test_expected_wait_simulates_the_slots():
    running = [_Fake(10.0), _Fake(40.0)]
    assert tr.expected_wait(running, [], 2) == 10.0  # next: when the first running one ends
    assert tr.expected_wait(running, [_Fake(50.0)], 2) == 40.0  # 2nd: the other slot frees
    assert tr.expected_wait(running, [_Fake(5.0)], 2) == 15.0  # ... or the first, again
    assert tr.expected_wait([_Fake(10.0)], [], 2) == 0.0  # a free slot


# ----------------------------------------------------------------------------- shared store
def test_shared_models_is_a_bounded_lru():
    store = SharedModels(2)
    store.put("a", 1)
    store.put("b", 2)
    assert store.get("a") == 1  # "a" is now the most recent
    store.put("c", 3)  # over the bound: the least recently used ("b") goes
    assert (store.get("a"), store.get("b"), store.get("c")) == (1, None, 3)
    store.discard("a")
    store.discard("never there")
    assert len(store) == 1 and store.get("a") is None


# ----------------------------------------------------------------------------- exit
@trains
def test_stop_all_stops_and_joins_every_running_job():
    jobs = [
        tr.TrainingJob(TrainConfig(steps=20_000, model=SMALL, seed=50 + i), name=f"x{i}", every=10)
        for i in range(3)  # two train, one waits for a slot
    ]
    for job in jobs:
        job.start()
    _wait_for(lambda: all(j.steps_done >= 10 for j in jobs[:2]))
    try:
        assert tr.stop_all(timeout=60)
        assert all(j.done and not j.thread.is_alive() for j in jobs)
        assert all(j.result.stopped for j in jobs[:2])
        assert jobs[2].result is None and isinstance(jobs[2].error, tr.Cancelled)
        assert all(j.result.quality is None for j in jobs[:2])  # no sampling at exit
    finally:
        tr._EXITING.clear()
