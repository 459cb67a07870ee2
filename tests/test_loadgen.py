"""benchmarks/loadgen.py: the protocol client reads ForwardMsgs as the browser does, sends the
BackMsgs the browser sends, refuses non-loopback hosts, and its statistics are right. One live
session against `streamlit run app.py` checks the whole lecture script end to end (no timings
are asserted: they live in the benchmark's output)."""

import asyncio
import os
import sys
from pathlib import Path

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import loadgen  # noqa: E402


def _slider_msg(label: str, fragment_id: str, options: list[str]) -> ForwardMsg:
    msg = ForwardMsg()
    msg.delta.fragment_id = fragment_id
    slider = msg.delta.new_element.slider
    slider.id, slider.label = f"$$ID-{label}", label
    slider.options.extend(options)
    return msg


class _FakeSocket:
    """Records what is sent; the test pushes the server's answer into the session by hand."""

    def __init__(self, session: loadgen.StreamlitSession, answer: ForwardMsg) -> None:
        self.sent: list[BackMsg] = []
        self.session, self.answer = session, answer

    async def send(self, data: bytes) -> None:
        back = BackMsg()
        back.ParseFromString(data)
        self.sent.append(back)
        self.session._handle(self.answer)


def test_refuses_hosts_other_than_loopback():
    with pytest.raises(ValueError, match="loopback"):
        loadgen.StreamlitSession("http://example.org:8501")
    loadgen.StreamlitSession("http://127.0.0.1:8501")  # fine


def test_reads_pages_widgets_alerts_and_session_id():
    s = loadgen.StreamlitSession("http://127.0.0.1:1")
    new = ForwardMsg()
    new.new_session.initialize.session_id = "abc"
    page = new.new_session.app_pages.add()
    page.page_script_hash, page.url_pathname = "h-score", "score_field"
    s._handle(new)
    s._handle(_slider_msg(loadgen.T_SLIDER, "frag1", ["t = 0.1", "t = 0.2"]))
    alert = ForwardMsg()
    alert.delta.new_element.alert.body = "boom"
    alert.delta.new_element.alert.format = 1  # ERROR
    s._handle(alert)
    assert s.session_id == "abc"
    assert s.pages == {"score_field": "h-score"}
    w = s.widgets[loadgen.T_SLIDER]
    assert (w.kind, w.fragment_id, w.options) == ("slider", "frag1", ["t = 0.1", "t = 0.2"])
    assert s.alerts == ["boom"] and s.errors_shown == ["boom"]


def test_select_sends_a_fragment_rerun_with_the_formatted_option():
    async def go():
        s = loadgen.StreamlitSession("http://127.0.0.1:1")
        s.pages = {"score_field": "h-score"}
        s.page = "h-score"
        s._handle(_slider_msg(loadgen.T_SLIDER, "frag1", ["t = 0.1", "t = 0.2"]))
        done = ForwardMsg()
        done.script_finished = ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
        s._ws = _FakeSocket(s, done)
        it = await s.select(loadgen.T_SLIDER, "t = 0.2")
        await s.select(loadgen.T_SLIDER, "t = 0.1")
        return s, it

    s, it = asyncio.run(go())
    first, second = (b.rerun_script for b in s._ws.sent)
    assert first.page_script_hash == "h-score" and first.fragment_id == "frag1"
    [state] = first.widget_states.widgets
    assert state.id == f"$$ID-{loadgen.T_SLIDER}"
    assert list(state.string_array_value.data) == ["t = 0.2"]
    [state] = second.widget_states.widgets  # the same widget, its new value (not two states)
    assert list(state.string_array_value.data) == ["t = 0.1"]
    assert it.name == "slider" and it.seconds >= 0


def test_a_run_that_ends_early_for_a_rerun_is_not_the_answer():
    async def go():
        s = loadgen.StreamlitSession("http://127.0.0.1:1", timeout=0.5)
        early = ForwardMsg()
        early.script_finished = ForwardMsg.FINISHED_EARLY_FOR_RERUN
        s._ws = _FakeSocket(s, early)
        await s.rerun("home")

    with pytest.raises(loadgen.ProtocolError, match="home"):
        asyncio.run(go())


