"""The background training job, without Streamlit: Stop stops, divergence is caught, queueing,
a job whose session has gone stops after the grace period, an overrunning job is stopped."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from scoreviz.errors import TrainingDivergedError
from scoreviz.models import ModelConfig
from scoreviz.training import TrainConfig
from scoreviz.ui import training_runner as tr

pytestmark = pytest.mark.slow
SMALL = ModelConfig(width=32, depth=2)


def _wait_for(cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


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


def test_divergence_is_recorded_not_raised():
    job = tr.TrainingJob(TrainConfig(steps=200, lr=1e6, model=SMALL), name="boom").start()
    assert job.wait(60)
    assert job.result is None and isinstance(job.error, TrainingDivergedError)
    assert "learning rate" in str(job.error)


def test_finished_job_reports_full_progress():
    job = tr.TrainingJob(TrainConfig(steps=60, model=SMALL), name="short", every=20)
    job.run()  # synchronous: the same body the thread runs
    assert job.done and job.fraction == 1.0 and not job.result.stopped
    assert job.history()["step"].tolist() == [20, 40, 60]


def test_queued_job_can_be_cancelled_before_it_starts():
    held = [tr._SLOTS.acquire() for _ in range(tr.MAX_CONCURRENT)]
    try:
        job = tr.TrainingJob(TrainConfig(steps=50, model=SMALL), name="queued").start()
        time.sleep(0.1)
        assert job.queued and not job.done
        job.request_stop()
    finally:
        for ticket in held:
            tr._SLOTS.release(ticket)
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


def test_identical_jobs_pressed_together_train_once(monkeypatch):
    """A hall of students pressing Train at the same moment: one training, one shared result."""
    from scoreviz.ui.state import _SharedModels

    calls = _counting_train(monkeypatch)
    store = _SharedModels(8)
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


def test_a_stopped_leader_is_not_shared_and_a_follower_trains_itself(monkeypatch):
    from scoreviz.ui.state import _SharedModels

    calls = _counting_train(monkeypatch)
    store = _SharedModels(8)
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


def test_a_follower_can_stop_waiting_without_stopping_the_leader():
    from scoreviz.ui.state import _SharedModels

    store = _SharedModels(8)
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
def test_a_job_stops_once_its_session_has_been_gone_for_the_grace_period(monkeypatch):
    here = {"alive": True}
    job = tr.TrainingJob(
        TrainConfig(steps=20_000, model=SMALL), name="tab", every=10, grace=30.0,
        alive=lambda: here["alive"],
    )  # fmt: skip
    now = [1000.0]
    monkeypatch.setattr(tr.time, "monotonic", lambda: now[0])
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


def test_a_waiting_job_of_a_gone_session_leaves_the_queue():
    held = [tr._SLOTS.acquire() for _ in range(tr.MAX_CONCURRENT)]
    try:
        job = tr.TrainingJob(
            TrainConfig(steps=50, model=SMALL), name="queued", grace=0.0, alive=lambda: False
        ).start()
        assert job.wait(10), "a gone session's job kept waiting for a slot"
    finally:
        for ticket in held:
            tr._SLOTS.release(ticket)
    assert job.result is None and "stopped before it started" in str(job.error)
    assert job not in tr._SLOTS.snapshot()[1]


def test_an_overrunning_job_is_stopped_and_keeps_its_model():
    job = tr.TrainingJob(
        TrainConfig(steps=20_000, model=SMALL), name="long", every=10, time_limit=0.3
    ).start()
    assert job.wait(60), "the time limit did not stop the job"
    assert job.error is None and job.result.stopped and job.end_reason == "time limit"
    assert 0 < len(job.result.history) < 20_000


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
        assert "1st in line, about" in tr.queue_text((place, wait))
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
    assert tr.queue_text((2, 40.0)).startswith(
        "Waiting for a free training slot: 2nd in line, about 40 s"
    )
