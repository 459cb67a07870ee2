"""Data you draw or type, in headless Chromium against `streamlit run app.py`: a smiley dragged
with the mouse on the Train page's canvas becomes the data, is trained on, and its shape is where
the Sampling page's exact and learned particles end; a typed word becomes the data and survives a
reload (its link). No sleeps: every wait is on a condition, with generous timeouts for a busy box.
"""

from __future__ import annotations

import base64
import math
import re
from urllib.parse import parse_qs, urlparse

import numpy as np
from browser_utils import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SHOTS,
    SIDEBAR,
    require_chromium,
    streamlit_server,
)

from scoreviz import sketch

CANVAS = 340
TIMEOUT_MS = 300_000  # a page or chart on a loaded 2-core box
TRAIN_MS = 900_000  # the default training and its check, queued behind other work
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg'
# The last animation frame's particles of every trace, by trace name (arrays may arrive as
# plotly's {dtype, bdata}); null until the Sampling figure with its frames is there.
LAST_FRAME_JS = """(which) => {
  const sel = '[data-testid="stPlotlyChart"] .js-plotly-plot';
  const animated = g => g._transitionData && (g._transitionData._frames || []).length > 1;
  const gd = Array.from(document.querySelectorAll(sel)).find(animated);
  if (!gd) return null;
  const frames = gd._transitionData._frames;
  const f = which === 'last' ? frames[frames.length - 1] : frames[0];
  const plain = v => (v && v.bdata) ? {dtype: v.dtype, bdata: v.bdata} : Array.from(v || []);
  const out = {};
  (f.traces || []).forEach((ti, j) => {
    const d = f.data[j];
    if (d && d.x && d.y) out[gd.data[ti].name || String(ti)] = [plain(d.x), plain(d.y)];
  });
  return out;
}"""


def smiley() -> list[np.ndarray]:
    """A face, two eyes (taps) and a smile, in canvas pixels: one point per mouse move."""
    a = np.linspace(0, 2 * math.pi, 64)
    face = np.stack([170 + 120 * np.cos(a), 170 + 120 * np.sin(a)], 1)
    b = np.linspace(0.2 * math.pi, 0.8 * math.pi, 24)
    smile = np.stack([170 + 70 * np.cos(b), 175 + 60 * np.sin(b)], 1)
    return [face, np.array([[125.0, 130.0]]), np.array([[215.0, 130.0]]), smile]


def _drag(page, box, stroke: np.ndarray) -> None:
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + stroke[0, 0], y0 + stroke[0, 1])
    page.mouse.down()
    for x, y in stroke[1:]:
        page.mouse.move(x0 + x, y0 + y)
    page.mouse.up()


def _array(v) -> np.ndarray:
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).astype(float)
    return np.asarray(v, dtype=float)


def _particles(page, which: str) -> dict[str, np.ndarray]:
    traces = page.evaluate(LAST_FRAME_JS, which)
    return {k: np.stack([_array(x), _array(y)], 1) for k, (x, y) in (traces or {}).items()}