def test_unknown_page_and_widget_are_named_errors():
    s = loadgen.StreamlitSession("http://127.0.0.1:1")
    s.pages = {"home": "h"}
    with pytest.raises(loadgen.ProtocolError, match="no page 'nope'"):
        asyncio.run(s.open_page("nope"))
    with pytest.raises(loadgen.ProtocolError, match="no widget"):
        s.widget("Steps")


def test_percentile_matches_numpy():
    np = pytest.importorskip("numpy")
    xs = [0.3, 0.1, 2.0, 0.25, 0.7, 0.05, 1.1]
    for q in (0, 50, 95, 100):
        assert loadgen.percentile(xs, q) == pytest.approx(np.percentile(xs, q))


def test_summarise_groups_by_interaction():
    a = loadgen.StreamlitSession("http://127.0.0.1:1")
    a.interactions = [loadgen.Interaction("slider", s, 1_000_000) for s in (0.1, 0.2, 0.3)]
    a.received = 3_000_000
    b = loadgen.StreamlitSession("http://127.0.0.1:1")
    b.interactions = [loadgen.Interaction("home", 1.0, 0)]
    b.received = 1_000_000
    out = loadgen.summarise(loadgen.RunResult(2, [a, b], [], 1.0, (0.0, 0.0, 0.0), 3.0))
    assert out["kinds"]["slider"]["count"] == 3
    assert out["kinds"]["slider"]["p50"] == pytest.approx(0.2)
    assert out["kinds"]["slider"]["max"] == pytest.approx(0.3)
    assert out["kinds"]["slider"]["mb_mean"] == pytest.approx(1.0)
    assert out["mb_per_session"] == pytest.approx(2.0)
    assert out["server_cpu_per_session"] == pytest.approx(1.5)
    assert "| 2 | slider | 3 |" in loadgen.table([out])
    assert out["kinds"]["slider"]["cpu_p50"] is None  # no server pid: no CPU figure


@pytest.mark.slow
def test_one_live_lecture_session_runs_every_page_without_errors():
    """Home, Score field, three t moves, Sampling (exact score only: no model trained)."""
    with loadgen.serve() as url:
        res = asyncio.run(
            loadgen.run_sessions(url, 1, loadgen.Script(moves=3, think=0.0), 0.0, 180.0)
        )
    [s] = res.sessions
    assert res.errors == [] and s.exceptions == [] and s.errors_shown == []
    names = [it.name for it in s.interactions]
    assert names == ["home", "page:score_field", "slider", "slider", "slider", "page:sampling"]
    sampling = s.interactions[-1]
    assert sampling.bytes > 100_000  # the animation's figure JSON came back
    assert all(it.bytes > 10_000 for it in s.interactions if it.name == "slider")  # redrawn
    assert res.server_cpu is not None and res.server_cpu > 0  # serve() knows its server's pid
    assert all(it.server_cpu is not None and it.server_cpu >= 0 for it in s.interactions)


def test_server_cpu_time_is_read_from_proc():
    before = loadgen.cpu_seconds(os.getpid())
    sum(i * i for i in range(3_000_000))  # burn some CPU in this process
    after = loadgen.cpu_seconds(os.getpid())
    assert before is not None and after > before
    assert loadgen.cpu_seconds(None) is None
    assert loadgen.cpu_seconds(2**22 + 12345) is None  # beyond pid_max: no such process


def test_training_that_fails_on_the_server_is_reported_not_waited_for():
    async def go():
        s = loadgen.StreamlitSession("http://127.0.0.1:1", timeout=30)
        s.widgets[loadgen.TRAIN_BUTTON] = loadgen.Widget("$$ID-train", "button", "", [], [])
        answer = ForwardMsg()
        answer.delta.new_element.alert.body = "Training hit an unexpected problem (ValueError)."
        answer.delta.new_element.alert.format = 1  # ERROR
        done = ForwardMsg()
        done.script_finished = ForwardMsg.FINISHED_SUCCESSFULLY

        class Socket(_FakeSocket):
            async def send(self, data: bytes) -> None:
                await super().send(data)
                self.session._handle(done)

        s._ws = Socket(s, answer)
        await s.train_default(poll=0.01)

    with pytest.raises(loadgen.ProtocolError, match="unexpected problem"):
        asyncio.run(go())
