"""Build the next slider stop's shared figures in the background, so that the step onto it is
a cache hit.

Why: a t step the server has not seen spends ~60-110 ms of server time (the view and its
figure, `cache.field_figure`, `cache.forward_pair`, `cache.dae_figure`) before the chart can
go out; a stop already built goes out at once (benchmarks/bench.py --only redraw, "new t"
against "t seen before").
A lecturer steps through t one stop at a time, so after each step the next stop in the same
direction (both neighbours on a page's first run) is built while the browser draws this one;
on DAE, whose slider is a σ range, the next stop of the thumb that moved (`warm_range`).

Bounded so that it never competes with the students it serves: one worker thread (at most one
core), at most MAX_PENDING jobs queued (more are dropped, not delayed), each job once (a job
already queued or running is not queued again), only shared, session-free work (the functions
given fill `cache.shared_figure` caches, whose hits cost a hash lookup), and none at all while
the process is busy: when it used more than BUSY of the machine's cores over the last WINDOW
seconds, a job is dropped instead of queued or run. 64 students each picking random t values
(benchmarks/loadgen.py) drove slider p95 from 0.3 to 1.9 s with prefetching that ignored load.
In a lecture hall every student follows the lecturer's t, so the stops are built once for
everyone.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import streamlit as st

from scoreviz.stops import nearest_index
from scoreviz.ui import keys

THREAD = "scoreviz-prefetch"
MAX_PENDING = 4
BUSY = 0.5  # of os.cpu_count(): above this CPU use, nothing is prefetched
WINDOW = 1.0  # s over which the process's CPU use is measured
_LOG = logging.getLogger(__name__)
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD)
_LOCK = threading.Lock()
_PENDING: set = set()


class _QuietWorker(logging.Filter):
    """Streamlit warns "missing ScriptRunContext" whenever a cache is called outside a script
    thread; the worker calls only shared caches, which need none."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not threading.current_thread().name.startswith(THREAD)


logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
    _QuietWorker()
)


class CpuMeter:
    """This process's CPU use in cores, over the last `window` seconds of wall time.

    Samples are taken when `rate` is called (on slider moves), so an idle stretch counts as idle.
    The clocks are arguments (wall: monotonic seconds, cpu: this process's CPU seconds, all
    threads), so that a test can drive them."""

    def __init__(
        self,
        window: float = WINDOW,
        wall: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        self.window, self._wall, self._cpu = window, wall, cpu
        self._samples: deque = deque()  # (wall s, CPU s): the last window and one before it
        self._lock = threading.Lock()

    def rate(self) -> float:
        """Cores used on average since the newest sample at least `window` old (0.0 until there
        is one)."""
        wall, cpu = self._wall(), self._cpu()
        with self._lock:
            self._samples.append((wall, cpu))
            while len(self._samples) > 2 and wall - self._samples[1][0] >= self.window:
                self._samples.popleft()
            then, cpu0 = self._samples[0]
        return (cpu - cpu0) / (wall - then) if wall - then >= self.window else 0.0


_METER = CpuMeter()


def busy() -> bool:
    """Whether the process uses more than BUSY of the machine's cores (see the module doc)."""
    return _METER.rate() > BUSY * (os.cpu_count() or 1)


def warm(key: tuple, fn: Callable, *args) -> bool:
    """Call fn(*args) on the worker, unless a job with this `key` is queued or running, or
    MAX_PENDING jobs are, or the process is `busy` (then, or when it is busy by the time the
    job's turn comes, the job is dropped). Returns whether it was queued. Errors are logged,
    never raised."""
    if busy():
        return False
    with _LOCK:
        if key in _PENDING or len(_PENDING) >= MAX_PENDING:
            return False
        _PENDING.add(key)
    _POOL.submit(_run, key, fn, args)
    return True


def _run(key: tuple, fn: Callable, args: tuple) -> None:
    try:
        if not busy():
            fn(*args)
    except Exception:  # a prefetch that fails costs nothing: the step computes it again
        _LOG.debug("prefetch %s failed", key, exc_info=True)
    finally:
        with _LOCK:
            _PENDING.discard(key)


def idle(timeout: float = 10.0) -> bool:
    """Wait until no job is queued or running (tests, benchmarks); whether that happened."""
    deadline = time.monotonic() + timeout
    while True:
        with _LOCK:
            if not _PENDING:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def next_stops(options: Sequence[float], t: float, previous: float | None) -> list[float]:
    """The stops to build after a move to `t` (from `previous`, None on a first run): the next
    one in the direction of the move; both neighbours, the larger first, without one."""
    i = nearest_index(options, t)
    up, down = options[i + 1 : i + 2], options[i - 1 : i] if i else []
    if previous is None or previous == t:
        return [*up, *down]
    return list(up if t > previous else down)


def _remember(key: str, value):
    """The value the slider `key` had on this session's last run (None on the first), and
    `value` remembered in its place (call once per run of the page)."""
    memory = keys.prefetch(key)
    previous = st.session_state.get(memory)
    st.session_state[memory] = value
    return previous


def after_step(key: str, options: Sequence[float], t: float) -> list[float]:
    """`next_stops` for the slider whose session-state memory is `key` (its previous value is
    remembered there; call once per run of the page)."""
    return next_stops(options, t, _remember(key, t))


def range_stops(
    options: Sequence[float], now: tuple[float, float], previous: tuple[float, float] | None
) -> list[tuple[float, float]]:
    """The (lo, hi) positions of a range slider to build after a move to `now` from `previous`
    (None on a first run): the next stop of the thumb that moved, in the direction it moved;
    without a move (a first run, another widget), the low thumb's next stop up. Never lo > hi."""
    lo, hi = now
    if previous is None or tuple(previous) == (lo, hi):
        out = [(s, hi) for s in next_stops(options, lo, None)[:1]]
    elif previous[0] != lo:
        out = [(s, hi) for s in next_stops(options, lo, previous[0])]
    else:
        out = [(lo, s) for s in next_stops(options, hi, previous[1])]
    return [(a, b) for a, b in out if a <= b]


def warm_range(key: str, options: Sequence[float], now: tuple[float, float], job: Callable,
               problem, *args) -> None:  # fmt: skip
    """After a move of the range slider `key` to now = (lo, hi): job(problem, lo', hi', *args)
    on the worker for each of `range_stops`' positions (the slider's previous value is
    remembered in the session; call once per run of the page). `job` must only fill shared
    caches (see the module doc)."""
    for lo, hi in range_stops(options, tuple(now), _remember(key, tuple(now))):
        warm((job.__name__, problem.key, lo, hi, *args), job, problem, lo, hi, *args)


def warm_stops(key: str, options: Sequence[float], t: float, job: Callable, problem, *args):
    """After a move of the slider `key` to t: job(problem, stop, *args) on the worker for each
    of `after_step`'s stops. `job` must only fill shared caches (see the module doc)."""
    for stop in after_step(key, options, t):
        warm((job.__name__, problem.key, stop, *args), job, problem, stop, *args)
