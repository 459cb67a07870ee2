"""Shareable, reload-proof state (scoreviz.ui.links) and presentation mode (scoreviz.ui.present,
figures.style.for_projector): the URL reproduces the view, garbage in it gives a notice, a
reload gets the session's models back, the projector style really enlarges what it claims."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

from scoreviz.figures.style import PROJECTOR, for_projector
from scoreviz.processes import get_process
from scoreviz.stops import t_stops
from scoreviz.ui import keys, links, pages
from scoreviz.ui.models import find_model
from tests.apptest_utils import make_app, tiny_result

# one valid, non-default value per parameter of every page (and the shared ones)
VALUES = {
    "data": "two_moons",
    "process": "ve",
    "seed": "7",
    "present": "1",
    "t": "0.25",
    "scaled": "0",
    "arrows": "21",
    "overlay": "1",
    "sigmas": "0.1~1.5",
    "points": "200",
    "weightings": "one,sigma2",
    "bins": "32",
    "per_bin": "512",
    "sampler": "annealed_langevin",
    "steps": "120",
    "particles": "640",
    "word": "Hi there",
    "drawing": "1AvAB8AHKNso2AbQJ0iU",  # a line and a tap (sketch.encode_strokes)
}


@pytest.mark.parametrize("page", [p.file for p in pages.PAGES])
def test_url_round_trip_per_page(page):
    """parse(URL) then show(state) gives the URL back, for every parameter of every page."""
    names = {p.name for p in (*links.GLOBAL, *links.page_params(page))}
    given = {k: v for k, v in VALUES.items() if k in names}
    ss: dict = {}
    assert links.apply(given, page, ss) == []
    out = links.url_values(page, ss)
    assert set(out) == set(given)
    if "sigmas" in given:  # moved to the slider's stops: stable from then on
        again: dict = {}
        links.apply(out, page, again)
        assert again == ss
        out.pop("sigmas"), given.pop("sigmas")
    assert {k: float(v) if k == "t" else v for k, v in out.items()} == {
        k: float(v) if k == "t" else v for k, v in given.items()
    }


@pytest.mark.parametrize(
    "name,text",
    [
        ("data", "nope"),
        ("data", "upload"),
        ("process", "ve;drop"),
        ("seed", "-1"),
        ("seed", "1e3"),
        ("t", "nan"),
        ("t", "2"),
        ("steps", "0"),
        ("particles", "999999"),
        ("points", "30"),  # off the slider's step of 20
        ("sigmas", "1~0.1"),
        ("weightings", "one,evil"),
        ("per_bin", "100"),
        ("present", "maybe"),
        ("word", "naïve"),
        ("word", ""),
        ("drawing", "1AvAB8AHKNso2AbQJ0i!"),
    ],
)
def test_invalid_values_are_refused(name, text):
    page = "views/sampling.py" if name in ("steps", "particles") else "views/dae.py"
    page = {"t": "views/forward.py", "weightings": "views/loss.py", "per_bin": "views/loss.py"}.get(
        name, page
    )
    ss: dict = {}
    assert links.apply({name: text}, page, ss) == [name]
    assert ss == {}


def test_sampler_knobs_come_from_the_registry():
    from scoreviz.samplers import SAMPLERS

    names = {p.name for p in links.page_params("views/sampling.py")}
    for spec in SAMPLERS.values():
        assert {k.key.removeprefix("sampler_") for k in spec.knobs} <= names


def test_link_sets_the_sidebar_and_garbage_gives_a_notice():
    at = make_app()
    for k, v in {"data": "two_moons", "process": "ve", "seed": "7"}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    ss = at.session_state
    assert (ss["distribution"], ss["process"], ss["seed"]) == ("two_moons", "ve", 7)
    assert at.sidebar.selectbox(key="distribution").value == "two_moons"
    assert dict(at.query_params)["data"] == "two_moons"  # written back after the run

    bad = make_app()
    bad.query_params["data"] = "<script>alert(1)</script>"
    bad.query_params["seed"] = "-3"
    bad.run()
    assert not bad.exception
    assert bad.session_state["distribution"] == "eight_gaussians"
    (note,) = [w.value for w in bad.warning if "link" in w.value]
    assert "“data”" in note and "“seed”" in note and "<script>" not in note
    assert dict(bad.query_params)["data"] == "eight_gaussians"  # the URL is repaired


def test_link_reopens_the_sampling_settings():
    at = make_app()
    at.run()
    at.switch_page("views/sampling.py")
    at.session_state[keys.LINKS_READ] = False  # as a fresh session opening the link
    for k, v in {"sampler": "pf_ode_heun", "steps": "40", "particles": "300"}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    assert at.selectbox(key="sampler").value == "pf_ode_heun"
    assert at.slider(key="sampler_steps").value == 40
    assert at.slider(key="sampler_particles").value == 300
    q = dict(at.query_params)
    assert (q["sampler"], q["steps"], q["particles"]) == ("pf_ode_heun", "40", "300")


def test_reload_gets_the_models_back():
    """A new session whose URL carries the model ids (what a reload is) finds them in the
    server's store, activates the right one, and shows them in the sidebar."""
    from scoreviz.ui.models import shared_models

    a = tiny_result(steps=260)
    b = tiny_result(steps=270)
    for r in (a, b):
        shared_models().put(r.model_id, r)
    at = make_app()
    at.query_params["model"] = b.model_id
    at.query_params["models"] = a.model_id
    at.run()
    assert not at.exception
    models = at.session_state["models"]
    assert [m.model_id for m in models.values()] == [a.model_id, b.model_id]
    assert models[at.session_state["active_model"]].model_id == b.model_id
    q = dict(at.query_params)
    assert (q["model"], q["models"]) == (b.model_id, a.model_id)
    assert any("restored from its address" in t.value for t in at.toast)

    gone = make_app()
    gone.query_params["model"] = "0123456789ab"  # not on this server
    gone.run()
    assert not gone.exception and not gone.session_state["models"]
    assert any("“model”" in w.value for w in gone.warning)


