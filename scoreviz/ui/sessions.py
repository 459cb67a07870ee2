"""Closed sessions are shut down promptly: their session state and uploads are freed.

When a tab closes, Streamlit 1.67 keeps the disconnected session (its st.session_state: the
upload, up to MAX_MODELS trained models, the training job) in a TTL cache so that a network blip
can reconnect to it. That cache only drops an expired entry when something else writes to it,
and it drops it *without* shutting the session down, so the uploaded file stays in the upload
manager. Measured before this module: disconnected sessions lived 20 min, their uploads >= 140 s.

`SessionReaper` (one per server, a daemon thread) remembers every session that ran a script.
Every `SWEEP_SECONDS` it asks the runtime which of them are still connected; a session gone for
`grace` seconds (the `server.disconnectedSessionTTL` option, 30 s in .streamlit/config.toml: a
reconnect within it keeps everything) is closed through `Runtime.close_session` on the event
loop, which shuts it down (uploaded files removed, session state dropped). Then the garbage
collector runs and glibc is asked to hand freed heap pages back to the system (`malloc_trim`),
which is what brings the server's RSS back down (benchmarks/sessions_rss.py). That only works
with few malloc arenas: with glibc's default (8 per core, one per training thread as they come)
the freed memory stays fragmented across them and the RSS stayed +65 % above baseline after
4 sessions closed (+19 % with MALLOC_ARENA_MAX=2, which glibc reads at start-up only: README's
run command sets it, and the reaper warns when it is missing).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

import streamlit as st
from streamlit import runtime

from scoreviz.ui.limits import current_session_id

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0
DEFAULT_GRACE = 30.0  # used when the TTL option cannot be read


class SessionReaper:
    """Close sessions that have been disconnected for `grace` seconds (thread-safe).

    `is_active(sid)` says whether a session is connected; `close(sid)` shuts one down;
    `release()` runs after a sweep that closed something (free memory). All three are
    injected, so the policy is tested without a server.
    """

    def __init__(
        self,
        grace: float,
        is_active: Callable[[str], bool],
        close: Callable[[str], None],
        release: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grace = grace
        self._is_active, self._close, self._release, self._clock = is_active, close, release, clock
        self._gone_since: dict[str, float | None] = {}  # sid -> when first seen gone (None: here)
        self._lock = threading.Lock()

    def track(self, session_id: str | None) -> None:
        """Remember a session (called on every script run; cheap)."""
        if session_id is not None:
            with self._lock:
                self._gone_since[session_id] = None

    def tracked(self) -> int:
        with self._lock:
            return len(self._gone_since)

    def sweep(self) -> list[str]:
        """Close every tracked session gone for at least `grace` seconds; return their ids."""
        now, due = self._clock(), []
        with self._lock:
            for sid, since in list(self._gone_since.items()):
                if self._is_active(sid):
                    self._gone_since[sid] = None  # connected (again): the clock restarts
                elif since is None:
                    self._gone_since[sid] = now
                elif now - since >= self.grace:
                    due.append(sid)
                    del self._gone_since[sid]
        for sid in due:
            try:
                self._close(sid)
            except Exception:  # noqa: BLE001 - the reaper must survive one bad close
                log.exception("Could not close session %s", sid)
        if due:
            self._release()
        return due

    def run_forever(self, every: float = SWEEP_SECONDS) -> None:
        while True:
            time.sleep(every)
            self.sweep()


def release_memory() -> None:
    """Collect garbage, then return freed heap pages to the OS (glibc; a no-op elsewhere).

    Without the trim, glibc keeps the freed arenas of the closed sessions' threads mapped, and
    the RSS stays near its peak (benchmarks/sessions_rss.py measures both).
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


def _runtime_close(session_id: str) -> None:
    """Shut a disconnected session down on the runtime's event loop (waits up to 10 s)."""
    rt = runtime.Runtime.instance()

    async def close() -> None:
        if not rt.is_active_session(session_id):  # it may have reconnected meanwhile
            rt.close_session(session_id)  # "must be called on the eventloop thread"

    # No public thread-safe close in Streamlit 1.67; the event loop is reached as its own
    # logout path does (Runtime._close_inactive_session_on_event_loop).
    loop = rt._get_async_objs().eventloop
    asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)


def _grace() -> float:
    try:
        return float(st.get_option("server.disconnectedSessionTTL"))
    except Exception:  # noqa: BLE001 - an unknown option in another Streamlit version
        return DEFAULT_GRACE


@st.cache_resource(max_entries=1)
def _reaper() -> SessionReaper | None:
    """The server's reaper, its thread started (None without a server: AppTest, a notebook)."""
    if not runtime.exists():
        return None
    if sys.platform.startswith("linux") and "MALLOC_ARENA_MAX" not in os.environ:
        log.warning(
            "MALLOC_ARENA_MAX is not set: closed sessions' memory may stay with the server "
            "(glibc's per-thread arenas). Start it as README says: MALLOC_ARENA_MAX=2 ..."
        )
    rt = runtime.Runtime.instance()
    reaper = SessionReaper(_grace(), rt.is_active_session, _runtime_close, release_memory)
    threading.Thread(target=reaper.run_forever, name="scoreviz-reaper", daemon=True).start()
    return reaper


def track_session() -> None:
    """app.py calls this on every run: the session is closed once it has been gone a while."""
    reaper = _reaper()
    if reaper is not None:
        reaper.track(current_session_id())
