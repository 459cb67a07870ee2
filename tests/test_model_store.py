"""scoreviz.model_store: the on-disk store replicas share. Round trip (weights, history, quality),
atomic writes, damaged files count as absent, off when the variable is unset, two processes
racing for one model train it once, and the training job loads what another process trained."""

from __future__ import annotations

import multiprocessing
import os
import sys
import types
from dataclasses import replace

import pytest
import torch

from scoreviz import model_store
from scoreviz.model_store import ModelStore
from scoreviz.models import ModelConfig
from scoreviz.quality import Quality
from scoreviz.training import TrainConfig, train

pytestmark = pytest.mark.slow
SMALL = ModelConfig(width=16, depth=1, n_freqs=4, x_freqs=0)
QUALITY = Quality(0.05, 1.1, 0.01, 0.01, 0.02, (0.5, -1.0), 2000)


def _tiny(seed: int = 0, steps: int = 30) -> TrainConfig:
    return TrainConfig(steps=steps, model=SMALL, seed=seed, batch_size=64)


@pytest.fixture(scope="module")
def trained():
    result = train(_tiny())
    result.quality = QUALITY
    return result


def _same_weights(a, b) -> bool:
    sa, sb = a.model.net.state_dict(), b.model.net.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_keeps_weights_history_and_quality(tmp_path, trained):
    store = ModelStore(tmp_path / "models")
    assert store.get(trained.model_id) is None and trained.model_id not in store
    path = store.put(trained)
    assert path.name == f"{trained.model_id}.safetensors"
    back = store.get(trained.model_id)
    assert back.model_id == trained.model_id and back.config == trained.config
    assert _same_weights(back, trained)
    assert back.history["loss"].tolist() == trained.history["loss"].tolist()
    assert back.quality == QUALITY


def test_writes_leave_no_temporary_files_and_replace_whole(tmp_path, trained):
    store = ModelStore(tmp_path)
    store.put(trained)
    store.put(trained)  # a second write replaces the first
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"{trained.model_id}.quality.json", f"{trained.model_id}.safetensors"]


def test_a_failed_write_leaves_nothing_behind(tmp_path, trained, monkeypatch):
    store = ModelStore(tmp_path)

    def boom(result):
        raise OSError("disk full")

    monkeypatch.setattr(model_store, "export_model", boom)
    trained_no_quality = replace(trained, quality=None)
    with pytest.raises(OSError, match="disk full"):
        store.put(trained_no_quality)
    assert list(tmp_path.iterdir()) == []


def test_damaged_or_misnamed_files_count_as_absent(tmp_path, trained):
    store = ModelStore(tmp_path)
    path = store.put(trained)
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    assert store.get(trained.model_id) is None
    other = "0123456789ab"
    store.put(trained)
    os.replace(path, store.path(other))  # a whole file under another model's name
    assert store.get(other) is None


def test_model_ids_are_checked_before_any_path_is_built(tmp_path):
    store = ModelStore(tmp_path)
    for bad in ("../../etc/passwd", "abc", "0123456789AB", "0123456789abc"):
        with pytest.raises(ValueError, match="model id"):
            store.path(bad)


def test_off_unless_the_variable_names_a_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(model_store.ENV_VAR, raising=False)
    assert model_store.from_env() is None
    monkeypatch.setenv(model_store.ENV_VAR, "  ")
    assert model_store.from_env() is None
    monkeypatch.setenv(model_store.ENV_VAR, str(tmp_path / "store"))
    assert model_store.from_env().root == tmp_path / "store"
    assert (tmp_path / "store").is_dir()


def test_a_stopped_result_is_not_stored(tmp_path, trained):
    store = ModelStore(tmp_path)
    stopped = replace(trained, stopped=True)
    result, loaded = store.get_or_create(trained.model_id, lambda: stopped)
    assert result is stopped and not loaded
    assert trained.model_id not in store


