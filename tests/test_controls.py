"""One control spec per page setting (scoreviz.ui.controls), read by the widget and by the link
table: every setting of every page reaches the address when it is changed (the view syncs it),
and the link table is exactly the pages' settings."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from scoreviz import get_process
from scoreviz.models import ModelConfig
from scoreviz.samplers import SAMPLERS
from scoreviz.stops import sigma_stops, t_stops
from scoreviz.training import TrainConfig, train
from scoreviz.ui import controls, links, pages
from tests.apptest_utils import assert_no_exception, inject_model, make_app, open_page, tiny_result

ROOT = Path(__file__).resolve().parents[1]
PROC = get_process("vp_linear")


def test_the_link_table_is_the_pages_settings():
    for page in pages.PAGES:
        specs = controls.page_controls(page.file)
        params = links.page_params(page.file)
        assert [p.name for p in params] == [c.name for c in specs]
        assert [p.key for p in params] == [c.key for c in specs]
        assert len({c.name for c in specs}) == len(specs), f"{page.file}: a URL name twice"
        assert not {c.name for c in specs} & {p.name for p in links.GLOBAL}


ALL = [(p.url_path, c) for p in pages.PAGES for c in controls.page_controls(p.file)]


@pytest.mark.parametrize("control", [c for _, c in ALL], ids=[f"{p}-{c.name}" for p, c in ALL])
def test_every_default_survives_the_link(control):
    """show(default) parses back to the default: a link of an untouched page reopens it."""
    default = control.default
    if control.widget == "t":
        default = t_stops(PROC)[10]
    elif control.widget == "sigma_range":
        stops = sigma_stops(PROC)
        default = (stops[2], stops[9])
    elif control.widget in ("selectbox", "radio") and default is None:
        default = next(iter(control.choices()))
    elif control.widget == "multiselect":
        default = list(default)
    param = control.param
    assert param.parse(param.show(default), "vp_linear") == default


def test_the_views_own_their_url_sync():
    """Every fragment of a view writes the address after its reruns: `links.fragment`, never a
    bare `st.fragment` (whose reruns skip app.py's sync)."""
    bare = []
    for path in sorted((ROOT / "views").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                names = [ast.unparse(d) for d in node.decorator_list]
                bare += [f"{path.name}:{node.name}" for n in names if n.startswith("st.fragment")]
    assert bare == []


def test_a_fragment_rerun_writes_the_address(monkeypatch):
    """`links.fragment` syncs after the body, also when the body ends the run (st.rerun)."""
    synced = []
    monkeypatch.setattr(links, "sync_current", lambda: synced.append(1))
    monkeypatch.setattr(links.st, "fragment", lambda fn: fn)  # outside a script run
    assert links.fragment(lambda x: x + 1)(1) == 2 and synced == [1]

    def ends() -> None:
        raise RuntimeError("st.rerun")

    with pytest.raises(RuntimeError):
        links.fragment(ends)()
    assert synced == [1, 1]


# ----------------------------------------------------------------------------- in the app
def _widget(at, control: controls.Control, process: str = "vp_linear"):
    kind = {"t": "select_slider", "sigma_range": "select_slider"}.get(control.widget)
    return getattr(at, kind or control.widget)(key=control.session_key(process))


def _change_and_check(at, control: controls.Control, value) -> None:
    """Set the widget of `control` to `value`, rerun, and read the address."""
    _widget(at, control).set_value(value).run()
    assert_no_exception(at)
    q = dict(at.query_params)
    assert q.get(control.name) == control.param.show(value), (control.name, q)


def _page_with_model(page: str, result):
    at = make_app()
    inject_model(at, result, "tiny")
    return open_page(at, page)


@pytest.mark.slow
def test_every_forward_score_field_dae_and_loss_setting_reaches_the_address():
    stops, sigmas = t_stops(PROC), sigma_stops(PROC)
    new = {
        "t": stops[25],
        "arrows": 21,
        "scaled": False,
        "overlay": True,
        "sigmas": (sigmas[3], sigmas[11]),
        "points": 100,
        "weightings": ["one", "x0"],
        "bins": 32,
        "per_bin": 512,
        "velocity": True,
    }
    for page in ("views/forward.py", "views/score_field.py", "views/dae.py", "views/loss.py"):
        at = _page_with_model(page, tiny_result())
        for control in controls.page_controls(page):
            _change_and_check(at, control, new[control.name])


@pytest.mark.slow
def test_every_sampling_setting_reaches_the_address():
    """Every sampler's knobs too, and the rows: with a model trained on 20 points (the
    memorising optimum's box appears)."""
    config = TrainConfig(steps=60, n_train=20, model=ModelConfig(width=32, depth=2))
    at = _page_with_model("views/sampling.py", train(config))
    c = controls
    _change_and_check(at, c.SAMPLER_STEPS, 5)  # quick runs from here on
    _change_and_check(at, c.SAMPLER_PARTICLES, 40)
    for flag in (c.SAMPLER_X0, c.SAMPLER_TRAILS, c.SAMPLER_MEMORISED):
        _change_and_check(at, flag, not flag.default)
    _change_and_check(at, c.SAMPLER_SHOW, "Exact only")
    knobs = 0
    for name, spec in SAMPLERS.items():
        _change_and_check(at, c.SAMPLER, name)
        for knob in spec.knobs:
            other = knob.lo if knob.default != knob.lo else knob.hi
            _change_and_check(at, c.knob_control(knob), type(knob.default)(other))
            knobs += 1
    assert knobs >= 2, "the samplers' knobs were not reached"


# ----------------------------------------------------------------------------- in a browser
@pytest.mark.slow
@pytest.mark.browser
def test_a_fragment_rerun_in_chromium_updates_the_address():
    """A real fragment rerun (AppTest reruns the whole script, so only a browser shows it): a
    setting changed inside a view's fragment reaches the address without a full rerun."""
    from playwright.sync_api import sync_playwright

    from tests.browser_utils import CHROMIUM, CHROMIUM_ARGS, require_chromium, streamlit_server

    require_chromium()
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/loss", wait_until="domcontentloaded")
            slider = page.locator('[data-testid="stSlider"]').filter(has_text="t bins")
            thumb = slider.get_by_role("slider")
            thumb.wait_for(timeout=120_000)
            page.wait_for_function("() => location.search.includes('bins=24')", timeout=60_000)
            thumb.focus()
            thumb.press("ArrowRight")  # one step: 24 -> 28, a rerun of the fragment only
            page.wait_for_function("() => location.search.includes('bins=28')", timeout=60_000)
            toggle = page.get_by_text("Show x̂₀ (Tweedie)")
            page.goto(f"{url}/sampling", wait_until="domcontentloaded")
            toggle.wait_for(timeout=120_000)
            page.wait_for_function("() => location.search.includes('x0=0')", timeout=120_000)
            toggle.click()
            page.wait_for_function("() => location.search.includes('x0=1')", timeout=120_000)
        finally:
            browser.close()