def test_a_reloaded_model_keeps_the_name_it_was_trained_under():
    """Issue 20: names changed after F5 (the Train page named a model by the data's label, a
    scene "… · scene", the DAE page its own way; a reload by the registry key). Every path now
    names it `training.model_name`, the name the Train page gives a built-in's model."""
    from scoreviz.distributions import distribution_labels
    from scoreviz.training import model_name
    from scoreviz.ui.models import shared_models

    r = tiny_result(steps=280)
    shared_models().put(r.model_id, r)
    at = make_app()
    at.query_params["model"] = r.model_id
    at.run()
    assert not at.exception
    (name,) = at.session_state["models"]
    config = r.config
    assert name == model_name(config)
    assert name == config.display_name(distribution_labels()[config.distribution])  # Train page
    default = type(config)(distribution="two_moons", process="ve", seed=3)
    assert model_name(default) == "default · Two moons · ve · seed 3"  # the default buttons'


def test_for_projector_enlarges_and_is_pure():
    fig = go.Figure(
        [go.Scatter(x=[0, 1], y=[0, 1], mode="markers", marker=dict(size=4))],
        frames=[go.Frame(data=[go.Scatter(x=[1], y=[1], marker=dict(size=3), line=dict(width=1))])],
    )
    fig.update_layout(title="t", font=dict(size=12))
    before = json.loads(fig.to_json())
    out = for_projector(fig, height=700)
    assert json.loads(fig.to_json()) == before  # the argument is unchanged
    assert out.layout.font.size >= PROJECTOR["font"]
    assert out.layout.title.font.size >= PROJECTOR["title"]
    assert out.data[0].marker.size == pytest.approx(4 * PROJECTOR["marker_scale"])
    assert out.frames[0].data[0].marker.size >= PROJECTOR["min_marker"]
    assert out.frames[0].data[0].line.width >= PROJECTOR["min_line"]
    assert out.layout.height == 700


