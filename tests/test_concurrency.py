"""A lecture hall in one test: 8 students hit one `streamlit run app.py` at once.

One headless Chromium, one browser context per session (separate cookies, so separate Streamlit
sessions), driven concurrently with Playwright's async API:

1. The lecturer trains the default model from Home (a real training, a few seconds) while
   eight students open Home together.
2. Once it is trained, the eight press "Train the default model": the server-wide store
   (`scoreviz.ui.models.shared_models`) must hand each the finished model, not train it 8 times.
3. Each student opens the Score field and gets both charts (learned vs exact, the error).
4. Isolation: one student uploads a point cloud on Train; no other student's sidebar offers it.

Throughout, a thread polls /_stcore/health; it must answer "ok" every time. A timing table
(first render, time to an active model, Score field) is printed (pytest -s shows it).
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import pytest

from scoreviz.ui import pages
from tests.browser_utils import CHROMIUM, CHROMIUM_ARGS, require_chromium, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_STUDENTS = 8
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg'
TRAIN_BUTTON = "Train the default model"
REUSED = "already trained on this server"
CLOUD = "\n".join(f"{i % 7},{(i * 3) % 11}" for i in range(300)).encode()


# ----------------------------------------------------------------------------- health
class HealthPoller(threading.Thread):
    """Poll /_stcore/health every `every` s until stopped; remember every failure and latency."""

    def __init__(self, url: str, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.url, self.every = url + "/_stcore/health", every
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.latencies: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                body = urllib.request.urlopen(self.url, timeout=5).read()
                if body != b"ok":
                    self.failures.append(f"{time.strftime('%X')}: answered {body[:40]!r}")
            except OSError as exc:
                self.failures.append(f"{time.strftime('%X')}: {exc!r}")
            self.latencies.append(time.monotonic() - start)
            self.stop.wait(self.every)


# ----------------------------------------------------------------------------- one session
@dataclass
class Session:
    name: str
    page: object = None
    times: dict[str, float] = field(default_factory=dict)

    async def settle(self, min_charts: int = 0, timeout: float = 120.0) -> None:
        """Wait until the script run ended and at least `min_charts` charts have rendered."""
        page, deadline = self.page, time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = await page.locator('[data-testid="stStatusWidget"]').count()
            charts = await page.locator(CHART).count()
            if not running and charts >= min_charts:
                await page.wait_for_timeout(300)
                if not await page.locator('[data-testid="stStatusWidget"]').count():
                    return
            await page.wait_for_timeout(200)
        raise AssertionError(f"{self.name}: no settled page with {min_charts} charts in {timeout}s")

    async def assert_clean(self, where: str) -> None:
        assert await self.page.locator('[data-testid="stException"]').count() == 0, (
            f"{self.name}: traceback on {where}"
        )
        body = await self.page.locator("body").inner_text()
        assert "unexpected problem" not in body, f"{self.name}: unexpected error on {where}"
        assert "Traceback" not in body, f"{self.name}: traceback text on {where}"

    async def open_home(self, url: str) -> None:
        start = time.monotonic()
        await self.page.goto(url, wait_until="domcontentloaded")
        await self.page.get_by_role("button", name=TRAIN_BUTTON).wait_for(timeout=60_000)
        await self.settle()
        self.times["first render"] = time.monotonic() - start
        await self.assert_clean("Home")

    async def train_default(self, timeout: float) -> None:
        """Press the Home button; time until the sidebar offers an active model."""
        start = time.monotonic()
        await self.page.get_by_role("button", name=TRAIN_BUTTON).click()
        sidebar = self.page.locator('[data-testid="stSidebar"]')
        await sidebar.get_by_text("Active model").first.wait_for(timeout=timeout * 1000)
        self.times["active model"] = time.monotonic() - start
        await self.settle()
        await self.assert_clean("Home after training")

    async def score_field(self) -> None:
        start = time.monotonic()
        await self.page.get_by_role("link", name=pages.title("views/score_field.py")).first.click()
        await self.settle(min_charts=2)
        self.times["score field"] = time.monotonic() - start
        assert await self.page.locator(CHART).count() >= 2, f"{self.name}: Score field charts"
        await self.assert_clean("Score field")

    def distribution_box(self):
        return self.page.locator('[data-testid="stSidebar"]').get_by_role(
            "combobox", name="Distribution"
        )

    async def sidebar_distributions(self) -> tuple[str, list[str]]:
        """(selected label, every option label) of the sidebar's Distribution select box."""
        box = self.distribution_box()
        selected = await box.input_value()
        await box.click()
        options = self.page.get_by_role("option")
        await options.first.wait_for(timeout=10_000)
        labels = await options.all_inner_texts()
        await self.page.keyboard.press("Escape")
        return selected, labels


