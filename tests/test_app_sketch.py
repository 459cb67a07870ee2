"""Drawn and typed data in the app (AppTest): the Train page's text box, its messages, and a link
that brings a word and the model trained on it back, on this server and from the on-disk store
of another replica. (The canvas itself is driven in Chromium: tests/test_browser_sketch.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from apptest_utils import assert_no_exception, chart_specs, make_app, open_page

from scoreviz import model_store, sketch
from scoreviz.identity import content_digest
from scoreviz.models import ModelConfig
from scoreviz.training import TrainConfig, model_name, train
from scoreviz.ui.models import find_model, shared_models, sketch_data

SUBMIT = "FormSubmitter:word_form-Use this word as the data"


def _type(at, text: str):
    at.text_input(key="word_text").set_value(text)
    return at.button(key=SUBMIT).click().run()


def _tiny_model(word: str, steps: int = 60):
    """A model trained on the typed word's data (a few steps: what is tested is where it goes)."""
    data = sketch_data("typed", word)
    config = TrainConfig(
        distribution=data.sketch.key, model=ModelConfig(width=32, depth=2), steps=steps
    )
    return train(config, dist=data.dist), data


def test_a_typed_word_becomes_the_data_with_its_preview():
    at = open_page(make_app(), "views/train.py")
    _type(at, "Hi!")
    at.run()  # the sidebar applies the parked choice
    assert_no_exception(at)
    ss = at.session_state
    assert ss["word"] == "Hi!" and ss["distribution"] == "typed"
    box = at.selectbox(key="distribution")
    assert box.value == "typed" and "Typed: Hi! (1,000 points)" in box.options
    q = dict(at.query_params)
    assert q["data"] == "typed" and q["word"] == "Hi!"
    titles = [str(s["layout"].get("title")) for s in chart_specs(at)]
    preview = [t for t in titles if "Typed" in t and "points over the exact" in t]
    assert preview, "the typed data's preview chart"
    assert any(b.label.startswith("Train for this data") for b in at.button)


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "Type a word"), ("abcdefghijklmnop", "16 characters long"), ("naïve", "cannot draw")],
)
def test_a_refused_word_says_why_and_keeps_the_data(text, message):
    at = open_page(make_app(), "views/train.py")
    _type(at, text)
    assert_no_exception(at)
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert at.session_state["distribution"] == "eight_gaussians"
    assert at.session_state["word"] is None


def test_a_link_brings_the_word_and_its_model_back():
    """A reload (a new session with the address) rebuilds the word's data and finds the model
    trained on it in the server's store: the Sampling page compares it with the exact score."""
    result, data = _tiny_model("Hi")
    shared_models().put(result.model_id, result)
    at = make_app()
    at.query_params.update(data="typed", word="Hi", model=result.model_id)
    at.run()
    at.switch_page("views/sampling.py").run()
    assert_no_exception(at)
    ss = at.session_state
    assert ss["distribution"] == "typed" and ss["word"] == "Hi"
    (name,) = ss["models"]
    assert name == model_name(result.config) and ss["active_model"] == name
    assert ss["models"][name].config.distribution == data.sketch.key
    shown = [c.value for c in at.caption if c.value.startswith("Model “")]
    assert shown and result.model_id[:4] in shown[0], "the Sampling page compares the model"
    assert dict(at.query_params)["model"] == result.model_id


def test_a_drawn_datas_model_round_trips_the_on_disk_store(tmp_path, monkeypatch):
    """Another replica finds a model of drawn data in the shared store, with the same weights
    (content digest) and the data key that names the drawing's points."""
    code = sketch.encode_strokes([np.array([[20.0, 20], [300, 40], [150, 300]])], 340, 340)
    data = sketch_data("drawn", code)
    config = TrainConfig(
        distribution=data.sketch.key, model=ModelConfig(width=32, depth=2), steps=40
    )
    result = train(config, dist=data.dist)
    monkeypatch.setenv(model_store.ENV_VAR, str(tmp_path))
    model_store.from_env().put(result)
    shared_models().discard(result.model_id)
    found = find_model(result.model_id)
    assert found is not None and found.config.distribution == data.sketch.key
    assert content_digest(found) == content_digest(result)
