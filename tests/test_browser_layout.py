"""Projector-first layouts in real Chromium (issue 10): at 1280x720 and 1920x1080, in normal
mode (sidebar open) and presentation mode (`?present=1`, sidebar collapsed), every page's main
figure, its Play/Pause buttons and frame slider, and the page's first slider lie inside the
viewport without scrolling.

Each page is opened as a new session by URL with the trained model's id (`?model=`), so this
also checks in a real browser that a link (or F5) gets the model back from the server's store.
Screenshots: artifacts/screenshots/layout_<page>_<w>x<h>_<mode>.png, for a human to look at.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest

from scoreviz.ui import pages
from tests.browser_utils import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SHOTS,
    SIDEBAR,
    require_chromium,
    streamlit_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = [(1280, 720), (1920, 1080)]
MAIN = ".st-key-main_figure .js-plotly-plot"
# pages whose main figure is checked (Home and Train have no single main figure)
VIEWS = [p for p in pages.VIEWS if p.file != "views/train.py"]


def _settle(page, timeout: float = 90.0) -> None:
    """Wait for the main figure, and no script running, on two checks 0.5 s apart."""
    deadline = time.monotonic() + timeout
    stable = 0
    while time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        ready = page.locator(MAIN + " .main-svg").count() > 0
        stable = stable + 1 if (ready and not running) else 0
        if stable >= 2:
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"{page.url}: no main figure within {timeout} s")


def _outside(box, w: int, h: int) -> bool:
    return (
        box is None
        or box["x"] < -1
        or box["y"] < -1
        or box["x"] + box["width"] > w + 1
        or box["y"] + box["height"] > h + 1
    )


def _check(page, where: str, w: int, h: int) -> list[str]:
    """The main figure, its animation controls and the first Streamlit slider in the viewport."""
    problems = []
    main = page.locator(MAIN).first
    if _outside(main.bounding_box(), w, h):
        problems.append(f"{where}: main figure {main.bounding_box()} not inside {w}x{h}")
    for name, sel in (("Play/Pause", ".updatemenu-button"), ("frame slider", ".slider-group")):
        for i in range(main.locator(sel).count()):
            box = main.locator(sel).nth(i).bounding_box()
            if _outside(box, w, h):
                problems.append(f"{where}: {name} {box} not inside {w}x{h}")
    sliders = page.locator('[data-testid="stMain"] [data-testid="stSlider"]')
    if sliders.count() and _outside(sliders.first.bounding_box(), w, h):
        problems.append(f"{where}: first slider {sliders.first.bounding_box()} not inside")
    if page.locator('[data-testid="stException"]').count():
        problems.append(f"{where}: a traceback")
    return problems


def _train_default(browser, url: str) -> str:
    """Train the default model through Home; its id, read from the synced URL."""
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("button", name="Train the default model").click()
    page.locator(SIDEBAR).get_by_text("Active model", exact=True).first.wait_for(timeout=180_000)
    deadline = time.monotonic() + 30
    while "model=" not in page.url and time.monotonic() < deadline:
        page.wait_for_timeout(300)
    model_id = parse_qs(urlparse(page.url).query)["model"][0]
    page.close()
    return model_id


def test_main_figure_and_controls_fit_the_screen():
    require_chromium()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            model_id = _train_default(browser, url)
            for w, h in SIZES:
                for mode in ("normal", "present"):
                    page = browser.new_page(viewport={"width": w, "height": h})
                    for spec in VIEWS:
                        query = f"?model={model_id}" + ("&present=1" if mode == "present" else "")
                        page.goto(f"{url}/{spec.url_path}{query}", wait_until="domcontentloaded")
                        _settle(page)
                        page.wait_for_timeout(300)  # Plotly's last relayout
                        name = f"layout_{spec.url_path}_{w}x{h}_{mode}.png"
                        page.screenshot(path=str(SHOTS / name))
                        where = f"{spec.title} at {w}x{h} ({mode})"
                        problems += _check(page, where, w, h)
                        if (
                            "Active model"
                            not in page.locator('[data-testid="stSidebar"]').inner_text()
                        ):
                            problems.append(f"{where}: the model id in the URL restored no model")
                    page.close()
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
