"""One real pass through the app in headless Chromium: every page, train, play, no error box.

Screenshots go to artifacts/screenshots/ (kept out of git) so a human can look at them.
"""

from __future__ import annotations

import time
from urllib.parse import urlparse

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

# Minimum number of Plotly charts once trained, per page script (a new page: at least 1).
MIN_CHARTS = {
    "views/forward.py": 3,
    "views/train.py": 1,
    "views/score_field.py": 2,
    "views/dae.py": 2,
    "views/loss.py": 2,
    "views/sampling.py": 1,
}
# (link text in the navigation, URL path, minimum number of Plotly charts once trained)
PAGES = [(p.title, p.url_path, MIN_CHARTS.get(p.file, 1)) for p in pages.VIEWS]
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg'


def _settle(page, min_charts: int, timeout: float = 60.0) -> None:
    """Wait until the script finished running and at least `min_charts` charts have rendered.

    The condition must hold on two checks 0.5 s apart: right after a navigation click the old
    page's charts can still be in the DOM before the status widget shows the new run.
    """
    deadline = time.monotonic() + timeout
    stable = 0
    while time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        charts = page.locator(CHART).count()
        stable = stable + 1 if (not running and charts >= min_charts) else 0
        if stable >= 2:
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"page did not settle with {min_charts} charts within {timeout}s")


def _wait_until(condition, seconds: float) -> bool:
    """Poll `condition` (every 0.2 s) until it holds or `seconds` pass: True if it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return bool(condition())


def _assert_no_error(page, where: str) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, f"traceback on {where}"
    body = page.locator("body").inner_text()
    assert "unexpected problem" not in body, f"unexpected error message on {where}"


def test_every_page_in_chromium():
    require_chromium()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_text("scoreviz").first.wait_for(timeout=60_000)
            _settle(page, 0)
            page.screenshot(path=str(SHOTS / "0_home.png"), full_page=True)
            _assert_no_error(page, "Home")

            # Train the default model from Home; the sidebar then offers it as the active model.
            page.get_by_role("button", name="Train the default model").click()
            page.locator(SIDEBAR).get_by_text("Active model", exact=True).first.wait_for(
                timeout=120_000
            )
            _settle(page, 0)
            _assert_no_error(page, "Home after training")

            for i, (title, slug, min_charts) in enumerate(PAGES, start=1):
                page.get_by_role("link", name=title).first.click()
                # the path only: the app writes the view's settings into the query string
                page.wait_for_url(
                    lambda u, s=slug: urlparse(u).path.endswith(f"/{s}"), timeout=30_000
                )
                _settle(page, min_charts, timeout=90)
                assert page.locator(CHART).count() >= min_charts, title
                _assert_no_error(page, title)
                page.screenshot(
                    path=str(SHOTS / f"{i}_{title.split()[0].lower()}.png"), full_page=True
                )

            # On the Sampling page (no longer the last page): play the animation, frames advance.
            page.get_by_role("link", name="Sampling").first.click()
            page.wait_for_url(lambda u: urlparse(u).path.endswith("/sampling"), timeout=30_000)
            _settle(page, 1, timeout=90)
            chart = (
                page.locator('[data-testid="stPlotlyChart"]')
                .filter(has=page.locator(".updatemenu-button"))
                .first
            )
            before = chart.screenshot()
            chart.locator(".updatemenu-button").filter(has_text="Play").first.click()
            moved = _wait_until(lambda: chart.screenshot() != before, seconds=10)
            assert moved, "pressing Play did not animate the figure"
            page.screenshot(path=str(SHOTS / "7_sampling_played.png"), full_page=True)
            _assert_no_error(page, "Sampling after Play")
        finally:
            browser.close()


def test_a_deep_link_to_a_fresh_server_runs_the_whole_app():
    """The first request of a new server is /forward: app.py must run (sidebar, navigation,
    page config), not views/forward.py alone (which is what Streamlit's legacy multipage mode
    does when the page files sit in a `pages/` folder)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url.rstrip("/") + "/forward", wait_until="domcontentloaded")
            _settle(page, 3, timeout=90)
            sidebar = page.locator('[data-testid="stSidebar"]')
            assert sidebar.get_by_text("Distribution").count() >= 1, "sidebar missing"
            sampling = page.get_by_role("link", name=pages.title("views/sampling.py"))
            assert sampling.count() >= 1, "navigation missing"
            _assert_no_error(page, "deep link /forward")
        finally:
            browser.close()
