"""The background training job, without Streamlit: Stop stops, divergence is caught, queueing."""

from __future__ import annotations

import time

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
