"""A content-addressed on-disk store of trained models, shared by every server that points at it.

Why: one Streamlit process shares identical trainings between its sessions (the server-wide store
in `scoreviz.ui.models`), but replicas behind a load balancer are separate processes. With
`SCOREVIZ_MODEL_STORE=/some/dir` set for all of them (a local directory, or a shared volume),
a model trained through one replica is loaded, not trained again, by the others. Unset, the
store is off and nothing touches the disk (the app's behaviour before it existed).

Layout, one set of files per model id (`TrainConfig.model_id`, 12 hex digits: the content
address — every setting, seed included, is hashed into it; a continuation's settings include its
parent's content digest, `scoreviz.identity`):

    <dir>/<model_id>.safetensors    the model (`model_io.export_model`: weights, settings, history)
                                    plus a metadata entry "scoreviz.store": its MAC
    <dir>/<model_id>.quality.json   {"quality": <quality.Quality>, "mac": ...}
    <dir>/<model_id>.lock           an flock(2) lock file: whoever holds it trains this model
    <dir>/.secret                   the MAC key, when $SCOREVIZ_STORE_SECRET is not set

Trust: only a server writes here, so every entry carries an HMAC-SHA256 under a secret the hall's
replicas share: $SCOREVIZ_STORE_SECRET when set (the same value for every replica), else
`<dir>/.secret` (64 random hex digits, created 0600 on first use, atomically, by whichever replica
comes first; every replica running as the same uid reads it). The model's MAC covers its id and
its header (settings, history and the sha256 of its tensors, which `import_model` checks against
the tensors); the verdict's covers the id, that sha256 and the verdict. A file dropped in by
anyone without the secret (a doctored export, a copy from elsewhere, an older version's file) is
treated as absent, with a log line, and trained again and overwritten.

A sick volume never crashes or hangs a page: files are opened without following symlinks and
without blocking (O_NOFOLLOW | O_NONBLOCK), only regular files are read (fstat), and only up to
their size limit, checked before reading; any OS error reading is "absent" plus a log line; the
lock file is opened the same way (a symlinked .lock creates nothing outside the store) and a lock
that cannot be taken means "train without the store". A malformed verdict is ignored (the model
is shown without one).

Permissions (one documented setting for every replica): all replicas run as the same uid (the
image's user `scoreviz`, uid 10001) with umask 022; model and verdict files are written 0644
whatever the umask (readable by a replica under another uid, which can load but not write),
lock files 0644 (opened for writing where the uid may, as NFS needs; read-only otherwise, which
flock accepts on a local disk), the secret 0600.

Writes are atomic: a temporary file in the same directory, fsync, then `os.replace`, quality
first and model last, so a reader sees either no model or a whole one (with its verdict).
`get_or_create` takes the model's lock before it looks, so two replicas asked for the same model
at once train it once: the second waits, then loads the first's file. A holder that dies releases
its flock with its process. flock works between processes on one machine; on NFS, Linux maps it
to a whole-file POSIX lock, which needs the server's lock manager (NFSv4, or NFSv3 with lockd)
and a descriptor open for writing; a lock that cannot be taken (EBADF, ENOLCK) means "train
without the store", never a failed training (docs/lecture-hall.md, "Past one machine").

Kept forever: each model is ~0.1-2 MB; delete files (never the lock of a running training) to
free space. The Adam state of "Train longer" is not stored, so a model loaded from here trains
longer from a fresh optimiser.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from scoreviz.errors import ModelFileError
from scoreviz.model_io import MAX_FILE_BYTES, META_KEY, export_model, import_model, read_metadata
from scoreviz.quality import Quality
from scoreviz.training import TrainResult

ENV_VAR = "SCOREVIZ_MODEL_STORE"
SECRET_ENV = "SCOREVIZ_STORE_SECRET"
SECRET_FILE = ".secret"
MIN_SECRET_CHARS = 16
MAC_KEY = "scoreviz.store"  # the model file's metadata entry that holds its MAC
FILE_MODE = 0o644  # models and verdicts: readable by every replica (see the module docstring)
MAX_QUALITY_BYTES = 64 * 1024
MAX_SECRET_BYTES = 4096
_MODEL_ID = re.compile(r"[0-9a-f]{12}")  # TrainConfig.model_id: sha1's first 12 hex digits
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# A lock file is opened for writing where the uid may: on NFS, Linux emulates flock(2) with a
# whole-file fcntl lock, and an exclusive one needs a descriptor open for writing (EBADF on a
# read-only one). Locally flock needs no more than read access, the fallback.
_LOCK = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
log = logging.getLogger("scoreviz")


class StoreWaitAbandoned(Exception):
    """`should_stop` said stop while waiting for another process's training of the model."""


