"""Server-wide limits in the app: a few slots for heavy page computations, and whether a session
is still connected (so that work for a closed tab is dropped).

The slots themselves (`scoreviz.jobs.slots.Slots`, FIFO, no Streamlit) are shared with training
(`scoreviz.jobs.training_job`); this module adds what needs Streamlit:

- `heavy`: a decorator for the heavy cached computations of `cache.py` (placed under
  `st.cache_data`, so a cache hit never waits). On a miss it takes one of `HEAVY_SLOTS` slots;
  while it waits the page shows "Waiting for a free compute slot… N ahead", and a session that
  has gone stops waiting (its result would reach no one).
- `session_alive(session_id)`: asks the Streamlit runtime whether the session is still
  connected (`Runtime.is_active_session`, thread-safe). Without a runtime (AppTest, a notebook)
  every session counts as alive.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_run_context import in_cached_function

from scoreviz.jobs.slots import Slots, SlotWaitAbandoned

HEAVY_SLOTS = 2  # heavy page computations at once per server (one per core)


# ----------------------------------------------------------------------------- sessions
def current_session_id() -> str | None:
    """The id of the session whose script run this is (None outside a script run)."""
    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.session_id


def session_alive(session_id: str | None) -> bool:
    """False only when the Streamlit runtime says the session is no longer connected."""
    if session_id is None:
        return True
    if not runtime.exists():  # AppTest, a notebook: no server, no disconnects
        return True
    return runtime.Runtime.instance().is_active_session(session_id)


# ----------------------------------------------------------------------------- heavy work
_HEAVY = Slots(HEAVY_SLOTS)


def heavy_wait_text(ahead: int) -> str:
    """The notice of a computation waiting behind `ahead` others (and the running ones)."""
    where = "you are next" if ahead == 0 else f"{ahead} ahead of you"
    return (
        f"Waiting for a free compute slot… {where} "
        f"({HEAVY_SLOTS} heavy computations run at once on this server)."
    )


@contextmanager
def _not_replayed() -> Iterator[None]:
    """Elements written in the block are not recorded by an enclosing st.cache_data (so a cache
    hit does not replay a stale "waiting" notice)."""
    token = in_cached_function.set(False)
    try:
        yield
    finally:
        in_cached_function.reset(token)


class _WaitNotice:
    """An st.info placeholder created on the first wait, cleared when the wait ends."""

    def __init__(self) -> None:
        self.box = None

    def show(self, ahead: int) -> None:
        with _not_replayed():
            if self.box is None:
                self.box = st.empty()
            self.box.info(heavy_wait_text(ahead), icon="⏳")

    def clear(self) -> None:
        if self.box is not None:
            with _not_replayed():
                self.box.empty()


def heavy(fn):
    """Run fn in one of the server's `HEAVY_SLOTS` slots, waiting visibly for one if needed.

    Place it under `st.cache_data` (a hit returns at once). Work for a session that is no longer
    connected is dropped: before it starts, and while it waits (SlotWaitAbandoned).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        sid = current_session_id()
        gone = "This session has closed: its computation was dropped."
        if not session_alive(sid):
            raise SlotWaitAbandoned(gone)
        notice = _WaitNotice()

        def on_wait(ahead: int) -> bool:
            notice.show(ahead)
            return not session_alive(sid)

        try:
            ticket = _HEAVY.acquire(on_wait=on_wait)
        except SlotWaitAbandoned:
            raise SlotWaitAbandoned(gone) from None
        finally:
            notice.clear()
        try:
            return fn(*args, **kwargs)
        finally:
            _HEAVY.release(ticket)

    return wrapper
