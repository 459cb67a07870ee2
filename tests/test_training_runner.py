"""The background training job, without Streamlit: Stop stops, divergence is caught, queueing."""

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
        for _ in held:
            tr._SLOTS.release()
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
