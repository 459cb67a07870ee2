"""Training in the app: one background job per session (`scoreviz.jobs.TrainingJob`), its live
progress, its Stop button, and its result handed to the session.

- `start_training` reuses a finished identical model from the server-wide store
  (`models.shared_models`, built-in distributions only) or starts a job in its own thread, with
  the budget (`MAX_JOB_SECONDS` refused up front, `TIME_LIMIT_SECONDS` stopped) and a liveness
  check of this session (a closed tab's job stops after `jobs.training_job.GRACE_SECONDS`).
- The job lives in session state (`keys.TRAINING_JOB`); the thread never touches Streamlit.
  Pages poll it inside an `@st.fragment(run_every=0.5)` (`live_status`), and `collect_finished`
  (app.py calls it on every run) moves a finished result into the session's models, or turns
  the error into a notice. A diverged run leaves the active model unchanged.
- At most `MAX_CONCURRENT` jobs train at once per server; the others are shown their place in
  the queue and an estimated wait (`queue_text`). A job is this student's (`limits.
  current_owner`): the slots go round robin between students, and a student whose training
  (from any tab) is still waiting for a slot is told so instead of queueing a second one.
- `train_and_wait`: the DAE page's "Train the DAE" runs the same kind of job (the same slots,
  budget and per-model-id leader/followers: identical DAEs of several sessions are one run) and
  waits for it in the script run, showing its progress, its place in the queue, or the other
  session's run it follows. Before, it trained inline in the script thread: 8 students at once
  took 35-39 s each (5.9 s alone) beside the slots' two trainings.

AppTests use the real thread and rerun the app until the job is collected
(`tests/apptest_utils.run_until`); the job itself is tested without Streamlit (tests/test_jobs.py).
"""

from __future__ import annotations

import streamlit as st

from scoreviz import costs
from scoreviz.data_io import is_shared_key
from scoreviz.errors import ScorevizError
from scoreviz.figures.training import loss_curve_figure
from scoreviz.jobs import training_job
from scoreviz.jobs.slots import AlreadyQueued
from scoreviz.jobs.training_job import KIND, MAX_CONCURRENT, Cancelled, TrainingJob
from scoreviz.mixture import GaussianMixture
from scoreviz.text import escape
from scoreviz.ui import keys
from scoreviz.ui.limits import WaitNotice, current_owner, current_session_id, session_alive
from scoreviz.ui.models import add_model, shared_models

POLL_SECONDS = 0.5  # how often the live status refreshes (2 updates/s: cheap, still fluid)
# Budget per job: an estimate above MAX_JOB_SECONDS is refused before it starts (the form's
# largest settings, 256x6 at batch 2,048 for 20,000 steps, would take ~35 min); a job that
# trains longer than TIME_LIMIT_SECONDS anyway (a busy server, an estimate off by 1.5x) is stopped.
MAX_JOB_SECONDS = 300.0
TIME_LIMIT_SECONDS = 1.5 * MAX_JOB_SECONDS


# ----------------------------------------------------------------------------- session glue
def current_job() -> TrainingJob | None:
    return st.session_state.get(keys.TRAINING_JOB)


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
    if is_training():
        return "busy"
    costs.check_budget(config, MAX_JOB_SECONDS)
    # Shared (server-wide store, on-disk store) only what this server trained from settings
    # alone or from a shared model: never uploaded data, never weights from an imported file
    # (a continuation's id binds its parent's content too: training.continuation). Drawn and
    # typed data are shared: their key is the sha256 of their points (`scoreviz.sketch`).
    public = dist is None or is_shared_key(config.distribution)
    shareable = public and not getattr(init, "from_file", False)
    cached = shared_models().get(config.model_id) if shareable else None
    if cached is not None:
        add_model(name, cached)
        _notice(
            "success", f"“{escape(name)}” was already trained on this server: it is active now."
        )
        st.rerun()  # the sidebar (drawn before the button) must show the new active model
    owner = _one_waiting_per_student()
    st.session_state.pop(keys.TRAINING_NOTICE, None)
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
        owner=owner,
        time_limit=TIME_LIMIT_SECONDS,
    )
    st.session_state[keys.TRAINING_JOB] = job
    job.start()
    return "started"


def _one_waiting_per_student():
    """This student (`limits.current_owner`); AlreadyQueued if a training of theirs, from any
    tab, is still waiting for a slot (one waits per student: classmates get their turn)."""
    owner = current_owner()
    if training_job.SLOTS.waiting(owner, KIND):
        raise AlreadyQueued(KIND)
    return owner


def train_and_wait(config, name: str, dist: GaussianMixture | None, on_progress) -> object:
    """Train `config` in a training job and wait for it here (the DAE page's button); returns
    the TrainResult. on_progress(fraction) is called while it trains; the wait for a slot, or
    for an identical model another session is training, shows as a notice. Budgeted like any
    training (ConfigError over MAX_JOB_SECONDS); `dist` only for uploaded data (not shared).
    If this script run is stopped (a rerun, the tab closing), the job is stopped too."""
    costs.check_budget(config, MAX_JOB_SECONDS)
    owner, sid, shareable = _one_waiting_per_student(), current_session_id(), dist is None
    job = TrainingJob(
        config=config,
        name=name,
        dist=dist,
        shareable=shareable,
        store=shared_models() if shareable else None,
        alive=lambda: session_alive(sid),
        owner=owner,
        assess=False,  # the DAE page draws its own comparison
        time_limit=TIME_LIMIT_SECONDS,
    ).start()
    notice = WaitNotice()
    try:
        while not job.wait(POLL_SECONDS):
            _show_progress(job, notice, on_progress)
    except BaseException:
        job.request_stop()  # nobody will collect it: this run is over
        raise
    finally:
        notice.clear()
    if job.error is not None:
        raise job.error
    return job.result


def _show_progress(job: TrainingJob, notice: WaitNotice, on_progress) -> None:
    shown = job.shown()
    if shown is not job:
        notice.show(
            f"The same model is being trained for another session (step {shown.steps_done} / "
            f"{getattr(job.config, 'steps', 0)}); it becomes yours when it finishes…"
        )
    elif job.queued:
        notice.show(queue_text(job.queue_place()))
    else:
        notice.clear()
    on_progress(shown.fraction)


def collect_finished() -> None:
    """Hand a finished job to the session (app.py calls this at the top of every run)."""
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
        kind = "warning" if isinstance(job.error, Cancelled) else "error"
        _notice(kind, f"{job.error} The previously active model stays active.")
    else:
        _notice(
            "error",
            f"Training hit an unexpected problem ({type(job.error).__name__}). "
            "Try other settings; the previously active model stays active.",
        )


def _notice(kind: str, text: str) -> None:
    st.session_state[keys.TRAINING_NOTICE] = (kind, text)


def show_notice() -> None:
    """Show the outcome of the last training (success / error) until the next one starts."""
    notice = st.session_state.get(keys.TRAINING_NOTICE)
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