def test_reload_finds_a_model_another_replica_stored(tmp_path, monkeypatch):
    """With an on-disk model store (replicas behind a balancer), a reload on another replica
    gets the model from the disk even though this process never trained it."""
    from scoreviz import model_store

    monkeypatch.setenv(model_store.ENV_VAR, str(tmp_path))
    result = tiny_result(steps=280)
    model_store.from_env().put(result)
    found = find_model(result.model_id)
    assert found is not None and found.model_id == result.model_id
    assert find_model("../../etc/passwd") is None
    assert find_model("zz") is None  # alphanumeric, but no model id


@pytest.mark.parametrize("page", ["views/forward.py", "views/score_field.py", "views/loss.py"])
def test_presentation_mode_from_the_link(page):
    """?present=1: the toggle is on, every chart has projector fonts, the main one autosizes to
    the screen-tall container (no fixed height) and the prose is hidden by the page's CSS."""
    from tests.apptest_utils import chart_specs, open_page

    at = make_app()
    at.query_params["present"] = "1"
    at.run()
    open_page(at, page)
    assert not at.exception
    assert at.sidebar.toggle(key="present").value is True
    specs = chart_specs(at)
    assert specs, "the page draws figures"
    assert min(s["layout"].get("font", {}).get("size", 0) for s in specs) >= PROJECTOR["font"]
    assert any(s["layout"].get("height") is None for s in specs)  # the main figure autosizes
    css = "".join(h.proto.body for h in at.get("html"))
    assert "stCaptionContainer" in css and "calc(100vh" in css


def test_sidebar_model_names_are_short_and_the_help_has_the_full_one():
    from scoreviz.ui.sidebar import sidebar_name
    from tests.apptest_utils import inject_model

    full = "default · Eight Gaussians (ring) · vp_linear · seed 0"
    assert sidebar_name(full) == "default · Eight Gaussians · VP"
    assert (
        sidebar_name("score (eps) · two_moons · ve · N=20 · 3fa2")
        == "score · two_moons · VE · N=20"
    )
    assert len(sidebar_name("x" * 80)) == 36
    at = make_app()
    inject_model(at, tiny_result(), full)
    at.run()
    box = at.sidebar.selectbox(key="active_model")
    assert box.options == ["default · Eight Gaussians · VP"]
    assert full in box.help


@pytest.mark.parametrize("name", ["vp_linear", "vp_cosine", "ve", "sub_vp"])
def test_t_slider_labels_give_each_stops_sigma(name):
    """The t slider's labels, computed once per process in one call, say each stop's sigma_t."""
    from scoreviz.forward import schedule_at
    from scoreviz.processes import get_process
    from scoreviz.stops import t_labels
    from scoreviz.stops import t_stops as t_options

    process = get_process(name)
    labels = t_labels(process)
    assert list(labels) == t_options(process)
    for t, text in labels.items():
        assert text == f"t = {t:.3g}  (σ = {schedule_at(process, t)['sigma']:.3g})"


def test_a_page_left_and_opened_again_keeps_its_settings_and_its_link():
    """Streamlit forgets a widget's value once a run ends without drawing it: Sampling came back
    at the default sampler and steps after a visit to another page, and its link with them."""
    at = make_app()
    at.run()
    at.switch_page("views/sampling.py")
    at.session_state[keys.LINKS_READ] = False  # a shared link, opened
    at.query_params["sampler"] = "pf_ode_heun"
    at.run()
    at.slider(key="sampler_steps").set_value(40).run()  # then a slider moved by hand
    at.switch_page("views/forward.py").run()
    t = t_stops(get_process("vp_linear"))[3]
    at.select_slider(key="forward_t_vp_linear").set_value(t).run()
    at.switch_page("views/sampling.py").run()
    assert not at.exception
    assert at.selectbox(key="sampler").value == "pf_ode_heun"
    assert at.slider(key="sampler_steps").value == 40
    q = dict(at.query_params)
    assert (q["sampler"], q["steps"]) == ("pf_ode_heun", "40")
    at.switch_page("views/forward.py").run()
    assert at.select_slider(key="forward_t_vp_linear").value == t
