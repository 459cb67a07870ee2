"""Training in a background thread, one job per session, with a Stop that really stops.

Why a thread: `training.train` is a plain loop (seconds to a minute on a 2-core CPU). Run inside
the script, it would freeze the session (no other page, no Stop) until it ends. Instead:

- `start_training` reuses a finished identical model from the server-wide store
  (`state.shared_models`, built-in distributions only) or starts a `TrainingJob`: a daemon
  thread that calls `train(progress=job._on_progress)`. The callback records the loss and
  returns `job.stop_event.is_set()`, so Stop ends training at the next report (~25 steps).
- The job object lives in `st.session_state["training_job"]`. The thread never touches
  Streamlit; pages poll the job inside an `@st.fragment(run_every=0.5)` (`live_status`), and
  `collect_finished` (called by app.py on every run) moves a finished result into the session's
  models, or turns the error into a notice. A diverged run leaves the active model unchanged.
- At most `MAX_CONCURRENT` jobs train at once per server (the others wait in a FIFO queue,
  `limits.Slots`, and are shown their place and an estimated wait), so a room of students pressing
  Train does not grind the CPU to a halt.
- Every job has a budget: `start_training` refuses a config whose estimated time
  (`costs.train_seconds`) exceeds `MAX_JOB_SECONDS`, and a job that trains longer than
  `TIME_LIMIT_SECONDS` by the wall clock is stopped like Stop does (its model so far is kept).
- A job whose session has gone (tab closed: the runtime no longer lists it as connected) for
  `GRACE_SECONDS` stops, while it trains or while it waits for a slot: no abandoned job holds a
  slot for half an hour.
- Identical shareable configs train once even when pressed at the same moment: a job first takes
  a per-model-id lock; whoever gets it second finds the first one's result in the shared store
  and takes it without training (a "follower", shown the leader's progress while it waits). If
  the leader is stopped, its partial model is not shared and the next follower trains itself.
- Across processes (replicas behind a load balancer): with `SCOREVIZ_MODEL_STORE` set, the leader
  goes through the on-disk store (`scoreviz.model_store`): under the model's file lock it loads
  the model another replica trained, or trains it and saves it there (`from_store` says which).

Tests (AppTest) use the real thread and rerun the app until the job is collected
(`tests/apptest_utils.run_until`); `TrainingJob` itself is tested without Streamlit.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import streamlit as st

from scoreviz import costs, model_store
from scoreviz.errors import ScorevizError
from scoreviz.mixture import GaussianMixture
from scoreviz.quality import assess_result
from scoreviz.text import escape
from scoreviz.ui.limits import Slots, SlotWaitAbandoned, current_session_id, session_alive

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("scoreviz")

JOB_KEY = "training_job"
NOTICE_KEY = "training_notice"
MAX_CONCURRENT = 2  # training threads per server; more wait for a free slot
POLL_SECONDS = 0.5  # how often the live status refreshes (2 updates/s: cheap, still fluid)
# Budget per job: an estimate above MAX_JOB_SECONDS is refused before it starts (the form's
# largest settings, 256x6 at batch 2,048 for 20,000 steps, would take ~35 min); a job that
# trains longer than TIME_LIMIT_SECONDS anyway (a busy server, an estimate off by 1.5x) is stopped.
MAX_JOB_SECONDS = 300.0
TIME_LIMIT_SECONDS = 1.5 * MAX_JOB_SECONDS
GRACE_SECONDS = 30.0  # a job stops once its session has been gone this long (reconnects are fine)
_SLOTS = Slots(MAX_CONCURRENT)  # FIFO slots (a lock and a queue of jobs, not per-user data)
# Server-wide, per model id: one lock (identical configs train one after the other, so the
# second finds the first's result) and the job training it now (for followers' progress).
_KEYS_GUARD = threading.Lock()
_KEY_LOCKS: dict[str, threading.Lock] = {}
_LEADERS: dict[str, TrainingJob] = {}
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
    store: object | None = None  # the server-wide store (state._SharedModels): dedupe via it
    reused: bool = False  # the result came from an identical job of another session
    every: int = 25  # steps between progress reports (and stop checks)
    alive: Callable[[], bool] | None = None  # is the session still there? (None: always)
    grace: float = GRACE_SECONDS  # stop once `alive` has said False for this long
    time_limit: float | None = None  # seconds of training before it is stopped (None: none)
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
        """Start the daemon thread (returns at once)."""
        self.thread = threading.Thread(target=self.run, name=f"scoreviz-train-{self.name}")
        self.thread.daemon = True
        self.thread.start()
        return self

    def run(self) -> None:
        """The thread body: wait for a slot, train, record result or error (never raises)."""
        try:
            if self.store is None:
                self._train()
            else:
                self._train_once_per_server()
        except _Cancelled as exc:
            self.error = exc
        except SlotWaitAbandoned:
            self.error = _Cancelled()
        except ScorevizError as exc:
            self.error = exc
        except Exception as exc:  # noqa: BLE001 - reported to the user as a short message
            log.exception("Training %s failed", self.name)
            self.error = exc
        finally:
            self._done.set()

    def _train(self) -> None:
        from scoreviz.training import train

        _SLOTS.acquire(self, on_wait=lambda ahead: self._should_stop())
        try:
            self._started.set()
            if self.stop_event.is_set():
                raise _Cancelled()
            result = train(
                self.config,
                progress=self._on_progress,
                every=self.every,
                dist=self.dist,
                init=self.init,
            )
            self.checking = True  # the progress text says so while the samplers run
            result.quality = assess_result(result, self.dist)
            self.result = result
        finally:
            _SLOTS.release(self)

    def _train_once_per_server(self) -> None:
        model_id = self.config.model_id
        lock = _key_lock(model_id)
        while not lock.acquire(timeout=0.1):  # an identical job is running: wait, stoppable
            if self._should_stop():
                raise _Cancelled()
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
            raise _Cancelled() from None
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
        now = time.monotonic()
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
        holders, queue = _SLOTS.snapshot()
        if self not in queue:
            return None
        ahead = queue[: queue.index(self)]
        return len(ahead) + 1, expected_wait(holders, ahead, _SLOTS.capacity)

    @property
    def fraction(self) -> float:
        total = getattr(self.config, "steps", 1) or 1
        return 1.0 if self.done and self.error is None else min(1.0, self.steps_done / total)

    def history(self) -> pd.DataFrame:  # pandas imported here: Home's first render skips it
        """Reported (step, loss, elapsed) so far (loss = mean over the last `every` steps)."""
        with self._lock:
            rows = [r[:3] for r in self._rows]
        import pandas as pd

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


class _Cancelled(ScorevizError):
    """Stopped before training started (while waiting for a free slot)."""

    def __init__(self) -> None:
        super().__init__("Training was stopped before it started.")


# ----------------------------------------------------------------------------- session glue
def current_job() -> TrainingJob | None:
    return st.session_state.get(JOB_KEY)


def is_training() -> bool:
    job = current_job()
    return job is not None and not job.collected


def start_training(
    config, name: str, dist: GaussianMixture | None = None, init: object | None = None
) -> str:
    """Start (or reuse) training of `config` as model `name`; returns what happened.

    "busy": this session is already training; "started": a background job is running. If an
    identical model was already trained on this server, it becomes active and the app reruns
    (this call does not return). A config estimated to train longer than MAX_JOB_SECONDS raises
    ConfigError (its message says what to change), before anything starts.
    `dist` is given only for uploaded data (never shared across sessions); `init` is the
    TrainResult to train longer (config from `training.continuation`).
    """
    from scoreviz.ui.state import add_model, shared_models

    if is_training():
        return "busy"
    costs.check_budget(config, MAX_JOB_SECONDS)
    shareable = dist is None
    cached = shared_models().get(config.model_id) if shareable else None
    if cached is not None:
        add_model(name, cached)
        _notice(
            "success", f"“{escape(name)}” was already trained on this server: it is active now."
        )
        st.rerun()  # the sidebar (drawn before the button) must show the new active model
    st.session_state.pop(NOTICE_KEY, None)
    store = shared_models() if shareable else None
    sid = current_session_id()
    job = TrainingJob(
        config=config,
        name=name,
        dist=dist,
        init=init,
        shareable=shareable,
        store=store,
        alive=lambda: session_alive(sid),
        time_limit=TIME_LIMIT_SECONDS,
    )
    st.session_state[JOB_KEY] = job
    job.start()
    return "started"


def collect_finished() -> None:
    """Hand a finished job to the session (app.py calls this at the top of every run)."""
    from scoreviz.ui.state import add_model, shared_models

    job = current_job()
    if job is None or job.collected or not job.done:
        return
    job.collected = True
    if job.result is not None:
        res = job.result
        if job.shareable and not res.stopped:
            shared_models().put(res.model_id, res)
        if not job.reused:  # trained here, not loaded
            costs.PACE.record_history(res.config, res.history)  # calibrates the estimates
        add_model(job.name, res)
        if job.from_store:
            how = (
                f"was already trained by another server of this app ({res.elapsed:.1f} s); it "
                "was loaded from the shared model store"
            )
        elif job.reused:
            how = f"was already trained on this server ({res.elapsed:.1f} s, for another session)"
        elif res.stopped and job.end_reason == "time limit":
            how = (
                f"reached the time limit of {costs.minutes(job.time_limit)} per training at step "
                f"{len(res.history)}: it was stopped, as with Stop,"
            )
        elif res.stopped and job.end_reason == "session gone":
            how = f"was stopped at step {len(res.history)} while this tab was away,"
        elif res.stopped:
            how = f"stopped at step {len(res.history)} in {res.elapsed:.1f} s"
        else:
            how = f"finished in {res.elapsed:.1f} s"
        _notice("success", f"“{escape(job.name)}” {how} and is now active.")
    elif isinstance(job.error, ScorevizError):
        kind = "warning" if isinstance(job.error, _Cancelled) else "error"
        _notice(kind, f"{job.error} The previously active model stays active.")
    else:
        _notice(
            "error",
            f"Training hit an unexpected problem ({type(job.error).__name__}). "
            "Try other settings; the previously active model stays active.",
        )


def _notice(kind: str, text: str) -> None:
    st.session_state[NOTICE_KEY] = (kind, text)


def show_notice() -> None:
    """Show the outcome of the last training (success / error) until the next one starts."""
    notice = st.session_state.get(NOTICE_KEY)
    if notice:
        {"success": st.success, "error": st.error, "warning": st.warning}[notice[0]](notice[1])


def live_status(show_chart: bool = True, key: str = "live") -> None:
    """Progress bar, live loss chart and Stop button of the running job, refreshed every 0.5 s.

    Runs as a fragment, so only this block reruns while training; when the job ends it triggers
    one full rerun so app.py collects the result (and the sidebar offers the new model).
    """
    if not is_training():
        return

    @st.fragment(run_every=POLL_SECONDS)
    def _poll() -> None:
        job = current_job()
        if job is None or job.collected:
            return
        if job.done:
            st.rerun()  # scope "app": collect_finished() runs and the page redraws
        _draw(job, show_chart, key)

    _poll()


def queue_text(place: tuple[int, float] | None) -> str:
    """'Waiting for a free training slot: 2nd in line, about 40 s…' (place: job.queue_place())."""
    if place is None:
        return "Waiting for a free training slot…"
    n, wait = place
    nth = {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")
    return (
        f"Waiting for a free training slot: {nth} in line, about {costs.minutes(wait)} "
        f"({MAX_CONCURRENT} trainings run at once on this server)…"
    )


def _draw(job: TrainingJob, show_chart: bool, key: str) -> None:
    from scoreviz.figures.training import loss_curve_figure

    steps = getattr(job.config, "steps", 0)
    shown = job.shown()
    hist = shown.history()
    if shown is not job:
        text = (
            f"The same model is being trained for another session (step {shown.steps_done} / "
            f"{steps}); it becomes yours when it finishes…"
        )
    elif job.elsewhere:
        text = "The same model is being trained by another server of this app; it becomes yours "
        text += "when it finishes…"
    elif job.queued:
        text = queue_text(job.queue_place())
    else:
        loss = f", loss {hist['loss'].iloc[-1]:.4g}" if len(hist) else ""
        secs = f", {hist['elapsed'].iloc[-1]:.1f} s" if len(hist) else ""
        text = f"Training “{escape(job.name)}”: step {job.steps_done} / {steps}{loss}{secs}"
        if job.checking:
            text = f"“{escape(job.name)}” trained: sampling it beside the exact score to judge it…"
    cols = st.columns([5, 1])
    cols[0].progress(shown.fraction, text=text)
    stopping = job.stop_event.is_set()
    cols[1].button(
        "Stopping…" if stopping else "Stop",
        icon=":material/stop_circle:",
        key=f"{key}_stop",
        on_click=job.request_stop,
        disabled=stopping,
        width="stretch",
    )
    if show_chart and len(hist) > 0:
        fig = loss_curve_figure(hist, total_steps=steps, title="Training loss (live)", height=300)
        st.plotly_chart(fig, width="stretch", key=f"{key}_loss")


def sidebar_status() -> None:
    """A compact progress line in the sidebar on every page while this session trains."""
    if not is_training():
        return

    @st.fragment(run_every=1.0)
    def _poll() -> None:
        job = current_job()
        if job is None or job.collected:
            return
        if job.done:
            st.rerun()
        st.progress(job.shown().fraction, text=f"Training “{escape(job.name)}”…")

    _poll()
