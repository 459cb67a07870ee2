"""Slots: at most `capacity` holders at once, the others admitted in arrival order (FIFO).

Why: Streamlit sessions are threads of one process on a 2-core server. Without a limit, three
sessions that each sample with an expensive exact score (or train a big network) share those
cores and each takes three times as long; the fourth student waits with no sign of why. Training
takes one of `scoreviz.jobs.training_job.SLOTS`, heavy page computations one of
`scoreviz.ui.limits`' slots. A waiter can be told its position ("2 ahead") and can give up.
No Streamlit: tested with plain threads (tests/test_jobs.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from scoreviz.errors import ScorevizError

POLL_SECONDS = 0.5  # how often a waiter refreshes its position and checks whether to give up


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