class ModelStore:
    """Models on disk keyed by model id; see the module docstring for the layout."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._secret: bytes | None = None

    def path(self, model_id: str, suffix: str = ".safetensors") -> Path:
        if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id):
            raise ValueError(f"not a model id (12 hex digits): {model_id!r}")
        return self.root / f"{model_id}{suffix}"

    def __contains__(self, model_id: str) -> bool:
        try:
            return stat.S_ISREG(os.lstat(self.path(model_id)).st_mode)
        except OSError:
            return False

    # ------------------------------------------------------------------------- read
    def get(self, model_id: str) -> TrainResult | None:
        """The stored model (its quality verdict attached), or None: absent, unreadable, damaged
        or not written by a holder of the secret (each but the first logged)."""
        data = _read_regular(self.path(model_id), MAX_FILE_BYTES)
        if data is None:
            return None
        try:
            meta = read_metadata(data)
            header = meta.get(META_KEY, "")
            if not self._verify(meta.get(MAC_KEY), "model", model_id, header):
                log.warning("Model store: %s has no valid MAC; not trusted, ignored", model_id)
                return None
            result = import_model(data)
        except ModelFileError as exc:
            log.warning(
                "Model store: %s is unreadable (%s); it will be trained again", model_id, exc
            )
            return None
        if result.model_id != model_id:  # a file copied in under another name
            log.warning("Model store: %s holds model %s; ignored", model_id, result.model_id)
            return None
        result.from_file = False  # a server of this hall wrote it (its MAC says so)
        result.quality = self._read_quality(model_id, json.loads(header)["checksum"])
        return result

    def _read_quality(self, model_id: str, checksum: str) -> Quality | None:
        """The verdict, if its file is well formed and its MAC binds it to this model."""
        raw = _read_regular(self.path(model_id, ".quality.json"), MAX_QUALITY_BYTES)
        if raw is None:
            return None
        try:
            d = json.loads(raw.decode("utf-8"))
            text = _canonical(d["quality"])
            quality = quality_from_dict(d["quality"])
            ok = self._verify(d.get("mac"), "quality", model_id, checksum, text)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            quality, ok = None, False
        if quality is None or not ok:
            log.warning("Model store: the verdict of %s is malformed or not trusted", model_id)
            return None
        return quality

    # ------------------------------------------------------------------------- write
    def put(self, result: TrainResult) -> Path:
        """Write `result` atomically (quality, then the model); returns the model's path.

        OSError when the store has no secret (then nothing is written)."""
        model_id = result.model_id
        bare = export_model(result)
        header = read_metadata(bare)[META_KEY]
        data = export_model(result, extra={MAC_KEY: self._mac("model", model_id, header)})
        quality = getattr(result, "quality", None)
        if quality is not None:
            text = _canonical(dataclasses.asdict(quality))
            checksum = json.loads(header)["checksum"]
            mac = self._mac("quality", model_id, checksum, text)
            entry = json.dumps({"quality": json.loads(text), "mac": mac})
            _write_atomic(self.path(model_id, ".quality.json"), entry.encode())
        return _write_atomic(self.path(model_id), data)

    # ------------------------------------------------------------------------- lock
    def lock(
        self, model_id: str, should_stop: Callable[[], bool] | None = None, poll: float = 0.1
    ) -> contextlib.AbstractContextManager[None]:
        """Hold the model's exclusive lock (across processes) for the `with` block.

        Waits while another process holds it, asking `should_stop` every `poll` s; raises
        StoreWaitAbandoned when it says True. OSError (at once) when the lock file cannot be
        opened safely (a symlink, not a regular file, no permission).
        """
        return _flocked(self._open_lock(model_id), should_stop, poll)

    def _open_lock(self, model_id: str) -> int:
        """The lock file's descriptor: created if missing, never through a symlink (O_NOFOLLOW:
        a symlinked .lock raises ELOOP, creating nothing elsewhere), regular files only."""
        path = self.path(model_id, ".lock")
        try:
            fd = os.open(path, _LOCK | os.O_CREAT, FILE_MODE)
        except PermissionError:  # another uid's lock file (0644): flock works read-only locally
            fd = os.open(path, _READ | os.O_CREAT, FILE_MODE)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{path.name} is not a regular file")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def get_or_create(
        self,
        model_id: str,
        create: Callable[[], TrainResult | None],
        should_stop: Callable[[], bool] | None = None,
    ) -> tuple[TrainResult | None, bool]:
        """(model, loaded): the stored model (loaded=True), or `create()`'s result, stored unless
        it is None or was stopped early (a partial model is not what the id promises).

        Holds the model's lock throughout, so concurrent callers in any process create it once.
        A lock that cannot be opened or taken (a sick volume; NFS without its lock manager)
        means: create without the store.
        """
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(self.lock(model_id, should_stop))
            except OSError as exc:
                log.warning(
                    "Model store: no lock for %s (%s); trained without the store", model_id, exc
                )
                return create(), False
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

    # ------------------------------------------------------------------------- MAC
    def _mac(self, kind: str, *parts: str) -> str:
        key = self.secret()
        if key is None:
            raise OSError("the model store has no secret (see scoreviz/model_store.py)")
        message = "\0".join((f"scoreviz-store-v1:{kind}", *parts)).encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def _verify(self, mac, kind: str, *parts: str) -> bool:
        if not isinstance(mac, str):
            return False
        try:
            expected = self._mac(kind, *parts)
        except OSError:
            return False
        return hmac.compare_digest(mac.encode(), expected.encode())

    def secret(self) -> bytes | None:
        """The MAC key: $SCOREVIZ_STORE_SECRET, else `<root>/.secret` (created on first use);
        None (logged) when neither can be had: then nothing is trusted and nothing written."""
        if self._secret is None:
            self._secret = _env_secret() or self._file_secret()
        return self._secret

    def _file_secret(self) -> bytes | None:
        path = self.root / SECRET_FILE
        if not os.path.lexists(path):
            _create_secret(path)
        data = _read_regular(path, MAX_SECRET_BYTES)
        if data is None or len(data.strip()) < MIN_SECRET_CHARS:
            log.warning("Model store: no usable secret in %s; the store is not used", path)
            return None
        return data.strip()


@contextlib.contextmanager
def _flocked(fd: int, should_stop: Callable[[], bool] | None, poll: float) -> Iterator[None]:
    """flock(fd) exclusively for the block (polling, stoppable); closes fd afterwards."""
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


def _env_secret() -> bytes | None:
    value = os.environ.get(SECRET_ENV, "").strip()
    if value and len(value) < MIN_SECRET_CHARS:
        log.warning("%s is shorter than %d characters: weak", SECRET_ENV, MIN_SECRET_CHARS)
    return value.encode() if value else None


def _create_secret(path: Path) -> None:
    """Write 64 random hex digits to `path`, 0600, atomically; a replica that comes second
    (os.link finds the file there) keeps the first one's."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    except OSError as exc:
        log.warning("Model store: cannot create %s (%s)", path, exc)
        return
    try:
        with os.fdopen(fd, "wb") as f:  # mkstemp: mode 0600
            f.write(secrets.token_hex(32).encode())
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    except OSError as exc:
        log.warning("Model store: cannot create %s (%s)", path, exc)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of `path` if it is a regular file of at most `limit` bytes, else None.

    Never follows a symlink, never blocks on a FIFO, never reads more than limit + 1 bytes; a
    missing file is None silently, anything else (a directory, a symlink or a loop of them, a
    FIFO or device, a file too large, any OS error) is None with a log line.
    """
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symlink (O_NOFOLLOW); EACCES; EIO ...
        log.warning("Model store: cannot open %s (%s); treated as absent", path.name, exc)
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            log.warning("Model store: %s is not a regular file; treated as absent", path.name)
            return None
        if st.st_size > limit:
            log.warning("Model store: %s is too large (%d bytes); ignored", path.name, st.st_size)
            return None
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew while read
            log.warning("Model store: %s is too large; ignored", path.name)
            return None
        return b"".join(chunks)
    except OSError as exc:
        log.warning("Model store: cannot read %s (%s); treated as absent", path.name, exc)
        return None
    finally:
        os.close(fd)


def _canonical(d) -> str:
    """One text per value (what the verdict's MAC covers); Infinity stays (a verdict of samples
    that ran off to infinity is `Quality(inf, inf, ...)`)."""
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


_QUALITY_FLOATS = ("nats_lost", "energy_ratio", "off_data", "expected_off", "missing_share")
MAX_NOTE_CHARS = 2_000  # a verdict's cause and note are short sentences


def quality_from_dict(d) -> Quality | None:
    """A Quality from its JSON dict, or None unless every field is there with a valid value (the
    fields with defaults may be missing: a verdict stored before they existed)."""
    fields = {f.name: f for f in dataclasses.fields(Quality)}
    required = {k for k, f in fields.items() if f.default is dataclasses.MISSING}
    if not isinstance(d, dict) or not required <= set(d) <= set(fields):
        return None
    at = d["missing_at"]
    if not isinstance(at, list) or len(at) != 2 or not all(map(_finite, at)):
        return None
    if not all(_number(d[k]) for k in (*_QUALITY_FLOATS, *(set(d) & {"nats_spread"}))):
        return None
    ints = {"n": 0, "strays": -1, "expected_strays": 0, "seeds": 1}  # name -> smallest value
    if not all(_integer(d[k], low) for k, low in ints.items() if k in d):
        return None
    texts = {k: d[k] for k in ("cause", "note") if k in d}
    if not all(isinstance(v, str) and len(v) <= MAX_NOTE_CHARS for v in texts.values()):
        return None
    floats = {k: float(d[k]) for k in _QUALITY_FLOATS}
    extra = {k: float(d[k]) if k == "nats_spread" else d[k] for k in set(d) - required}
    return Quality(**floats, missing_at=(float(at[0]), float(at[1])), n=d["n"], **extra)


def _integer(v, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(v) -> bool:
    """An int or float, not a bool, not NaN (infinity is a verdict's value for diverged samples)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def _finite(v) -> bool:
    return _number(v) and math.isfinite(v)


def _write_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` so that readers see the old file or the whole new one (mode
    FILE_MODE: mkstemp's 0600 would hide it from a replica under another uid)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
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
    """The store named by $SCOREVIZ_MODEL_STORE, or None when it is unset or empty (off), or
    its directory cannot be made (logged)."""
    root = os.environ.get(ENV_VAR, "").strip()
    if not root:
        return None
    try:
        return ModelStore(root)
    except OSError as exc:
        log.warning("Model store %s cannot be used (%s)", root, exc)
        return None
