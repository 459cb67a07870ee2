"""The flow-matching settings in the app (AppTest): the Train form trains a velocity model with
OT pairing on the linear path, and the Score field page's velocity view draws it beside the exact
velocity and says which field the exact one is."""

from __future__ import annotations

import pytest

from tests.apptest_utils import assert_no_exception, chart_specs, make_app, open_page, run_until

pytestmark = pytest.mark.slow


def _collected(at) -> bool:
    job = at.session_state["training_job"] if "training_job" in at.session_state else None
    return job is not None and job.collected


def test_train_form_velocity_and_ot_then_the_velocity_view_and_sampling():
    at = make_app().run()
    at.selectbox(key="process").set_value("linear").run()
    open_page(at, "views/train.py")
    at.number_input(key="tf_steps").set_value(50)
    at.select_slider(key="tf_width").set_value(32)
    at.selectbox(key="tf_param").set_value("v")
    at.selectbox(key="tf_coupling").set_value("ot")
    at.button(key="train_submit").click().run()
    job = at.session_state["training_job"]
    assert job.config.process == "linear" and job.config.coupling == "ot"
    assert job.config.model.parameterization == "v" and job.config.weighting == "v"
    run_until(at, _collected, timeout=300)
    assert_no_exception(at)
    open_page(at, "views/score_field.py")
    at.toggle(key="field_velocity").set_value(True).run()
    assert_no_exception(at)
    (spec,) = chart_specs(at)
    names = {s["name"] for s in spec["layout"]["shapes"]}
    assert names == {"learned v", "exact v"}
    assert any("Mean error" in m.value for m in at.markdown)
    assert any("independent" in i.value for i in at.info)  # which field the exact one is
    open_page(at, "views/sampling.py")
    assert_no_exception(at)
    assert any("Path length ÷ chord" in c.value for c in at.caption)
    assert any("OT pairing" in i.value for i in at.info)
