"""Server-wide limits in the app: a few slots for heavy page computations, whose owner is the
student, and whether a session is still connected (so that work for a closed tab is dropped).

The slots themselves (`scoreviz.jobs.slots.Slots`, round robin between owners, no Streamlit) are
the machinery training uses too (`scoreviz.jobs.training_job`); this module adds what needs
Streamlit:

- `heavy`: a decorator for the heavy cached computations of `cache.py` and the exports (placed
  under `st.cache_data`, so a cache hit never waits). On a miss it takes one of `HEAVY_SLOTS`
  slots, owned by this student (`current_owner`): the slots go round robin between students,
  and a student's newer request of the same kind takes the place of an older one still waiting.
  While it waits the page shows "Waiting for a free compute slot… N ahead" (where
  `waits_shown_in` says, e.g. beside an Export menu). A session that has gone stops waiting, and
  work that has started stops at its next step (`scoreviz.cancel`: the samplers check it once per
  step), freeing the slot for the students still there.
- `session_alive(session_id)`: asks the Streamlit runtime whether the session is still
  connected (`Runtime.is_active_session`, thread-safe). Without a runtime (AppTest, a notebook)
  every session counts as alive.
- `current_owner()`: the student a request belongs to: the browser (its XSRF cookie's token,
  shared by its tabs), else the session. Three tabs of one browser are one student, so they get
  one share of the slots between them. (Separate browsers or private windows are separate
  students: this is fairness between honest classmates, not a defence against one who is not.)

Training slots and these are two pools of the same kind: a 5-minute training must not make a
classmate's Sampling page wait 5 minutes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_run_context import in_cached_function

from scoreviz import cancel
from scoreviz.jobs.slots import Slots, SlotWaitAbandoned

try:  # Streamlit's own decoder of its XSRF cookie (1.67; another version may move it)
    from streamlit.web.server.starlette.starlette_app_utils import (
        decode_xsrf_token_string as _decode_xsrf,
    )
except ImportError:  # pragma: no cover - then every session is its own owner
    _decode_xsrf = None

HEAVY_SLOTS = 2  # heavy page computations at once per server (one per core)
XSRF_COOKIE = "_streamlit_xsrf"  # set by Streamlit once per browser, sent by all its tabs
GONE = "This session has closed: its computation was dropped."


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


def owner_from_cookie(value: str | None) -> str | None:
    """A short id of the browser behind an XSRF cookie value (None if there is none).

    Streamlit masks the token afresh in every response, so the cookie's text differs between
    tabs; the token under the mask is the browser's."""
    if not value:
        return None
    if _decode_xsrf is None:
        return None
    try:
        token, _ = _decode_xsrf(value)
    except Exception:  # noqa: BLE001 - a malformed cookie: fall back to the session
        return None
    return None if not token else "browser:" + hashlib.sha256(token).hexdigest()[:16]


_OWNER: ContextVar = ContextVar("scoreviz_owner", default=None)


@contextmanager
def acting_for(owner: Hashable) -> Iterator[None]:
    """Work done in the block belongs to `owner` (taken in a script run with `current_owner`),
    e.g. a deferred download that Streamlit builds in a thread with no script run."""
    token = _OWNER.set(owner)
    try:
        yield
    finally:
        _OWNER.reset(token)


def current_owner() -> Hashable:
    """Who this script run's work belongs to: the browser (all its tabs), else the session (or
    whoever `acting_for` names)."""
    if (owner := _OWNER.get()) is not None:
        return owner
    try:
        cookie = st.context.cookies.get(XSRF_COOKIE)
    except Exception:  # noqa: BLE001 - no script run context (a worker thread)
        cookie = None
    return owner_from_cookie(cookie) or current_session_id()


# ----------------------------------------------------------------------------- heavy work
_HEAVY = Slots(HEAVY_SLOTS)


def busy_text() -> str | None:
    """A line for a menu whose work will wait (rendered before the click): how many heavy
    computations hold the server's slots and wait for one, or None while a slot is free."""
    holders, queue = _HEAVY.snapshot()
    if len(holders) < _HEAVY.capacity and not queue:
        return None
    return (
        f"The server is busy ({len(holders)} heavy computations running, {len(queue)} waiting): "
        "a PNG or GIF waits its turn, so its download starts later."
    )


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


_NOTICE_AT: ContextVar = ContextVar("scoreviz_wait_notice_at", default=None)


@contextmanager
def waits_shown_in(placeholder) -> Iterator[None]:
    """Heavy work started in the block shows its wait in `placeholder` (an st.empty()), e.g.
    one beside an Export menu, which stays on the page while the menu's popover may close."""
    token = _NOTICE_AT.set(placeholder)
    try:
        yield
    finally:
        _NOTICE_AT.reset(token)


class WaitNotice:
    """An st.info placeholder created on the first wait (or the one `waits_shown_in` gave),
    cleared when the wait ends."""

    def __init__(self) -> None:
        self.box = _NOTICE_AT.get()
        self.shown = False

    def show(self, text: str) -> None:
        if get_script_run_ctx() is None:
            return  # a deferred download's thread: no page to write on (`busy_text` told it)
        with _not_replayed():
            if self.box is None:
                self.box = st.empty()
            self.box.info(text, icon="⏳")
            self.shown = True

    def clear(self) -> None:
        if self.box is not None and self.shown:
            with _not_replayed():
                self.box.empty()
            self.shown = False


def heavy(fn=None, *, kind: str = "compute"):
    """Run fn in one of the server's `HEAVY_SLOTS` slots, waiting visibly for one if needed.

    Place it under `st.cache_data` (a hit returns at once). The slot is this student's
    (`current_owner`), of `kind` ("compute", "export"): a newer request of the same kind takes
    the place of one still waiting. Work for a session that is no longer connected is dropped:
    before it starts, while it waits (SlotWaitAbandoned), and at the next step of a sampler once
    it runs (`scoreviz.cancel.Cancelled`).
    """
    if fn is None:
        return functools.partial(heavy, kind=kind)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        sid = current_session_id()
        if not session_alive(sid):
            raise SlotWaitAbandoned(GONE)
        notice = WaitNotice()

        def on_wait(ahead: int) -> bool:
            notice.show(heavy_wait_text(ahead))
            return not session_alive(sid)

        try:
            ticket = _HEAVY.acquire(on_wait=on_wait, owner=current_owner(), kind=kind, replace=True)
        except SlotWaitAbandoned as exc:
            raise SlotWaitAbandoned(GONE if not session_alive(sid) else str(exc)) from None
        finally:
            notice.clear()
        try:
            with cancel.scope(lambda: not session_alive(sid), GONE):
                return fn(*args, **kwargs)
        finally:
            _HEAVY.release(ticket)

    return wrapper
