"""Background work of the app that needs no Streamlit: training jobs (one thread each, a Stop
that stops, identical models trained once per server), slots that bound how much heavy work runs
at once and share it round robin between students, and the server-wide store of finished
models. `scoreviz.ui` adds the sessions, widgets and messages; these modules are tested with
plain threads (tests/test_jobs.py, tests/test_fairshare.py).

    from scoreviz.jobs import SharedModels, TrainingJob
    job = TrainingJob(config, name="demo", store=SharedModels(8)).start()
    job.wait(); job.result

Importing this registers `training_job.stop_all` to run at interpreter exit: every running job
is stopped and joined before Python shuts down (a thread still inside torch then aborts the
process with "terminate called without an active exception", status 134).
"""

from __future__ import annotations

import atexit

from scoreviz.jobs.shared import SharedModels
from scoreviz.jobs.slots import AlreadyQueued, Slots, SlotWaitAbandoned
from scoreviz.jobs.training_job import Cancelled, TrainingJob, expected_wait, stop_all

# atexit runs its functions last-registered first: registered after torch's import (above), this
# runs before anything torch registered.
atexit.register(stop_all)

__all__ = [
    "AlreadyQueued",
    "Cancelled",
    "SharedModels",
    "SlotWaitAbandoned",
    "Slots",
    "TrainingJob",
    "expected_wait",
    "stop_all",
]
