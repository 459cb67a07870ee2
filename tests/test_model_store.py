"""scoreviz.model_store: the on-disk store replicas share. Round trip (weights, history, quality),
atomic writes, damaged files count as absent, off when the variable is unset, two processes
racing for one model train it once, and the training job loads what another process trained."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import multiprocessing
import os
import sys
import tracemalloc
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
COUNTED = Quality(0.05, 1.1, 0.01, 0.01, 0.02, (0.5, -1.0), 6000, 3, 1, 0.04, 3, "memorised", "x")


def test_a_verdict_with_strays_seeds_and_a_cause_round_trips_and_an_older_one_still_reads():
    """Every field of a Quality survives the store's check (a verdict's strays and cause were
    dropped, so a stored model read back with another verdict than it was stored with), and a
    verdict stored before those fields existed still reads, as "not counted"."""
    d = json.loads(json.dumps(dataclasses.asdict(COUNTED)))
    assert model_store.quality_from_dict(d) == COUNTED
    base = ("nats_lost", "energy_ratio", "off_data", "expected_off", "missing_share")
    old = {k: v for k, v in d.items() if k in (*base, "missing_at", "n")}
    back = model_store.quality_from_dict(old)
    assert back == Quality(0.05, 1.1, 0.01, 0.01, 0.02, (0.5, -1.0), 6000)
    assert back.strays == -1  # untold, not "none"


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    """The hall's shared MAC key, as deploy/ sets it (no .secret file appears in the store)."""
    monkeypatch.setenv(model_store.SECRET_ENV, "test-secret-of-the-hall-0123456789")


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


def test_a_verdict_of_samples_that_ran_off_to_infinity_round_trips(tmp_path, trained):
    import math

    off = Quality(math.inf, math.inf, 1.0, 0.01, 1.0, (0.0, 0.0), 0)  # quality.assess's verdict
    store = ModelStore(tmp_path)
    store.put(replace(trained, quality=off))
    assert store.get(trained.model_id).quality == off


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
    from scoreviz.jobs import SharedModels
    from scoreviz.jobs import training_job as tr

    monkeypatch.setenv(model_store.ENV_VAR, str(tmp_path))
    config = _tiny(seed=9, steps=60)
    first = tr.TrainingJob(config, name="replica 1", store=SharedModels(4))
    first.run()
    assert first.error is None and not first.reused and not first.from_store
    assert config.model_id in ModelStore(tmp_path)

    calls = []
    real_train = tr.TrainingJob._train
    monkeypatch.setattr(tr.TrainingJob, "_train", lambda self: calls.append(1) or real_train(self))
    second = tr.TrainingJob(config, name="replica 2", store=SharedModels(4))
    second.run()
    assert calls == [] and second.error is None
    assert second.from_store and second.reused
    assert _same_weights(second.result, first.result)
    assert second.result.quality == first.result.quality  # the verdict travelled too

    monkeypatch.delenv(model_store.ENV_VAR)
    third = tr.TrainingJob(config, name="no store", store=SharedModels(4))
    third.run()
    assert calls == [1] and not third.from_store


def test_an_upload_model_never_reaches_the_store(tmp_path, monkeypatch):
    """An uploaded point cloud stays in its session on every replica: start_training gives its
    job no server-wide store (shareable=False), and such a job never writes to the disk store."""
    from scoreviz.jobs import training_job as tr
    from scoreviz.mixture import empirical

    monkeypatch.setenv(model_store.ENV_VAR, str(tmp_path))
    pts = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    config = replace(_tiny(steps=20), distribution="upload:0123456789abcdef")
    job = tr.TrainingJob(config, name="upload", dist=empirical(pts, bandwidth=0.1), shareable=False)
    job.run()
    assert job.error is None and job.result is not None and not job.from_store
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- trust (MAC)
def test_a_model_file_dropped_into_the_store_is_not_trusted(tmp_path, trained, caplog):
    """A valid model file of the right id, written by someone without the secret (a doctored
    export copied onto the volume), is absent with a log line; trained again, it is replaced."""
    from scoreviz.model_io import export_model

    store = ModelStore(tmp_path)
    store.path(trained.model_id).write_bytes(export_model(trained))
    assert store.get(trained.model_id) is None
    assert "not trusted" in caplog.text
    calls = []
    result, loaded = store.get_or_create(trained.model_id, lambda: calls.append(1) or trained)
    assert calls == [1] and not loaded
    assert _same_weights(store.get(trained.model_id), trained)


def test_another_secret_trusts_nothing(tmp_path, trained, monkeypatch):
    ModelStore(tmp_path).put(trained)
    monkeypatch.setenv(model_store.SECRET_ENV, "another-hall-secret-9876543210")
    assert ModelStore(tmp_path).get(trained.model_id) is None


