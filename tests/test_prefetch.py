"""The next slider stop is built in the background (scoreviz.ui.prefetch): which stops, how the
worker is bounded, and that stepping onto a prefetched stop builds nothing."""

from __future__ import annotations

import threading
import types

import pytest

from scoreviz import get_process
from scoreviz.stops import sigma_stops
from scoreviz.stops import t_stops as t_options
from scoreviz.ui import cache, prefetch
from tests.apptest_utils import assert_no_exception, inject_model, make_app, open_page, tiny_result

OPTIONS = [0.001, 0.01, 0.02, 0.03]


@pytest.fixture(autouse=True)
def _drained():
    """Each test starts with an empty queue: an earlier module's AppTests may have left jobs
    queued, which a loaded machine takes a while to finish (a full queue refuses new ones)."""
    assert prefetch.idle(300)


def _builder() -> str:
    """Who builds a figure: the prefetch "worker", or the "page" (the script's thread)."""
    return "worker" if threading.current_thread().name.startswith(prefetch.THREAD) else "page"


def test_next_stops_follow_the_move_and_stay_on_the_slider():
    assert prefetch.next_stops(OPTIONS, 0.02, None) == [0.03, 0.01]  # first run: both, up first
    assert prefetch.next_stops(OPTIONS, 0.02, 0.01) == [0.03]  # moving up
    assert prefetch.next_stops(OPTIONS, 0.02, 0.03) == [0.01]  # moving down
    assert prefetch.next_stops(OPTIONS, 0.03, 0.02) == []  # the last stop: nothing above
    assert prefetch.next_stops(OPTIONS, 0.001, None) == [0.01]
    assert prefetch.next_stops(OPTIONS, 0.02, 0.02) == [0.03, 0.01]  # a rerun without a move


def test_range_stops_follow_the_thumb_that_moved():
    assert prefetch.range_stops(OPTIONS, (0.01, 0.03), None) == [(0.02, 0.03)]  # low thumb up
    assert prefetch.range_stops(OPTIONS, (0.01, 0.03), (0.001, 0.03)) == [(0.02, 0.03)]
    assert prefetch.range_stops(OPTIONS, (0.01, 0.03), (0.02, 0.03)) == [(0.001, 0.03)]
    assert prefetch.range_stops(OPTIONS, (0.01, 0.02), (0.01, 0.03)) == [(0.01, 0.01)]  # hi down
    assert prefetch.range_stops(OPTIONS, (0.01, 0.02), (0.01, 0.01)) == [(0.01, 0.03)]  # hi up
    assert prefetch.range_stops(OPTIONS, (0.02, 0.02), (0.01, 0.02)) == []  # lo would pass hi
    assert prefetch.range_stops(OPTIONS, (0.01, 0.03), (0.01, 0.03)) == [(0.02, 0.03)]  # no move


def test_the_worker_runs_each_job_once_and_drops_what_does_not_fit(monkeypatch):
    # the queue's rules, whatever else this process is doing (earlier tests' threads may keep it
    # busy, which stands the prefetch down: that has its own test below)
    monkeypatch.setattr(prefetch, "busy", lambda: False)
    gate, ran = threading.Event(), []

    def job(name):
        gate.wait(5)
        ran.append(name)

    try:
        assert prefetch.warm(("a",), job, "a")
        assert not prefetch.warm(("a",), job, "a")  # queued already: not again
        assert all(prefetch.warm((k,), job, k) for k in "bcd")  # MAX_PENDING = 4 in all
        assert not prefetch.warm(("e",), job, "e")  # full: dropped, not delayed
    finally:
        gate.set()
    assert prefetch.idle(30)
    assert sorted(ran) == ["a", "b", "c", "d"]
    assert prefetch.warm(("a",), job, "a")  # done: a later move may queue it again
    assert prefetch.idle(30)


def test_a_failing_job_is_dropped_quietly(monkeypatch):
    monkeypatch.setattr(prefetch, "busy", lambda: False)  # as above

    def boom():
        raise RuntimeError("no")

    assert prefetch.warm(("boom",), boom)
    assert prefetch.idle(30)


def test_nothing_is_prefetched_while_the_process_is_busy(monkeypatch):
    ran = []
    monkeypatch.setattr(prefetch, "busy", lambda: True)
    assert not prefetch.warm(("busy",), ran.append, 1)
    assert prefetch.idle(5) and ran == []


