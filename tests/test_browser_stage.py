"""A lecture rehearsal in real Chromium (issue 20), on one fresh server for the module.

- Every scene, opened by its link at 1280x720 and 1920x1080, in normal and presentation mode:
  it trains what it needs (through the server's shared store: once per server), and then its
  main figure, the figure's Play button and frame slider and the scene card all lie inside the
  viewport; in presentation mode a visible "Leave presentation mode" control leaves it.
- The link round trip: a setting of every page with settings (the Sampling page's sampler,
  particles and x̂₀ among them) is changed with the keyboard or the mouse, the address is copied
  and opened in a fresh browser context, and reloaded (F5): the settings come back.

No fixed sleeps as barriers: every wait polls the page with a generous deadline.
Screenshots: artifacts/screenshots/scene_<name>_<w>x<h>_<mode>.png.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest

from scoreviz.ui import pages
from scoreviz.ui.scenes import load_scenes
from tests.browser_utils import CHROMIUM, CHROMIUM_ARGS, SHOTS, require_chromium
from tests.browser_utils import streamlit_server as _server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = [(1280, 720), (1920, 1080)]
MAIN = ".st-key-main_figure"
PROGRESS = '[data-testid="stMain"] [data-testid="stProgress"]'


@pytest.fixture(scope="module")
def browser_and_url():
    require_chromium()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with _server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser, url
        finally:
            browser.close()


def _poll(check, timeout: float, what: str, page=None):
    """Poll `check()` until it returns something truthy (returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(300)
        else:
            time.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout} s")


def _settled(page, timeout: float = 400.0) -> None:
    """The main figure drawn, no training progress and no script running, on three checks in a
    row (a scene's trainings rerun the app when each ends)."""
    state = {"n": 0}

    def check():
        busy = page.locator('[data-testid="stStatusWidget"]').count() > 0
        busy = busy or page.locator(PROGRESS).count() > 0
        ready = page.locator(MAIN + " .js-plotly-plot .main-svg").count() > 0
        state["n"] = state["n"] + 1 if ready and not busy else 0
        return state["n"] >= 3

    _poll(check, timeout, f"{page.url}: a settled main figure", page)


def _inside(box, w: int, h: int) -> bool:
    return (
        box is not None
        and box["x"] >= -1
        and box["y"] >= -1
        and box["x"] + box["width"] <= w + 1
        and box["y"] + box["height"] <= h + 1
    )


def _scene_problems(page, where: str, w: int, h: int) -> list[str]:
    problems = []
    boxes = {"main figure": page.locator(MAIN), "scene card": page.locator(".st-key-scene_card")}
    for what, loc in boxes.items():
        if loc.count() == 0 or not _inside(loc.first.bounding_box(), w, h):
            problems.append(f"{where}: {what} not inside {w}x{h}")
    fig = page.locator(MAIN).first
    for what, sel in (("Play", ".updatemenu-button"), ("frame slider", ".slider-group")):
        for i in range(fig.locator(sel).count()):
            if not _inside(fig.locator(sel).nth(i).bounding_box(), w, h):
                problems.append(f"{where}: {what} not inside {w}x{h}")
    if page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count():
        problems.append(f"{where}: an error on screen")
    return problems


def _open_scene(page, url: str, name: str, scene, w: int, h: int, mode: str) -> list[str]:
    """Open scene `name` by its link, wait until it has trained and drawn; what is wrong."""
    query = f"?scene={name}" + ("&present=1" if mode == "present" else "")
    page.goto(url + "/" + query, wait_until="domcontentloaded")
    _settled(page)
    path = urlparse(page.url).path.strip("/")
    assert path == pages.PageSpec(scene.page, "", "", "").url_path, page.url
    page.screenshot(path=str(SHOTS / f"scene_{name}_{w}x{h}_{mode}.png"))
    problems = _scene_problems(page, f"scene {name} at {w}x{h} ({mode})", w, h)
    if scene.train:  # every model it trains is in the session (and in its link)
        query = parse_qs(urlparse(page.url).query)
        ids = [i for i in query.get("models", [""])[0].split(",") if i]
        ids += query.get("model", [])
        if len(ids) < len(scene.train):
            problems.append(f"scene {name}: {len(ids)} of {len(scene.train)} models")
    return problems


@pytest.mark.parametrize("mode", ["present", "normal"])
def test_every_scene_trains_what_it_needs_and_fits_the_screen(browser_and_url, mode):
    browser, url = browser_and_url
    problems = []
    for w, h in SIZES:
        for name, scene in load_scenes().items():
            page = browser.new_page(viewport={"width": w, "height": h})
            try:  # one scene's failure is reported with the others' (its tab closed, not left
                # polling the server while the next scenes and tests run)
                problems += _open_scene(page, url, name, scene, w, h, mode)
            except AssertionError as exc:
                problems.append(f"scene {name} at {w}x{h} ({mode}): {exc}")
            finally:
                page.close()
    assert not problems, "\n".join(problems)