def test_a_verdict_copied_from_another_model_is_not_trusted(tmp_path, trained):
    store = ModelStore(tmp_path)
    store.put(trained)
    other = train(_tiny(seed=1, steps=5))
    store.put(other)  # no verdict of its own
    verdict = store.path(trained.model_id, ".quality.json").read_bytes()
    store.path(other.model_id, ".quality.json").write_bytes(verdict)
    back = store.get(other.model_id)
    assert back is not None and back.quality is None


def test_without_the_variable_the_replicas_share_a_secret_file(tmp_path, trained, monkeypatch):
    monkeypatch.delenv(model_store.SECRET_ENV)
    ModelStore(tmp_path).put(trained)
    secret = tmp_path / model_store.SECRET_FILE
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_bytes()) == 64
    assert ModelStore(tmp_path).get(trained.model_id) is not None  # a second replica
    other = tmp_path / "other"
    other.mkdir()
    (other / model_store.SECRET_FILE).write_text("f" * 64)  # a store with another secret
    os.replace(store_path := ModelStore(tmp_path).path(trained.model_id), other / store_path.name)
    assert ModelStore(other).get(trained.model_id) is None


def test_files_are_readable_by_every_replica_whatever_the_umask(tmp_path, trained):
    old = os.umask(0o077)
    try:
        store = ModelStore(tmp_path)
        store.put(trained)
        with store.lock(trained.model_id):
            pass
    finally:
        os.umask(old)
    for suffix in (".safetensors", ".quality.json"):
        assert store.path(trained.model_id, suffix).stat().st_mode & 0o777 == 0o644


# ----------------------------------------------------------------------------- a sick volume
def _within(seconds: float, fn):
    """fn() in a daemon thread; fails (never hangs) if it has not returned within `seconds`."""
    import threading

    out = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"blocked for more than {seconds} s"
    return out[0]


def _sick(store: ModelStore, model_id: str, kind: str, outside) -> None:
    path = store.path(model_id)
    if kind == "directory":
        path.mkdir()
    elif kind == "symlink loop":
        os.symlink(path.name + ".b", path)
        os.symlink(path.name, store.root / (path.name + ".b"))
    elif kind == "symlink to /dev/zero":
        os.symlink("/dev/zero", path)
    elif kind == "symlink outside":
        outside.write_bytes(b"x")
        os.symlink(outside, path)
    elif kind == "fifo":
        os.mkfifo(path)


@pytest.mark.parametrize(
    "kind", ["directory", "symlink loop", "symlink to /dev/zero", "symlink outside", "fifo"]
)
def test_a_sick_entry_is_absent_and_trained_around(tmp_path, trained, kind, caplog):
    """No raw error, no unbounded read, no hang: absent with a log line; get_or_create trains
    (and, where the entry blocks the write, serves the model without storing it)."""
    store = ModelStore(tmp_path / "store")
    _sick(store, trained.model_id, kind, tmp_path / "outside")
    assert _within(10, lambda: store.get(trained.model_id)) is None
    assert trained.model_id not in store
    assert caplog.text, "a log line says why"
    result, loaded = _within(10, lambda: store.get_or_create(trained.model_id, lambda: trained))
    assert result is trained and not loaded


def test_an_oversize_file_is_refused_before_it_is_read(tmp_path, trained, monkeypatch, caplog):
    from scoreviz.model_io import MAX_FILE_BYTES

    store = ModelStore(tmp_path)
    with open(store.path(trained.model_id), "wb") as f:
        f.truncate(1_500_000_000)  # sparse: 1.5 GB that take no disk
    assert MAX_FILE_BYTES < 1_500_000_000
    reads = []
    real_read = os.read
    monkeypatch.setattr(model_store.os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    tracemalloc.start()
    try:
        assert store.get(trained.model_id) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert reads == [] and peak < 10_000_000 and "too large" in caplog.text


def test_a_symlinked_lock_creates_nothing_outside_the_store(tmp_path, trained, caplog):
    store = ModelStore(tmp_path / "store")
    victim = tmp_path / "victim"
    os.symlink(victim, store.path(trained.model_id, ".lock"))
    with pytest.raises(OSError):
        with store.lock(trained.model_id):
            pass
    result, loaded = store.get_or_create(trained.model_id, lambda: trained)
    assert result is trained and not loaded and "no lock" in caplog.text
    assert not victim.exists()
    os.unlink(store.path(trained.model_id, ".lock"))
    os.mkfifo(store.path(trained.model_id, ".lock"))  # a FIFO as the lock: refused, not blocked
    result, _ = _within(10, lambda: store.get_or_create(trained.model_id, lambda: trained))
    assert result is trained


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"quality": null, "mac": "x"}',
        '{"quality": {"nats_lost": "a lot"}, "mac": "x"}',
        "{" * 100_000,
        json.dumps({**dataclasses.asdict(QUALITY), "nats_lost": "a lot"}),  # the old layout
    ],
)
def test_a_malformed_verdict_is_ignored_and_the_model_still_loads(tmp_path, trained, text):
    store = ModelStore(tmp_path)
    store.put(trained)
    store.path(trained.model_id, ".quality.json").write_text(text)
    back = store.get(trained.model_id)
    assert back is not None and back.quality is None and _same_weights(back, trained)


