"""Hostile input through the app (issue 13): each attack, with a file the test makes itself,
shows a short message and leaves the session as it was; user text never becomes markup.

The core-level checks (and the import bomb's time and memory) are in test_model_io.py,
test_text.py; the real-browser check of the same payloads is in test_browser_hostile.py.
"""

from __future__ import annotations

import html
import json

import pytest

from scoreviz import model_io
from scoreviz.text import code_span, readable
from tests.apptest_utils import (
    assert_no_exception,
    chart_specs,
    inject_model,
    make_app,
    open_page,
    tiny_result,
)
from tests.test_model_io import craft

PAYLOAD = '<a href="http://example.com/x">a</a><br>![t](http://example.com/t.png)`b`:red[c]'
RAW = ("<a", "<br", "](http", "`b`", ":red[")  # any of these in a markdown body is live markup
CSV = "".join(f"{i * 0.1},{(i * 37 % 11) * 0.3}\n" for i in range(40)).encode()


def _bodies(at) -> list[str]:
    """Every markdown body on the page (markdown, captions, alerts)."""
    kinds = (at.markdown, at.caption, at.error, at.warning, at.success, at.info)
    return [e.value for k in kinds for e in k]


def _assert_inert(at) -> None:
    bodies = _bodies(at)
    for body in bodies:
        assert not any(r in body for r in RAW), body
    for spec in chart_specs(at):
        text = json.dumps(spec.get("layout", {}).get("title", "")) + json.dumps(
            [t.get("name", "") for t in spec.get("data", [])]
        )
        assert "<a" not in text and "<br" not in text, text


def _upload(at, name: str, data: bytes):
    at.file_uploader(key="upload_file").set_value((name, data, "text/csv"))
    return at.run()


def test_markup_in_a_file_name_and_a_model_name_is_shown_as_text():
    at = make_app().run()
    open_page(at, "views/train.py")
    _upload(at, PAYLOAD + ".csv", CSV)
    assert_no_exception(at)
    loaded = [b for b in _bodies(at) if b.startswith("Loaded")]
    assert loaded and "&#60;a href" in loaded[0]  # the escaped form
    assert PAYLOAD in readable(loaded[0])  # which reads as what was typed
    inject_model(at, tiny_result(), name=PAYLOAD)
    at.run()
    assert_no_exception(at)
    titles = [s["layout"]["title"]["text"] for s in chart_specs(at) if "title" in s["layout"]]
    assert any("Training loss of" in t for t in titles)
    _assert_inert(at)
    for page in ("views/dae.py", "views/loss.py", "views/home.py", "views/forward.py"):
        open_page(at, page)
        assert_no_exception(at)
        _assert_inert(at)


def test_a_model_whose_distribution_is_not_in_this_session_is_named_as_text():
    """A foreign upload hash (the only non-built-in a model file may carry) in the mismatch
    warning and the model caption: no code span to escape from."""
    from scoreviz.training import TrainConfig

    result = tiny_result()
    cfg = TrainConfig(**{**result.config.__dict__, "distribution": "upload:0123456789abcdef"})
    foreign = type(result)(**{**result.__dict__, "config": cfg, "model_id": cfg.model_id})
    at = make_app().run()
    inject_model(at, foreign, name=PAYLOAD)
    open_page(at, "views/loss.py")
    assert_no_exception(at)
    warnings = [w.value for w in at.warning]
    assert any("upload:0123456789abcdef" in readable(w) and "&#60;a" in w for w in warnings), (
        warnings
    )
    _assert_inert(at)


@pytest.mark.parametrize(
    "data, words",
    [
        (b"x,y\n1," + b"9" * 200_000 + b"\n2,3\n", "200,002 characters long"),  # _csv.Error
        (b"\x00\x01\x02binary" * 100, "binary"),
    ],
)
def test_a_rejected_upload_says_why_and_keeps_the_previous_dataset(data, words):
    at = make_app().run()
    open_page(at, "views/train.py")
    _upload(at, "good.csv", CSV)
    before = at.session_state["upload"]
    assert before is not None
    _upload(at, "bad.csv", data)
    assert_no_exception(at)
    errors = [e.value for e in at.error]
    assert any(words in e and "previous dataset stays" in e for e in errors), errors
    assert at.session_state["upload"] is before


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32"])
def test_utf16_and_utf32_uploads_are_read(encoding):
    from scoreviz.data_io import parse_point_cloud

    text = "x;y\n" + CSV.decode().replace(",", ";")
    assert parse_point_cloud(text.encode(encoding), "u.csv").n_points == 40


def test_an_import_bomb_is_refused_and_the_models_stay():
    at = make_app().run()
    inject_model(at, tiny_result(), name="mine")
    open_page(at, "views/train.py")
    bomb = craft(lambda h: h["config"]["model"].update(width=4096, depth=32))
    at.file_uploader(key="model_file").set_value((PAYLOAD + ".safetensors", bomb, "x/y"))
    at.run()
    assert_no_exception(at)
    errors = [e.value for e in at.error]
    assert any("outside what the Train page allows" in e for e in errors), errors
    assert list(at.session_state["models"]) == ["mine"]
    _assert_inert(at)


def test_an_unexpected_error_while_importing_is_a_short_message(monkeypatch):
    def boom(data):
        raise KeyError("deep inside a library")

    monkeypatch.setattr(model_io, "import_model", boom)
    at = make_app().run()
    open_page(at, "views/train.py")
    at.file_uploader(key="model_file").set_value(("m.safetensors", b"x" * 100, "x/y"))
    at.run()
    assert_no_exception(at)
    errors = [e.value for e in at.error]
    assert any("could not be read (KeyError)" in html.unescape(e) for e in errors), errors
    assert not at.session_state["models"]


def test_the_train_form_stays_within_the_import_limits():
    """A model the form can train must import: its maxima are within model_io.LIMITS."""
    at = make_app().run()
    open_page(at, "views/train.py")
    lim = model_io.LIMITS
    assert max(float(o) for o in at.select_slider(key="tf_width").options) <= lim["width"]
    assert at.slider(key="tf_depth").max <= lim["depth"]
    assert at.number_input(key="tf_steps").max <= lim["steps"]
    assert max(float(o) for o in at.select_slider(key="tf_batch").options) <= lim["batch_size"]
    assert at.number_input(key="tf_n").max <= lim["n_train"]


def test_a_model_name_in_the_sidebars_tooltip_is_text():
    """The active model's tooltip renders markdown: an image tag in a model's name made the
    browser fetch its URL (issue 26, item 8). Now the name is one code span (nothing inside one
    is markup), whose fence no backtick run in the name can close."""
    name = PAYLOAD + " ``x```y"
    at = make_app()
    inject_model(at, tiny_result(), name=name)
    at.run()
    assert_no_exception(at)
    tip = at.selectbox(key="active_model").help
    assert tip == f"Its full name: ```` {name} ````"
    assert code_span("a\nb\u202e") == "` a b `" and code_span("`") == "`` ` ``"