async def _upload_cloud(s: Session) -> None:
    """Upload a point cloud on Train; it becomes this session's selected distribution."""
    await s.page.get_by_role("link", name="Train").first.click()
    await s.settle(min_charts=1)
    uploader = s.page.locator('[data-testid="stFileUploaderDropzoneInput"]').first
    await uploader.set_input_files(
        files=[{"name": "cloud.csv", "mimeType": "text/csv", "buffer": CLOUD}]
    )
    deadline = time.monotonic() + 30
    while not (await s.distribution_box().input_value()).startswith("Uploaded: cloud.csv"):
        assert time.monotonic() < deadline, f"{s.name}: the upload was not selected"
        await s.page.wait_for_timeout(250)
    await s.settle()
    await s.assert_clean("Train after the upload")
    selected, labels = await s.sidebar_distributions()
    assert any(x.startswith("Uploaded: cloud.csv") for x in labels), labels


async def _others_never_see_the_upload(s: Session) -> None:
    await s.page.get_by_role("link", name="Train").first.click()  # a fresh run of this session
    await s.settle(min_charts=1)
    selected, labels = await s.sidebar_distributions()
    assert labels and not any("Uploaded:" in x for x in [selected, *labels]), (s.name, labels)


def _table(sessions: list[Session], phases: dict[str, float], health: HealthPoller) -> str:
    cols = ["first render", "active model", "score field"]
    lines = [f"{'session':<10}" + "".join(f"{c:>14}" for c in cols)]
    for s in sessions:
        cells = "".join(f"{s.times.get(c, float('nan')):>13.2f}s" for c in cols)
        lines.append(f"{s.name:<10}{cells}")
    lines += [f"phase {k}: {v:.2f} s" for k, v in phases.items()]
    lat = sorted(health.latencies)
    lines.append(
        f"health: {len(lat)} polls, median {lat[len(lat) // 2] * 1000:.0f} ms, "
        f"max {lat[-1] * 1000:.0f} ms, {len(health.failures)} failed"
    )
    return "\n".join(lines)


async def _phase(phases: dict[str, float], name: str, *coros) -> None:
    start = time.monotonic()
    await asyncio.gather(*coros)
    phases[name] = time.monotonic() - start


async def _lecture(browser, url: str, health: HealthPoller) -> None:
    sessions = [Session("lecturer")] + [Session(f"student{i}") for i in range(N_STUDENTS)]
    for s in sessions:  # a context each: own cookies, so an own Streamlit session
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        s.page = await context.new_page()
    lecturer, students = sessions[0], sessions[1:]
    phases: dict[str, float] = {}
    try:
        await _phase(phases, "lecturer opens Home", lecturer.open_home(url))

        async def lecturer_trains() -> None:
            await _phase(phases, "lecturer trains (real)", lecturer.train_default(timeout=120))

        async def students_arrive() -> None:  # the room opens the app while the model trains
            await _phase(phases, "8 students open Home", *(s.open_home(url) for s in students))

        await asyncio.gather(lecturer_trains(), students_arrive())
        assert REUSED not in await lecturer.page.locator("body").inner_text()
        await _phase(phases, "8 students press Train", *(s.train_default(60) for s in students))
        for s in students:  # each got the lecturer's model; nobody trained again
            assert REUSED in await s.page.locator("body").inner_text(), s.name
        await _phase(phases, "8 students open Score field", *(s.score_field() for s in students))

        a, others = students[0], students[1:]
        await _phase(phases, "student0 uploads", _upload_cloud(a))
        await _phase(
            phases, "7 others check isolation", *(_others_never_see_the_upload(s) for s in others)
        )
    finally:
        print("\n" + _table(sessions, phases, health))


async def _run(url: str, health: HealthPoller) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            await _lecture(browser, url, health)
        finally:
            await browser.close()


def test_eight_sessions_share_one_training_and_stay_isolated():
    require_chromium()
    with streamlit_server() as url:
        health = HealthPoller(url)
        health.start()
        try:
            asyncio.run(_run(url, health))
        finally:
            health.stop.set()
            health.join(10)
        assert health.latencies, "the health endpoint was never polled"
        assert not health.failures, f"/_stcore/health failed: {health.failures[:5]}"