@pytest.mark.parametrize(
    "change",
    [
        {"n": "2000"},
        {"n": True},
        {"nats_lost": float("nan")},
        {"missing_at": [0.5]},
        {"missing_at": "here"},
        {"verdict": "learned well"},
        {"strays": "3"},
        {"strays": -2},
        {"seeds": 0},
        {"nats_spread": float("nan")},
        {"note": ["not", "text"]},
        {"cause": "x" * 5_000},
    ],
)
def test_a_verdict_with_a_valid_mac_but_bad_fields_is_ignored(tmp_path, trained, change):
    """Even a holder of the secret (another version of the app) cannot crash the sidebar with a
    verdict of another shape: every field is checked before a Quality is built."""
    store = ModelStore(tmp_path)
    store.put(trained)
    d = {**dataclasses.asdict(QUALITY), "missing_at": list(QUALITY.missing_at), **change}
    assert model_store.quality_from_dict(d) is None
    good = json.loads(json.dumps(dataclasses.asdict(QUALITY)))
    assert model_store.quality_from_dict(good) == QUALITY  # the check refuses only the change
    header = model_store.read_metadata(store.path(trained.model_id).read_bytes())
    checksum = json.loads(header[model_store.META_KEY])["checksum"]
    text = json.dumps(d, sort_keys=True, separators=(",", ":"))
    mac = store._mac("quality", trained.model_id, checksum, text)
    store.path(trained.model_id, ".quality.json").write_text(json.dumps({"quality": d, "mac": mac}))
    back = store.get(trained.model_id)
    assert back is not None and back.quality is None


def test_an_unusable_store_directory_turns_the_store_off(tmp_path, monkeypatch, caplog):
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv(model_store.ENV_VAR, str(tmp_path / "file"))
    assert model_store.from_env() is None and "cannot be used" in caplog.text


def test_a_link_to_a_stored_model_with_a_malformed_verdict_shows_it_without_one(
    tmp_path, trained, monkeypatch
):
    """The sidebar shows a linked model's verdict; a malformed quality.json in the store (here
    the old layout with a string where a number belongs) used to crash it. Now the model opens
    without a verdict."""
    from scoreviz.ui.models import shared_models
    from tests.apptest_utils import assert_no_exception, make_app

    monkeypatch.setenv(model_store.ENV_VAR, str(tmp_path))
    store = ModelStore(tmp_path)
    store.put(trained)
    bad = {**dataclasses.asdict(QUALITY), "nats_lost": "a lot"}
    store.path(trained.model_id, ".quality.json").write_text(json.dumps(bad))
    shared_models().discard(trained.model_id)
    at = make_app()
    at.query_params["model"] = trained.model_id
    at.run()
    assert_no_exception(at)
    active = at.session_state["models"][at.session_state["active_model"]]
    assert active.model_id == trained.model_id and active.quality is None
    shared_models().discard(trained.model_id)


def test_the_lock_file_is_open_for_writing_as_nfs_needs_for_an_exclusive_lock(tmp_path):
    """On NFS, Linux emulates flock(LOCK_EX) with a whole-file write lock, which fails with
    EBADF on a descriptor opened read-only: the store opens its lock files read-write."""
    fd = ModelStore(tmp_path)._open_lock("0123456789ab")
    try:
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR
    finally:
        os.close(fd)


def test_a_lock_that_cannot_be_taken_means_training_without_the_store(
    tmp_path, monkeypatch, caplog
):
    """NFS without its lock manager (ENOLCK) or a read-only descriptor there (EBADF): the model
    is made without the store, not a failed training."""

    def refuse(fd, op):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(model_store.fcntl, "flock", refuse)
    store = ModelStore(tmp_path)
    made = []
    result, loaded = store.get_or_create("0123456789ab", lambda: made.append(1))
    assert made == [1] and result is None and not loaded and "no lock" in caplog.text
