"""A training run in a background thread, with a Stop that really stops; identical models
trained once per server (per-model-id locks, a leader and its followers). No Streamlit: the app's
glue is `scoreviz.ui.training_runner`; this is tested with plain threads (tests/test_jobs.py).

- A `TrainingJob` is a daemon thread that calls `training.train(progress=job._on_progress)`. The
  callback records the loss and returns whether to stop, so Stop ends training at the next
  report (~25 steps); the model so far is kept.
- At most `MAX_CONCURRENT` jobs train at once per process (the others wait in `SLOTS` and can
  be told their place and an estimated wait, `queue_place`). A job names its `owner` (the
  student), so the slots go round robin between students and each has at most one training
  waiting (`slots.Slots`, kind "train"): the score model's training and the DAE page's alike.
- A job has a budget: one that trains longer than its `time_limit` by the wall clock is stopped
  like Stop does; one whose session has gone (`alive()` False) for `grace` seconds stops,
  while it trains or while it waits for a slot.
- Identical shareable configs train once even when started at the same moment: a job with a
  `store` (`shared.SharedModels`) first takes a per-model-id lock; whoever gets it second finds
  the first one's result in the store and takes it without training (a "follower", shown the
  leader's progress while it waits, `shown`). If the leader is stopped, its partial model is not
  shared and the next follower trains itself.
- Across processes (replicas behind a load balancer): with `SCOREVIZ_MODEL_STORE` set, the
  leader goes through the on-disk store (`scoreviz.model_store`): under the model's file lock it
  loads the model another replica trained, or trains it and saves it there (`from_store`).
- At interpreter exit every running job is stopped and joined (`stop_all`), so no thread is
  still inside torch when Python shuts down.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from scoreviz import costs, model_store, training
from scoreviz.errors import ScorevizError
from scoreviz.jobs.slots import Slots, SlotWaitAbandoned
from scoreviz.mixture import GaussianMixture
from scoreviz.quality import assess_result

log = logging.getLogger("scoreviz")

MAX_CONCURRENT = 2  # training threads per process; more wait for a free slot
KIND = "train"  # the slots' kind of a training: one waits per owner
GRACE_SECONDS = 30.0  # a job stops once its session has been gone this long (reconnects are fine)
SLOTS = Slots(MAX_CONCURRENT)  # FIFO slots (a lock and a queue of jobs, not per-user data)
# Per model id: one lock (identical configs train one after the other, so the second finds the
# first's result) and the job training it now (for followers' progress).
_KEYS_GUARD = threading.Lock()
_KEY_LOCKS: dict[str, threading.Lock] = {}
_LEADERS: dict[str, TrainingJob] = {}
_RUNNING: set[TrainingJob] = set()  # started and not finished (stopped and joined at exit)
_EXITING = threading.Event()  # set by `stop_all`: the interpreter is shutting down
MAX_KEY_LOCKS = 1024


def _key_lock(model_id: str) -> threading.Lock:
    with _KEYS_GUARD:
        lock = _KEY_LOCKS.get(model_id)
        if lock is None:
            if len(_KEY_LOCKS) >= MAX_KEY_LOCKS:  # forget idle ones (bounded memory)
                for key in [k for k, v in _KEY_LOCKS.items() if not v.locked()]:
                    del _KEY_LOCKS[key]
            lock = _KEY_LOCKS[model_id] = threading.Lock()
        return lock


@dataclass(eq=False)
class TrainingJob:
    """One training run: the config, a stop event, live progress, and the outcome.

    Thread-safe for one writer (the training thread) and many readers (script runs).
    """

    config: object  # scoreviz.training.TrainConfig
    name: str
    dist: GaussianMixture | None = None  # uploaded data (None: the built-in distribution)
    init: object | None = None  # the TrainResult this job trains longer (None: from scratch)
    shareable: bool = True  # put the result in the server-wide store when it finishes
    store: object | None = None  # the server-wide store (`shared.SharedModels`): dedupe via it
    reused: bool = False  # the result came from an identical job of another session
    every: int = 25  # steps between progress reports (and stop checks)
    alive: Callable[[], bool] | None = None  # is the session still there? (None: always)
    owner: object = None  # who queued it (a student), for the slots' fair share (None: nobody)
    assess: bool = True  # sample the finished model beside the exact score (`quality`)
    grace: float = GRACE_SECONDS  # stop once `alive` has said False for this long
    time_limit: float | None = None  # seconds of training before it is stopped (None: none)
    clock: Callable[[], float] = time.monotonic  # seconds, for the grace period
    end_reason: str | None = None  # why it stopped by itself: "time limit" | "session gone"
    stop_event: threading.Event = field(default_factory=threading.Event)
    result: object | None = None  # TrainResult once finished
    error: BaseException | None = None
    collected: bool = False  # the result/error has been handed to the session
    _rows: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _done: threading.Event = field(default_factory=threading.Event)
    _started: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    checking: bool = False  # trained; now sampling to compare with the exact answer
    elsewhere: bool = False  # waiting while another process trains this model (model store)
    from_store: bool = False  # the result was loaded from the on-disk model store
    _gone_since: float | None = None

    # --- running
    def start(self) -> TrainingJob:
        """Start the daemon thread (returns at once); `stop_all` stops and joins it at exit."""
        self.thread = threading.Thread(target=self.run, name=f"scoreviz-train-{self.name}")
        self.thread.daemon = True
        with _KEYS_GUARD:
            _RUNNING.add(self)
        self.thread.start()
        return self

    def run(self) -> None:
        """The thread body: wait for a slot, train, record result or error (never raises)."""
        try:
            if self.store is None:
                self._train()
            else:
                self._train_once_per_server()
        except Cancelled as exc:
            self.error = exc
        except SlotWaitAbandoned:
            self.error = Cancelled()
        except ScorevizError as exc:
            self.error = exc
        except Exception as exc:  # noqa: BLE001 - reported to the user as a short message
            log.exception("Training %s failed", self.name)
            self.error = exc
        finally:
            with _KEYS_GUARD:
                _RUNNING.discard(self)
            self._done.set()

    def _train(self) -> None:
        SLOTS.acquire(self, on_wait=lambda ahead: self._should_stop(), owner=self.owner, kind=KIND)
        try:
            self._started.set()
            if self.stop_event.is_set():
                raise Cancelled()
            result = training.train(
                self.config,
                progress=self._on_progress,
                every=self.every,
                dist=self.dist,
                init=self.init,
            )
            if self.assess and not _EXITING.is_set():  # at exit nobody reads it: no sampling
                self.checking = True  # the progress text says so while the samplers run
                result.quality = assess_result(result, self.dist)
            self.result = result
        finally:
            SLOTS.release(self)

    def _train_once_per_server(self) -> None:
        model_id = self.config.model_id
        lock = _key_lock(model_id)
        while not lock.acquire(timeout=0.1):  # an identical job is running: wait, stoppable
            if self._should_stop():
                raise Cancelled()
        try:
            cached = self.store.get(model_id)
            if cached is not None:
                self.result, self.reused = cached, True
                return
            with _KEYS_GUARD:
                _LEADERS[model_id] = self
            try:
                self._train_or_load(model_id)
            finally:
                with _KEYS_GUARD:
                    _LEADERS.pop(model_id, None)
            if self.result is not None and not self.result.stopped:
                self.store.put(model_id, self.result)
        finally:
            lock.release()

    def _train_or_load(self, model_id: str) -> None:
        """Train; with an on-disk model store, first load the model if another process trained
        it (or wait for it while one does), and save what this one trains."""
        disk = model_store.from_env()
        if disk is None:
            self._train()
            return

        def create():
            self._train()
            return self.result

        def stop_waiting() -> bool:  # asked only while another process holds the model's lock
            self.elsewhere = True
            return self._should_stop()

        try:
            result, loaded = disk.get_or_create(model_id, create, stop_waiting)
        except model_store.StoreWaitAbandoned:
            raise Cancelled() from None
        finally:
            self.elsewhere = False
        if loaded:
            self.result, self.reused, self.from_store = result, True, True

    def shown(self) -> TrainingJob:
        """The job whose progress to show for this one: while it waits behind an identical
        job of another session, that job; otherwise itself."""
        leader = self.leader() if self.queued else None
        return leader or self

    def leader(self) -> TrainingJob | None:
        """The other session's job now training this identical config (None: no such job)."""
        if self.store is None:
            return None
        with _KEYS_GUARD:
            job = _LEADERS.get(self.config.model_id)
        return None if job is self else job

    def _on_progress(self, p) -> bool:
        with self._lock:
            self._rows.append((p.step, p.loss, p.elapsed, p.steps))
        if self.time_limit is not None and p.elapsed >= self.time_limit:
            self.end_reason = "time limit"
            return True
        return self._should_stop()

    def _should_stop(self) -> bool:
        """Stop pressed, or the session gone for longer than the grace period."""
        if self.stop_event.is_set():
            return True
        if self.alive is None or self.alive():
            self._gone_since = None
            return False
        now = self.clock()
        self._gone_since = self._gone_since or now
        if now - self._gone_since < self.grace:
            return False
        self.end_reason = "session gone"
        return True

    def request_stop(self) -> None:
        """Ask the loop to stop at its next progress report (the model so far is kept)."""
        self.stop_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until finished (True) or timeout (False)."""
        return self._done.wait(timeout)

    # --- reading
    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def queued(self) -> bool:
        return not self._started.is_set() and not self.done

    @property
    def steps_done(self) -> int:
        with self._lock:
            return self._rows[-1][0] if self._rows else 0

    @property
    def estimate(self) -> float:
        """Estimated seconds of the whole training (`costs.train_seconds`)."""
        return costs.train_seconds(self.config)

    def remaining(self) -> float:
        """Estimated seconds left: from the measured pace once it trains, else the estimate."""
        with self._lock:
            last = self._rows[-1] if self._rows else None
        if last is None:
            return self.estimate
        step, _, elapsed, steps = last
        return max(0.0, (steps - step) * elapsed / max(step, 1))

    def queue_place(self) -> tuple[int, float] | None:
        """(place in the queue for a training slot, 1 = next; estimated seconds until it starts),
        or None when not waiting for a slot."""
        holders, queue = SLOTS.snapshot()
        if self not in queue:
            return None
        ahead = queue[: queue.index(self)]
        return len(ahead) + 1, expected_wait(holders, ahead, SLOTS.capacity)

    @property
    def fraction(self) -> float:
        total = getattr(self.config, "steps", 1) or 1
        return 1.0 if self.done and self.error is None else min(1.0, self.steps_done / total)

    def history(self) -> pd.DataFrame:
        """Reported (step, loss, elapsed) so far (loss = mean over the last `every` steps)."""
        with self._lock:
            rows = [r[:3] for r in self._rows]
        return pd.DataFrame(rows, columns=["step", "loss", "elapsed"])


def expected_wait(holders: list, ahead: list, capacity: int) -> float:
    """Seconds until a slot frees for the next waiter after `ahead`: the running jobs finish in
    their `remaining()` s, each job ahead then takes a slot for its `estimate` s."""
    free = [getattr(h, "remaining", lambda: 0.0)() for h in holders]
    free += [0.0] * max(0, capacity - len(holders))
    heapq.heapify(free)
    for job in ahead:
        heapq.heappush(free, heapq.heappop(free) + getattr(job, "estimate", 0.0))
    return free[0]


class Cancelled(ScorevizError):
    """Stopped before training started (while waiting for a free slot)."""

    def __init__(self) -> None:
        super().__init__("Training was stopped before it started.")


def stop_all(timeout: float = 30.0) -> bool:
    """Stop every running job and wait for its thread (at most `timeout` s in all); whether all
    ended. Registered to run before the interpreter shuts down (`scoreviz.jobs.shutdown`): a
    thread still inside torch then aborts the process ("terminate called without an active
    exception")."""
    _EXITING.set()
    with _KEYS_GUARD:
        jobs = list(_RUNNING)
    for job in jobs:
        job.request_stop()
    deadline = time.monotonic() + timeout
    for job in jobs:
        if job.thread is not None and job.thread is not threading.current_thread():
            job.thread.join(max(0.0, deadline - time.monotonic()))
    return not any(j.thread is not None and j.thread.is_alive() for j in jobs)
