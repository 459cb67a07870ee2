"""Server-wide limits: a few slots for heavy work, taken in arrival order, and whether a session
is still connected (so that work for a closed tab is dropped).

Streamlit sessions are threads of one process, and the server has 2 cores. Without a limit, three
sessions that each sample with an expensive exact score (or train a big network) share those cores
and each takes three times as long; the fourth student waits with no sign of why. So:

- `Slots`: at most `capacity` holders at once; the others wait in a FIFO queue and can be told
  their position ("2 ahead"). Training uses one (`training_runner`), heavy page computations
  another (`heavy`).
- `heavy`: a decorator for the cached computations of `compute.py` (placed under
  `st.cache_data`, so a cache hit never waits). On a miss it takes one of `HEAVY_SLOTS` slots;
  while it waits the page shows "Waiting for a free compute slot… N ahead", and a session that
  has gone stops waiting (its result would reach no one).
- `session_alive(session_id)`: asks the Streamlit runtime whether the session is still
  connected (`Runtime.is_active_session`, thread-safe). Without a runtime (AppTest, a notebook)
  every session counts as alive.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st

from scoreviz.errors import ScorevizError

HEAVY_SLOTS = 2  # heavy page computations at once per server (one per core)
POLL_SECONDS = 0.5  # how often a waiter refreshes its position and checks its session


class SlotWaitAbandoned(ScorevizError):
    """The wait for a slot was given up (stopped by the user, or the session has gone)."""

    def __init__(self, why: str = "The wait for a free slot was stopped.") -> None:
        super().__init__(why)


class Slots:
    """At most `capacity` holders at once; waiters are admitted in arrival order (FIFO).

    Thread-safe. A ticket is any object identifying the waiter (a training job, or a fresh
    object()); `snapshot()` lists holders and the queue for position and wait estimates.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._cond = threading.Condition()
        self._holders: list[object] = []
        self._queue: list[object] = []

    def _admit(self, ticket: object) -> bool:
        """Take a slot for `ticket` if it is first in line and one is free (lock held)."""
        if len(self._holders) < self.capacity and self._queue[0] is ticket:
            self._queue.pop(0)
            self._holders.append(ticket)
            self._cond.notify_all()  # the next in line may fit too
            return True
        return False

    def acquire(
        self,
        ticket: object | None = None,
        on_wait: Callable[[int], bool | None] | None = None,
        poll: float = POLL_SECONDS,
    ) -> object:
        """Wait for a slot; returns the ticket now holding it (pass it to `release`).

        While waiting, `on_wait(ahead)` is called about every `poll` s, outside the lock, with
        the number of waiters ahead; if it returns True the wait is given up (SlotWaitAbandoned).
        """
        ticket = object() if ticket is None else ticket
        with self._cond:
            self._queue.append(ticket)
        try:
            while True:
                with self._cond:
                    if self._admit(ticket):
                        return ticket
                    ahead = self._queue.index(ticket)
                if on_wait is not None and on_wait(ahead):
                    raise SlotWaitAbandoned()
                with self._cond:
                    if self._admit(ticket):
                        return ticket
                    self._cond.wait(poll)
        except BaseException:
            with self._cond:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                    self._cond.notify_all()
            raise

    def release(self, ticket: object) -> None:
        with self._cond:
            self._holders.remove(ticket)
            self._cond.notify_all()

    @contextmanager
    def slot(self, ticket: object | None = None, on_wait=None) -> Iterator[object]:
        """Hold a slot for the block (see `acquire`)."""
        held = self.acquire(ticket, on_wait)
        try:
            yield held
        finally:
            self.release(held)

    def position(self, ticket: object) -> int | None:
        """Waiters ahead of `ticket` in the queue (0: next), or None if it is not waiting."""
        with self._cond:
            return self._queue.index(ticket) if ticket in self._queue else None

    def snapshot(self) -> tuple[list[object], list[object]]:
        """(holders, queue in arrival order), copies."""
        with self._cond:
            return list(self._holders), list(self._queue)


# ----------------------------------------------------------------------------- sessions
def current_session_id() -> str | None:
    """The id of the session whose script run this is (None outside a script run)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.session_id


def session_alive(session_id: str | None) -> bool:
    """False only when the Streamlit runtime says the session is no longer connected."""
    if session_id is None:
        return True
    from streamlit import runtime

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
    from streamlit.runtime.scriptrunner_utils.script_run_context import in_cached_function

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