def test_cpu_rate_is_this_process_s_use_of_the_last_second():
    clock = {"wall": 100.0, "cpu": 5.0}
    meter = prefetch.CpuMeter(1.0, wall=lambda: clock["wall"], cpu=lambda: clock["cpu"])
    assert meter.rate() == 0.0  # no sample a window old yet

    def spend(seconds: float, cores: float) -> float:
        clock["wall"] += seconds
        clock["cpu"] += seconds * cores
        return meter.rate()

    assert spend(0.5, 1.0) == 0.0  # still no sample a window old
    assert spend(0.6, 1.0) == pytest.approx(1.0)  # one core, flat out, for 1.1 s
    assert spend(1.1, 0.0) == pytest.approx(0.0)  # idle for a window: idle
    assert spend(0.5, 2.0) == pytest.approx(1.0 / 1.6)  # since the sample 1.6 s ago
    assert spend(1.0, 2.0) == pytest.approx(2.0)  # two cores over the last window


def test_busy_compares_the_rate_with_the_machine_s_cores(monkeypatch):
    monkeypatch.setattr(prefetch.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(prefetch, "_METER", types.SimpleNamespace(rate=lambda: 1.1))
    assert prefetch.busy()  # 1.1 cores > half of 2
    monkeypatch.setattr(prefetch, "_METER", types.SimpleNamespace(rate=lambda: 0.9))
    assert not prefetch.busy()


@pytest.mark.slow
def test_stepping_onto_a_prefetched_t_builds_no_figure(monkeypatch):
    """Score field: after a move up, the next stop's figures are built in the background, and
    the step onto it only sends them (the figure builder is not called again)."""
    from scoreviz.figures import fields

    cache.clear_shared_figures()
    built = []
    real = fields.field_figure
    monkeypatch.setattr(
        fields, "field_figure", lambda *a, **k: built.append(_builder()) or real(*a, **k)
    )
    monkeypatch.setattr(prefetch, "busy", lambda: False)  # AppTest runs keep this process busy
    proc = get_process("vp_linear")
    stops = t_options(proc)
    at = make_app()
    inject_model(at, tiny_result(), "tiny")
    at.run()
    open_page(at, "views/score_field.py")
    slider = at.select_slider(key="field_t_vp_linear")
    slider.set_value(stops[20]).run()
    slider.set_value(stops[21]).run()  # a move up: stops[22] is built in the background
    assert prefetch.idle(30)
    before = len(built)
    at.select_slider(key="field_t_vp_linear").set_value(stops[22]).run()
    assert_no_exception(at)
    # a cache hit: nothing built by the step itself (the worker may already build the next)
    assert built[before:].count("page") == 0
    assert prefetch.idle(30)
    assert len(built) == before + 1  # and now stops[23], in the background


def test_stepping_the_dae_range_onto_a_prefetched_stop_builds_no_figure(monkeypatch):
    """DAE: after the low thumb moves up, the figure for its next stop is built in the
    background, and the step onto it only sends it."""
    from scoreviz.figures import dae

    cache.clear_shared_figures()
    built = []
    real = dae.dae_figure
    monkeypatch.setattr(
        dae, "dae_figure", lambda *a, **k: built.append(_builder()) or real(*a, **k)
    )
    monkeypatch.setattr(prefetch, "busy", lambda: False)  # AppTest runs keep this process busy
    at = make_app()
    inject_model(at, tiny_result(), "tiny")
    at.run()
    open_page(at, "views/dae.py")
    slider = at.select_slider(key="dae_range_vp_linear")
    options = list(sigma_stops(get_process("vp_linear")))
    lo, hi = slider.value
    i = options.index(lo)
    slider.set_value((options[i + 1], hi)).run()  # the low thumb up: options[i + 2] next
    assert prefetch.idle(30)
    before = len(built)
    at.select_slider(key="dae_range_vp_linear").set_value((options[i + 2], hi)).run()
    assert_no_exception(at)
    # a cache hit: nothing built by the step itself (the worker may already build the next)
    assert built[before:].count("page") == 0
    assert prefetch.idle(30)
    assert len(built) == before + 1  # and now options[i + 3], in the background