def test_presentation_mode_is_left_and_driven_by_visible_controls(browser_and_url):
    browser, url = browser_and_url
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(url + "/?present=1", wait_until="domcontentloaded")
    bar = page.locator(".st-key-present_bar")
    bar.wait_for(timeout=120_000)
    assert _inside(bar.bounding_box(), 1280, 720)
    # the title slide keeps the idea and Tweedie's formula
    _poll(lambda: page.locator(".st-key-title_slide .katex").count() > 0, 60, "formula", page)
    # next page from the keyboard (a clicker's PageDown)
    # the page, not a widget, has the focus (a click at a fixed point could land on a widget or
    # a chart, whose keys the page leaves alone)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    # pressed again (every 5 s) until it turns the page, as a lecturer does: after the scenes'
    # trainings the first press can come before the bar's key script is on the page
    last = {"at": 0.0}

    def turned() -> bool:
        if urlparse(page.url).path.endswith("/forward"):
            return True
        if time.monotonic() - last["at"] > 5:
            last["at"] = time.monotonic()
            page.keyboard.press("PageDown")
        return False

    _poll(turned, 90, "PageDown: next page", page)
    # the Scenes menu opens from the bar, and closes after a pick
    bar.get_by_role("button", name="Scenes").click()
    pick = page.get_by_role("button", name=load_scenes()["too_few_steps"].title)
    pick.wait_for(timeout=30_000)
    pick.click()
    _poll(lambda: urlparse(page.url).path.endswith("/sampling"), 120, "the scene's page", page)
    _poll(lambda: not pick.is_visible(), 60, "the Scenes menu closed", page)
    leave = page.get_by_role("button", name="Leave presentation mode")
    assert leave.is_visible() and _inside(leave.bounding_box(), 1280, 720)
    leave.click()
    _poll(lambda: page.locator(".st-key-present_bar").count() == 0, 60, "bar gone", page)
    _poll(lambda: "present" not in parse_qs(urlparse(page.url).query), 60, "link left", page)
    page.close()


# ----------------------------------------------------------------------------- link round trip
def _params(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _nudge_slider(page, index: int = 0) -> None:
    """Move the index-th slider of the main area one step to the right, with the keyboard."""
    thumb = page.locator('[data-testid="stMain"] [data-testid="stSlider"] input[type="range"]')
    thumb.nth(index).focus()
    page.keyboard.press("ArrowRight")


def _change_settings(page, url: str, spec) -> dict[str, str]:
    """Change a setting of page `spec` (the Sampling page: sampler, particles, x̂₀); return the
    URL parameters that changed."""
    page.goto(f"{url}/{spec.url_path}", wait_until="domcontentloaded")
    _settled(page)
    before = _params(page)
    if spec.file == "views/sampling.py":
        page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name="Probability-flow ODE (Heun)").click()
        _poll(lambda: _params(page).get("sampler") == "pf_ode_heun", 120, "sampler", page)
        _settled(page)
        _nudge_slider(page, 1)  # particles
        _poll(lambda: _params(page).get("particles") != before.get("particles"), 120, "n", page)
        _settled(page)
        page.get_by_text("Show x̂₀ (Tweedie)").click()
        _poll(lambda: _params(page).get("x0") not in (None, before.get("x0")), 120, "x0", page)
    else:
        _nudge_slider(page)
        _poll(lambda: _params(page) != before, 120, f"{spec.title}: the address changed", page)
    _settled(page)
    after = _params(page)
    return {k: v for k, v in after.items() if before.get(k) != v}


LINKED = [p for p in pages.VIEWS if p.file in ("views/forward.py", "views/score_field.py",
                                               "views/dae.py", "views/loss.py",
                                               "views/sampling.py")]  # fmt: skip


def test_every_pages_settings_survive_a_fresh_browser_and_f5(browser_and_url):
    browser, url = browser_and_url
    problems = []
    for spec in LINKED:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        changed = _change_settings(page, url, spec)
        if not changed:
            problems.append(f"{spec.title}: no setting reached the address")
        link = page.url
        page.close()
        fresh = browser.new_context(viewport={"width": 1920, "height": 1080})
        other = fresh.new_page()
        other.goto(link, wait_until="domcontentloaded")
        _settled(other)
        for when in ("a fresh browser", "F5"):
            got = _params(other)
            lost = {k: (v, got.get(k)) for k, v in changed.items() if got.get(k) != v}
            if lost:
                problems.append(f"{spec.title}, {when}: {lost} (want, got)")
            if when == "a fresh browser":
                other.reload(wait_until="domcontentloaded")
                _settled(other)
        fresh.close()
    assert not problems, "\n".join(problems)
