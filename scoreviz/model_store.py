"""A content-addressed on-disk store of trained models, shared by every server that points at it.

Why: one Streamlit process shares identical trainings between its sessions (the server-wide store
in `scoreviz.ui.state`), but replicas behind a load balancer are separate processes. With
`SCOREVIZ_MODEL_STORE=/some/dir` set for all of them (a local directory, or a shared volume),
a model trained through one replica is loaded, not trained again, by the others. Unset, the
store is off and nothing touches the disk (the app's behaviour before it existed).

Layout, one set of files per model id (`TrainConfig.model_id`, 12 hex digits: the content
address — every setting, seed included, is hashed into it):

    <dir>/<model_id>.safetensors    the model (`model_io.export_model`: weights, settings, history)
    <dir>/<model_id>.quality.json   its `quality.Quality` verdict (not part of the model file)
    <dir>/<model_id>.lock           an flock(2) lock file: whoever holds it trains this model

Writes are atomic: a temporary file in the same directory, fsync, then `os.replace`, quality
first and model last, so a reader sees either no model or a whole one (with its verdict). Reads
go through `model_io.import_model`, which checks everything; a damaged file counts as absent
(it is logged, then trained again and overwritten). `get_or_create` takes the model's lock
before it looks, so two replicas asked for the same model at once train it once: the second
waits, then loads the first's file. A holder that dies releases its flock with its process.
flock works between processes on one machine; on NFS, Linux maps it to POSIX byte-range locks,
which need the server's lock manager (NFSv4, or NFSv3 with lockd).

Kept forever: each model is ~0.1-2 MB; delete files (never the lock of a running training) to
free space. The Adam state of "Train longer" is not stored, so a model loaded from here trains
longer from a fresh optimiser.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from scoreviz.errors import ModelFileError
from scoreviz.model_io import export_model, import_model
from scoreviz.quality import Quality
from scoreviz.training import TrainResult

ENV_VAR = "SCOREVIZ_MODEL_STORE"
_MODEL_ID = re.compile(r"[0-9a-f]{12}")  # TrainConfig.model_id: sha1's first 12 hex digits
log = logging.getLogger("scoreviz")


class StoreWaitAbandoned(Exception):
    """`should_stop` said stop while waiting for another process's training of the model."""


class ModelStore:
    """Models on disk keyed by model id; see the module docstring for the layout."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, model_id: str, suffix: str = ".safetensors") -> Path:
        if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id):
            raise ValueError(f"not a model id (12 hex digits): {model_id!r}")
        return self.root / f"{model_id}{suffix}"

    def __contains__(self, model_id: str) -> bool:
        return self.path(model_id).is_file()

    def get(self, model_id: str) -> TrainResult | None:
        """The stored model (its quality verdict attached), or None: absent or damaged."""
        try:
            data = self.path(model_id).read_bytes()
        except FileNotFoundError:
            return None
        try:
            result = import_model(data)
        except ModelFileError as exc:
            log.warning(
                "Model store: %s is unreadable (%s); it will be trained again", model_id, exc
            )
            return None
        if result.model_id != model_id:  # a file copied in under another name
            log.warning("Model store: %s holds model %s; ignored", model_id, result.model_id)
            return None
        result.quality = self._read_quality(model_id)
        return result

    def put(self, result: TrainResult) -> Path:
        """Write `result` atomically (quality, then the model); returns the model's path."""
        quality = getattr(result, "quality", None)
        if quality is not None:
            text = json.dumps(dataclasses.asdict(quality))
            _write_atomic(self.path(result.model_id, ".quality.json"), text.encode())
        return _write_atomic(self.path(result.model_id), export_model(result))

    @contextlib.contextmanager
    def lock(
        self, model_id: str, should_stop: Callable[[], bool] | None = None, poll: float = 0.1
    ) -> Iterator[None]:
        """Hold the model's exclusive lock (across processes) for the `with` block.

        Waits while another process holds it, asking `should_stop` every `poll` s; raises
        StoreWaitAbandoned when it says True.
        """
        fd = os.open(self.path(model_id, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if should_stop is not None and should_stop():
                        raise StoreWaitAbandoned() from None
                    time.sleep(poll)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def get_or_create(
        self,
        model_id: str,
        create: Callable[[], TrainResult | None],
        should_stop: Callable[[], bool] | None = None,
    ) -> tuple[TrainResult | None, bool]:
        """(model, loaded): the stored model (loaded=True), or `create()`'s result, stored unless
        it is None or was stopped early (a partial model is not what the id promises).

        Holds the model's lock throughout, so concurrent callers in any process create it once.
        """
        with self.lock(model_id, should_stop):
            found = self.get(model_id)
            if found is not None:
                return found, True
            result = create()
            if result is not None and not result.stopped:
                try:
                    self.put(result)
                except OSError:  # a full or read-only disk: the model still serves this process
                    log.exception("Model store: could not save %s", model_id)
            return result, False

    def _read_quality(self, model_id: str) -> Quality | None:
        try:
            d = json.loads(self.path(model_id, ".quality.json").read_text())
            return Quality(**{**d, "missing_at": tuple(d["missing_at"])})
        except (OSError, ValueError, TypeError, KeyError):
            return None  # no verdict shown; the model itself is fine


def _write_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` so that readers see the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def from_env() -> ModelStore | None:
    """The store named by $SCOREVIZ_MODEL_STORE, or None when it is unset or empty (off)."""
    root = os.environ.get(ENV_VAR, "").strip()
    return ModelStore(root) if root else None
