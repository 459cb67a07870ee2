"""The Likelihood page and the Sampling page's steps chart through AppTest: they render with
and without a model, their controls change what is computed, and bad inputs give a message."""

from __future__ import annotations

from apptest_utils import (
    assert_no_exception,
    chart_specs,
    inject_model,
    make_app,
    open_page,
    tiny_result,
)

from scoreviz.ui import keys

PAGE = "views/likelihood.py"


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def test_likelihood_page_without_a_model_shows_the_exact_density():
    at = open_page(make_app(), PAGE)
    assert_no_exception(at)
    specs = chart_specs(at)
    assert len(specs) == 1 and len(specs[0]["data"]) == 1  # the exact panel alone
    assert any("entropy H" in m.value for m in at.markdown)
    assert "32 RK4 steps" in _captions(at)
    at.select_slider(key="likelihood_steps").set_value(8).run()
    assert_no_exception(at)
    assert "8 RK4 steps" in _captions(at)


def test_likelihood_page_with_a_model_draws_three_panels():
    at = make_app()
    at.run()
    inject_model(at, tiny_result(), "tiny")
    open_page(at, PAGE)
    assert_no_exception(at)
    specs = chart_specs(at)
    assert len(specs[0]["data"]) == 3
    assert any("ODE of **tiny**" in m.value for m in at.markdown)
    at.select_slider(key="likelihood_grid").set_value(40).run()
    assert_no_exception(at)
    assert "40×40 grid points" in _captions(at)


def test_a_link_sets_the_page_and_bad_values_give_a_message():
    at = make_app()
    at.run()
    at.switch_page(PAGE)
    at.session_state[keys.LINKS_READ] = False  # as a fresh session opening the link
    at.query_params["ode_steps"] = "16"
    at.query_params["grid"] = "40"
    at.run()
    assert_no_exception(at)
    assert at.session_state["likelihood_steps"] == 16 and "16 RK4 steps" in _captions(at)
    assert dict(at.query_params)["grid"] == "40"

    bad = make_app()
    bad.run()
    bad.switch_page(PAGE)
    bad.session_state[keys.LINKS_READ] = False
    bad.query_params["ode_steps"] = "7"  # not one of the slider's stops
    bad.query_params["grid"] = "lots"
    bad.run()
    assert_no_exception(bad)
    assert bad.session_state["likelihood_steps"] == 32
    (note,) = [w.value for w in bad.warning if "link" in w.value]
    assert "steps”" in note and "“grid”" in note  # (an underscore is escaped)


def test_steps_chart_on_the_sampling_page_on_demand():
    at = open_page(make_app(), "views/sampling.py")
    n = len(chart_specs(at))
    at.toggle(key="sampler_steps_chart").set_value(True).run()
    assert_no_exception(at)
    specs = chart_specs(at)
    assert len(specs) == n + 1
    assert "quality vs number of steps" in specs[-1]["layout"]["title"]["text"]
    assert "discretisation error" in _captions(at)
