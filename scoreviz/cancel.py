"""Cooperative cancellation of long computations: a loop calls `check()` once per step, and
whoever started the work in this thread (or context) decides, with `scope`, when it should stop.

Why: a Sampling row at the sliders' maximum (predictor-corrector, 500 steps x 10 correctors x
2,000 particles on the word) costs ~90 s of a core. When its tab closes, nobody will see the
result; without a check the row ran to the end while a classmate's page waited for the slot it
held. The samplers call `check()` once per step, so cancelled work ends within one step.

    with cancel.scope(lambda: not session_alive(sid)):
        traj = samplers.sample(score_fn, process, config)   # raises Cancelled once it says so

The scope lives in a `contextvars.ContextVar`: it covers the calls made in this thread (a
Streamlit script run and the cached functions it calls), not other threads. Outside any scope
`check()` costs one variable lookup and never raises. No Streamlit: the UI passes its own test
(`scoreviz.ui.limits.heavy`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from scoreviz.errors import ScorevizError

_SHOULD_STOP: ContextVar[Callable[[], bool] | None] = ContextVar("scoreviz_cancel", default=None)


class Cancelled(ScorevizError):
    """The computation was stopped part-way (its session has gone, or it was stopped)."""

    def __init__(self, why: str = "This computation was stopped: its page has closed.") -> None:
        super().__init__(why)


@contextmanager
def scope(should_stop: Callable[[], bool], why: str | None = None) -> Iterator[None]:
    """Within the block, `check()` raises Cancelled(why) once `should_stop()` is True."""

    def test() -> bool:
        return bool(should_stop())

    test.why = why  # type: ignore[attr-defined]
    token = _SHOULD_STOP.set(test)
    try:
        yield
    finally:
        _SHOULD_STOP.reset(token)


def check() -> None:
    """Raise Cancelled if the enclosing `scope` says the work should stop (else nothing)."""
    test = _SHOULD_STOP.get()
    if test is not None and test():
        raise Cancelled(*([test.why] if test.why else []))
