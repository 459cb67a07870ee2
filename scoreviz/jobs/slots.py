"""Slots: at most `capacity` holders at once, the waiters admitted by a per-owner round robin.

Why: Streamlit sessions are threads of one process on a 2-core server. Without a limit, three
sessions that each sample with an expensive exact score (or train a big network) share those
cores and each takes three times as long; the fourth student waits with no sign of why. Training
takes one of `scoreviz.jobs.training_job.SLOTS`, heavy page computations (sampling rows, DAE
views, exports) one of `scoreviz.ui.limits`' slots. A waiter can be told its position ("2 ahead")
and can give up.

Fair share: a ticket may name its `owner` (a student: `scoreviz.ui.limits.current_owner`) and
its `kind` ("train", "compute", "export"). The next slot goes to the waiting owner that holds
the fewest slots now, then to the one served least recently, then by arrival: a student who
queued three big trainings from three tabs holds two slots and waits behind a classmate who
holds none (round robin between owners). An owner has at most one queued ticket of each kind: a
second one is refused (`AlreadyQueued`) or, with `replace=True`, takes the first one's place
(the first wait ends with SlotWaitAbandoned). Tickets without an owner are their own owner, so
they are served in arrival order (FIFO), as before owners existed.
No Streamlit: tested with plain threads (tests/test_jobs.py).
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

from scoreviz.errors import ScorevizError

POLL_SECONDS = 0.5  # how often a waiter refreshes its position and checks whether to give up
MAX_OWNERS = 4096  # owners whose last service is remembered (the oldest are forgotten)
REPLACED = (
    "A newer computation of yours (in this tab or another) took this one's place in the queue: "
    "one waits at a time per student. Rerun this page to ask again."
)


class SlotWaitAbandoned(ScorevizError):
    """The wait for a slot was given up (stopped by the user, the session has gone, or a newer
    request of the same owner took its place)."""

    def __init__(self, why: str = "The wait for a free slot was stopped.") -> None:
        super().__init__(why)


class AlreadyQueued(ScorevizError):
    """The owner already has a ticket of this kind waiting for a slot."""

    def __init__(self, kind: str) -> None:
        what = "training" if kind == "train" else f"{kind} job"
        super().__init__(
            f"You already have a {what} waiting for a free slot (in this tab or another one): "
            "one waits at a time per student, so that every classmate gets a turn. It starts "
            "when a slot frees; stop it first to queue another."
        )


class Slots:
    """At most `capacity` holders at once; waiters are admitted by round robin between owners.

    Thread-safe. A ticket is any hashable object identifying the waiter (a training job, or a
    fresh object()); `snapshot()` lists holders and the queue in admission order, for position
    and wait estimates.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._cond = threading.Condition()
        self._holders: list[object] = []
        self._queue: list[object] = []  # arrival order
        self._meta: dict[object, tuple[Hashable, str | None]] = {}  # ticket -> (owner, kind)
        self._served: dict[Hashable, int] = {}  # owner -> when it last got a slot
        self._ticks = itertools.count(1)
        self._replaced: set[object] = set()  # waiters whose place a newer ticket took

    # --------------------------------------------------------------------- order (lock held)
    def _owner(self, ticket: object) -> Hashable:
        owner = self._meta.get(ticket, (None, None))[0]
        return ("ticket", id(ticket)) if owner is None else owner

    def _order(self) -> list[object]:
        """The queue in the order it would be admitted: each next ticket is the one whose owner
        holds the fewest slots (counting those admitted before it), then was served least
        recently, then arrived first."""
        held = Counter(self._owner(h) for h in self._holders)
        last = dict(self._served)
        pending = [t for t in self._queue if t not in self._replaced]
        order, tick = [], 0
        while pending:
            owners = [self._owner(t) for t in pending]
            i = min(range(len(pending)), key=lambda i: (held[owners[i]], last.get(owners[i], 0), i))
            ticket, owner = pending.pop(i), owners[i]
            held[owner] += 1
            tick += 1
            last[owner] = 10**18 + tick  # after everything served so far
            order.append(ticket)
        return order

    def _admit(self, ticket: object) -> bool:
        """Take a slot for `ticket` if it is next in line and one is free (lock held)."""
        if len(self._holders) < self.capacity and self._order()[0] is ticket:
            self._queue.remove(ticket)
            self._holders.append(ticket)
            self._served[self._owner(ticket)] = next(self._ticks)
            if len(self._served) > MAX_OWNERS:  # forget the longest-unserved half (bounded)
                keep = sorted(self._served.items(), key=lambda kv: kv[1])[MAX_OWNERS // 2 :]
                self._served = dict(keep)
            self._cond.notify_all()  # the next in line may fit too
            return True
        return False

    def _enqueue(self, ticket: object, owner: Hashable, kind: str | None, replace: bool) -> None:
        if owner is not None and kind is not None:
            for other in self._queue:
                if self._meta.get(other) == (owner, kind):
                    if not replace:
                        raise AlreadyQueued(kind)
                    self._replaced.add(other)
                    self._cond.notify_all()
        self._queue.append(ticket)
        self._meta[ticket] = (owner, kind)

    def _leave(self, ticket: object) -> None:
        """Forget a waiter that gave up (lock held)."""
        if ticket in self._queue:
            self._queue.remove(ticket)
            self._meta.pop(ticket, None)
            self._cond.notify_all()
        self._replaced.discard(ticket)

    def _check_replaced(self, ticket: object) -> None:
        if ticket in self._replaced:
            raise SlotWaitAbandoned(REPLACED)

    # --------------------------------------------------------------------- public
    def acquire(
        self,
        ticket: object | None = None,
        on_wait: Callable[[int], bool | None] | None = None,
        poll: float = POLL_SECONDS,
        *,
        owner: Hashable = None,
        kind: str | None = None,
        replace: bool = False,
    ) -> object:
        """Wait for a slot; returns the ticket now holding it (pass it to `release`).

        While waiting, `on_wait(ahead)` is called about every `poll` s, outside the lock, with
        the number of waiters to be admitted before this one; if it returns True the wait is
        given up (SlotWaitAbandoned). `owner` and `kind`: see the module docstring (AlreadyQueued
        when the owner already waits with a ticket of this kind, unless `replace`).
        """
        ticket = object() if ticket is None else ticket
        with self._cond:
            self._enqueue(ticket, owner, kind, replace)
        try:
            while True:
                with self._cond:
                    self._check_replaced(ticket)
                    if self._admit(ticket):
                        return ticket
                    ahead = self._order().index(ticket)
                if on_wait is not None and on_wait(ahead):
                    raise SlotWaitAbandoned()
                with self._cond:
                    self._check_replaced(ticket)
                    if self._admit(ticket):
                        return ticket
                    self._cond.wait(poll)
        except BaseException:
            with self._cond:
                self._leave(ticket)
            raise

    def release(self, ticket: object) -> None:
        with self._cond:
            self._holders.remove(ticket)
            self._meta.pop(ticket, None)
            self._cond.notify_all()

    @contextmanager
    def slot(self, ticket: object | None = None, on_wait=None, **who) -> Iterator[object]:
        """Hold a slot for the block (see `acquire`; `who`: owner, kind, replace)."""
        held = self.acquire(ticket, on_wait, **who)
        try:
            yield held
        finally:
            self.release(held)

    def position(self, ticket: object) -> int | None:
        """Waiters to be admitted before `ticket` (0: next), or None if it is not waiting."""
        with self._cond:
            order = self._order()
            return order.index(ticket) if ticket in order else None

    def waiting(self, owner: Hashable, kind: str) -> bool:
        """Whether `owner` has a ticket of `kind` in the queue (a second would be refused)."""
        with self._cond:
            mine = (owner, kind)
            return any(self._meta.get(t) == mine and t not in self._replaced for t in self._queue)

    def snapshot(self) -> tuple[list[object], list[object]]:
        """(holders, queue in admission order), copies."""
        with self._cond:
            return list(self._holders), self._order()
