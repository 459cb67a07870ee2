"""Markup in a file name, a model name and a model file's distribution, in real Chromium: no new
element, no link, no outside request (every request Playwright sees goes to 127.0.0.1)."""

from __future__ import annotations

import pytest

from scoreviz.text import JOINER
from scoreviz.ui import pages
from tests.browser_utils import CHROMIUM, CHROMIUM_ARGS, require_chromium, streamlit_server
from tests.test_browser import _settle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAYLOAD = '<a href="http://example.com/x">a</a><b>B</b>![t](http://example.com/t.png)`c`'
CSV = "".join(f"{i * 0.1},{(i * 37 % 11) * 0.3}\n" for i in range(40)).encode()
FOREIGN = 'a[href*="example.com"], img[src*="example.com"], b:text("B")'


def _model_file() -> bytes:
    from scoreviz.model_io import export_model
    from scoreviz.models import ModelConfig
    from scoreviz.training import TrainConfig, train

    return export_model(train(TrainConfig(model=ModelConfig(width=16, depth=1), steps=20)))


def _bad_distribution_file() -> bytes:
    from tests.test_model_io import craft

    return craft(lambda h: h["config"].update(distribution="upload:" + PAYLOAD))


def test_markup_in_user_text_makes_no_element_link_or_request():
    require_chromium()
    from playwright.sync_api import sync_playwright

    model, bad = _model_file(), _bad_distribution_file()
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        requests: list[str] = []
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.on("request", lambda r: requests.append(r.url))  # pages and workers
            page = context.new_page()
            page.goto(url + "/train")
            _settle(page, 0)
            inputs = page.locator('input[type="file"]')
            inputs.nth(0).set_input_files(
                {"name": PAYLOAD + ".csv", "mimeType": "text/csv", "buffer": CSV}
            )
            page.get_by_text("Loaded").last.wait_for(timeout=60_000)
            _settle(page, 0)
            for data, words in ((bad, "16 hex digits"), (model, "Training loss of")):
                page.locator('input[type="file"]').nth(1).set_input_files(
                    {"name": PAYLOAD + ".safetensors", "mimeType": "x/y", "buffer": data}
                )
                page.wait_for_timeout(1500)
                _settle(page, 0)
                found = page.locator(FOREIGN)
                where = "e => e.closest('[data-testid]').dataset.testid"
                assert found.count() == 0, [
                    found.nth(k).evaluate(where) for k in range(found.count())
                ]
                body = page.locator("body").inner_text()
                assert words in body or page.locator(".gtitle").count() > 0, words
            # the names are shown, literally (Chromium sends '"' in a file name as %22, and long
            # names are cut at the front, so check the tags in the middle)
            assert "<b>B</b>![t](http" in body.replace(JOINER, "")
            assert page.locator(FOREIGN).count() == 0
            assert page.locator('[data-testid="stException"]').count() == 0
            for nav in map(pages.title, ("views/loss.py", "views/dae.py", "views/forward.py")):
                page.get_by_role("link", name=nav).click()
                page.wait_for_timeout(1000)
                _settle(page, 1)
                assert page.locator(FOREIGN).count() == 0, nav
        finally:
            browser.close()
    assert any(u.startswith(url) for u in requests)  # the log did record the page's requests
    outside = [u for u in requests if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert not outside, outside


def test_markup_in_a_model_name_is_text_in_the_sidebars_tooltip():
    """The active model's tooltip (its full name) renders markdown: an image tag in an imported
    file's name made the browser fetch its URL on hover (issue 26, item 8)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    model = _model_file()
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        requests: list[str] = []
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.on("request", lambda r: requests.append(r.url))
            page = context.new_page()
            page.goto(url + "/train")
            _settle(page, 0)
            page.locator('input[type="file"]').nth(1).set_input_files(
                {"name": PAYLOAD + ".safetensors", "mimeType": "x/y", "buffer": model}
            )
            page.get_by_text("Training loss of").first.wait_for(timeout=60_000)
            _settle(page, 0)
            sidebar = page.locator('[data-testid="stSidebar"]')
            sidebar.locator('[data-testid="stTooltipHoverTarget"]').last.hover()
            tip = page.locator('[data-testid="stTooltipContent"]').last
            tip.wait_for(timeout=10_000)
            page.wait_for_timeout(1000)  # time for an image to be requested, were there one
            # shown literally (Chromium sends '"' in a file name as %22; the name is cut at 60)
            assert "<b>B</b>![t](http" in tip.inner_text().replace("\n", "")
            assert tip.locator("a, img, b").count() == 0
            assert page.locator(FOREIGN).count() == 0
        finally:
            browser.close()
    outside = [u for u in requests if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert not outside, outside
