"""AppTest of the Guidance page: its controls, no exception, the message and button when the
active model is unconditional, both panels with a conditional model, and uploads (one class)."""

import functools

import pytest

from scoreviz import training
from scoreviz.models import ModelConfig
from tests.apptest_utils import (
    assert_no_exception,
    chart_specs,
    inject_model,
    make_app,
    open_page,
    tiny_result,
)

PAGE = "views/guidance.py"


@functools.cache
def tiny_conditional():
    """A quickly trained conditional model of the eight Gaussians (a few hundred steps)."""
    cfg = training.conditional(
        training.TrainConfig(model=ModelConfig(width=64, depth=2), steps=300), 8
    )
    return training.train(cfg)


def _app(model=None, name="tiny"):
    at = make_app()
    at.run()
    if model is not None:
        inject_model(at, model, name)
    return open_page(at, PAGE)


def _names(spec) -> set[str]:
    return {im.get("name") for im in spec["layout"].get("images", [])}


def test_unconditional_model_gets_a_message_and_a_train_button():
    at = _app(tiny_result())
    assert_no_exception(at)
    assert any("not class-conditional" in i.value for i in at.info)
    assert any(b.label == "Train the conditional model" for b in at.button)
    specs = chart_specs(at)
    assert len(specs) == 3  # samples, mode weights, the curve over w
    names = " ".join(n for n in _names(specs[0]) if n)
    assert "exact guided" in names and "learned guided" not in names


def test_conditional_model_draws_learned_beside_exact_and_the_controls_work():
    at = _app(tiny_conditional(), "cond")
    assert_no_exception(at)
    assert not any("not class-conditional" in i.value for i in at.info)
    names = " ".join(n for n in _names(chart_specs(at)[0]) if n)
    assert all(k in names for k in ("exact guided", "learned guided", "tilted density"))
    assert at.selectbox(key="guide_class").options[3] == "mode at 135°"
    at.selectbox(key="guide_class").set_value("3").run()
    at.select_slider(key="guide_w").set_value(8.0).run()
    at.selectbox(key="guide_sampler").set_value("ddim").run()
    assert_no_exception(at)
    spec = chart_specs(at)[0]
    assert "learned guided (DDIM)" in _names(spec)
    assert at.select_slider(key="guide_w").value == 8.0


def test_a_link_to_a_class_the_data_lacks_falls_back_to_the_first():
    at = make_app()
    at.query_params["class"] = "7"
    at.query_params["data"] = "rings"
    at.run()
    open_page(at, PAGE)
    assert_no_exception(at)
    assert at.selectbox(key="guide_class").value == "0"


@pytest.mark.parametrize("w", [0.0, 1.0])
def test_every_w_end_draws(w):
    at = _app()
    at.select_slider(key="guide_w").set_value(w).run()
    assert_no_exception(at)
    assert any("there is none" in i.value for i in at.info)