def _distance(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance of each point to the polyline (a single vertex: to that point)."""
    if len(poly) == 1:
        return np.linalg.norm(points - poly[0], axis=1)
    a, d = poly[:-1][None], np.diff(poly, axis=0)[None]
    t = np.clip(((points[:, None] - a) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-12), 0, 1)
    return np.linalg.norm(points[:, None] - (a + t[..., None] * d), axis=-1).min(1)


def _frame(code: str):
    """The standardisation `sketch.from_code` applies: unit-square strokes -> data frame."""
    even = sketch.strokes_to_points(sketch.decode_strokes(code), sketch.N_DRAWN) * [1.0, -1.0]
    centre = even.mean(0)
    spread = math.sqrt(float(((even - centre) ** 2).sum(1).mean()) / 2)
    return lambda p: (np.asarray(p) / CANVAS * [1.0, -1.0] - centre) / spread


def _sidebar_data(page, label: str) -> None:
    """Wait until the sidebar's Distribution box shows `label` (its value, not text)."""
    from playwright.sync_api import expect

    box = page.locator(f'{SIDEBAR} input[aria-label="Distribution"]')
    expect(box).to_have_value(label, timeout=TIMEOUT_MS)


def _no_error(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, "a traceback on screen"


def test_drawing_a_shape_trains_and_samples_it():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url + "/train")
        page.get_by_role("tab", name="Draw").click()
        canvas = page.locator(".st-key-sketch_canvas_0 canvas").first
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert box and abs(box["width"] - CANVAS) < 1, box
        strokes = smiley()
        for stroke in strokes:
            _drag(page, box, stroke)
        # the preview's title (user text is escaped: an invisible joiner before the colon)
        page.get_by_text(re.compile(r"Drawn\W+4 strokes")).first.wait_for()
        page.get_by_role("button", name="Use this drawing as the data").click()
        _sidebar_data(page, "Drawn: 4 strokes (600 points)")

        # the link carries the drawing: its strokes are the ones dragged (within 3 px)
        query = parse_qs(urlparse(page.url).query)
        assert query["data"] == ["drawn"]
        (code,) = query["drawing"]
        got = [s * CANVAS for s in sketch.decode_strokes(code)]
        assert len(got) == 4
        for dragged, back in zip(strokes, got, strict=True):
            assert _distance(back, dragged).max() < 3 and _distance(dragged, back).max() < 3

        page.get_by_role("button", name="Train for this data").click()
        page.get_by_text("is now active").first.wait_for(timeout=TRAIN_MS)
        _no_error(page)
        page.screenshot(path=str(SHOTS / "sketch_drawn_train.png"), full_page=True)
        assert "model" in parse_qs(urlparse(page.url).query)

        page.get_by_role("link", name="Sampling").first.click()
        page.locator(CHART).first.wait_for()
        page.wait_for_function(f"({LAST_FRAME_JS})('last') !== null", timeout=TIMEOUT_MS)
        _no_error(page)
        page.screenshot(path=str(SHOTS / "sketch_drawn_sampling.png"))
        to_data = _frame(code)
        shape = [to_data(s) for s in strokes]
        eyes = [to_data(s)[0] for s in strokes if len(s) == 1]
        last, first = _particles(page, "last"), _particles(page, "first")
        for kind in ("learned", "exact"):
            (name,) = [n for n in last if kind in n and "x_t" in n]
            x = last[name][np.isfinite(last[name]).all(1)]
            near = np.min([_distance(x, s) for s in shape], axis=0)
            start = np.min([_distance(first[name], s) for s in shape], axis=0)
            assert len(x) >= 200, (kind, len(x))
            # on the strokes: most particles within 0.15 (the face is ~2.3 across), far more
            # than the starting noise, and each eye (a tap: ~3 % of the points) is there
            assert np.mean(near < 0.15) > 0.8, (kind, np.mean(near < 0.15))
            assert np.mean(start < 0.15) < 0.5, (kind, np.mean(start < 0.15))
            for eye in eyes:
                assert np.mean(np.linalg.norm(x - eye, axis=1) < 0.1) > 0.005, (kind, eye)
        browser.close()


def test_typing_a_word_makes_it_the_data_and_a_reload_keeps_it():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url + "/train")
        page.get_by_role("tab", name="Type a word").click()
        box = page.locator(".st-key-word_text input")
        box.fill("naïve")
        page.get_by_role("button", name="Use this word as the data").click()
        page.get_by_text("cannot draw").first.wait_for()
        _no_error(page)

        box.fill("Hello")
        page.get_by_role("button", name="Use this word as the data").click()
        _sidebar_data(page, "Typed: Hello (1,000 points)")
        page.get_by_text("points over the exact").first.wait_for()
        query = parse_qs(urlparse(page.url).query)
        assert query["data"] == ["typed"] and query["word"] == ["Hello"]
        page.screenshot(path=str(SHOTS / "sketch_typed_train.png"), full_page=True)

        page.reload()  # a new session: the link alone brings the word back
        _sidebar_data(page, "Typed: Hello (1,000 points)")
        _no_error(page)
        browser.close()