def test_waiting_for_the_lock_can_be_abandoned(tmp_path):
    store = ModelStore(tmp_path)
    model_id = _tiny().model_id
    with store.lock(model_id):
        # flock is per open file description: a second open() in this process must wait too
        with pytest.raises(model_store.StoreWaitAbandoned):
            with store.lock(model_id, should_stop=lambda: True):
                pass


def _race(root: str, log: str, waiting, seed: int) -> None:
    """One 'replica': get or train the model. Whoever holds the lock trains, but only once the
    other is seen waiting for that lock (the store asks `should_stop` only while flock is
    refused): no sleep decides whether the two calls overlap."""
    store = ModelStore(root)
    config = _tiny(seed=seed, steps=200)

    def create():
        overlapped = waiting.wait(120)  # the other replica is blocked on this model's lock
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {'overlapped' if overlapped else 'alone'}\n")
        return train(config)

    def blocked() -> bool:
        waiting.set()
        return False  # keep waiting

    store.get_or_create(config.model_id, create, should_stop=blocked)


def test_two_processes_racing_for_one_model_train_it_once(tmp_path, monkeypatch):
    # spawn re-runs the parent's __main__ in each child; after an AppTest in this process that
    # is app.py, which must not run outside Streamlit: give the children a bare __main__
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter, like a replica
    waiting, log = ctx.Event(), tmp_path / "trainings.log"
    procs = [
        ctx.Process(target=_race, args=(str(tmp_path / "store"), str(log), waiting, 5))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(300)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0, 0]
    trainings = log.read_text().splitlines()
    assert len(trainings) == 1, f"the model must be trained by one process only: {trainings}"
    assert trainings[0].endswith(" overlapped"), "the other process never waited for the lock"
    stored = ModelStore(tmp_path / "store").get(_tiny(seed=5, steps=200).model_id)
    assert stored is not None and not stored.stopped


def test_a_training_job_loads_what_another_process_trained(tmp_path, monkeypatch):
    """The app's hook: with the variable set, a fresh server (empty in-process store) loads the
    model from disk instead of training it; without it, it trains."""
    from scoreviz.ui import training_runner as tr
    from scoreviz.ui.state import _SharedModels

    monkeypatch.setenv(model_store.ENV_VAR, str(tmp_path))
    config = _tiny(seed=9, steps=60)
    first = tr.TrainingJob(config, name="replica 1", store=_SharedModels(4))
    first.run()
    assert first.error is None and not first.reused and not first.from_store
    assert config.model_id in ModelStore(tmp_path)

    calls = []
    real_train = tr.TrainingJob._train
    monkeypatch.setattr(tr.TrainingJob, "_train", lambda self: calls.append(1) or real_train(self))
    second = tr.TrainingJob(config, name="replica 2", store=_SharedModels(4))
    second.run()
    assert calls == [] and second.error is None
    assert second.from_store and second.reused
    assert _same_weights(second.result, first.result)
    assert second.result.quality == first.result.quality  # the verdict travelled too

    monkeypatch.delenv(model_store.ENV_VAR)
    third = tr.TrainingJob(config, name="no store", store=_SharedModels(4))
    third.run()
    assert calls == [1] and not third.from_store


def test_an_upload_model_never_reaches_the_store(tmp_path, monkeypatch):
    """An uploaded point cloud stays in its session on every replica: start_training gives its
    job no server-wide store (shareable=False), and such a job never writes to the disk store."""
    from scoreviz.mixture import empirical
    from scoreviz.ui import training_runner as tr

    monkeypatch.setenv(model_store.ENV_VAR, str(tmp_path))
    pts = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    config = replace(_tiny(steps=20), distribution="upload:0123456789abcdef")
    job = tr.TrainingJob(config, name="upload", dist=empirical(pts, bandwidth=0.1), shareable=False)
    job.run()
    assert job.error is None and job.result is not None and not job.from_store
    assert list(tmp_path.iterdir()) == []
