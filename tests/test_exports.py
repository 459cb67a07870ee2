"""Exports (scoreviz.exports): PNG size and ink, HTML data and frames, GIF frames and size, CSV
round trip, stills of animation frames, safe file names.

PNG and GIF drive /usr/bin/chromium through kaleido. Where Chromium is installed a broken kaleido
fails these tests (it would break the app's export); only a machine without Chromium skips them.
Figures are small so each test takes seconds.
"""

from __future__ import annotations

import base64
import io
import re
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from scoreviz import exports
from scoreviz.errors import ConfigError, ScorevizError
from scoreviz.figures.style import player_controls

needs_chromium = pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists(),
    reason="/usr/bin/chromium is not installed (apt-get install chromium): no image export here",
)


def animation(n_frames: int = 5, n: int = 40) -> go.Figure:
    """A small animation like the app's: a static trace 0, a moving trace 1, a slider over t."""
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(n, 2))
    times = np.linspace(0.0, 1.0, n_frames)
    fig = go.Figure([go.Scatter(x=x0[:, 0], y=x0[:, 1], mode="markers") for _ in range(2)])
    frames = []
    for k, t in enumerate(times):
        x = x0 * (1 + 3 * t)
        layout = {"title": {"text": f"t = {t:.2f}"}}
        frames.append(go.Frame(name=str(k), data=[go.Scatter(x=x[:, 0], y=x[:, 1])], traces=[1],
                               layout=layout))  # fmt: skip
    fig.frames = frames
    fig.update_layout(**player_controls([f.name for f in frames], times, 100), height=300)
    return fig


def values(v) -> np.ndarray:
    """Array values of a figure dict's field (plotly 6+ sends numpy arrays as base64 'bdata')."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


def ink(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG"
    return img


# --------------------------------------------------------------------------- pure parts


def test_still_applies_the_frame_and_drops_the_controls():
    fig = animation()
    still = exports.still_figure(fig, 3)
    np.testing.assert_allclose(values(still["data"][1]["x"]), fig.frames[3].data[0].x)
    np.testing.assert_allclose(values(still["data"][0]["x"]), fig.data[0].x)  # untouched
    assert still["layout"]["title"]["text"] == "t = 0.75"
    assert "sliders" not in still["layout"] and "updatemenus" not in still["layout"]
    assert "frames" not in still
    assert still["layout"]["annotations"][-1]["text"] == "t = 0.750"
    assert fig.layout.sliders and len(fig.frames) == 5  # the caller's figure is not changed


def test_still_of_a_static_figure_and_bad_frames():
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    assert list(values(exports.still_figure(fig)["data"][0]["y"])) == [3, 4]
    with pytest.raises(ConfigError, match="no animation frames"):
        exports.still_figure(fig, 1)
    with pytest.raises(ConfigError, match="has 5"):
        exports.still_figure(animation(), 5)


def test_gif_frames_are_bounded_and_keep_first_and_last():
    idx = exports.gif_frames(200, 30)
    assert len(idx) == 30 and idx[0] == 0 and idx[-1] == 199
    assert list(exports.gif_frames(4, 30)) == [0, 1, 2, 3]
    with pytest.raises(ConfigError):
        exports.gif_frames(200, exports.GIF_MAX_FRAMES + 1)


@needs_chromium
def test_gif_frames_follow_the_point_budget(monkeypatch):
    monkeypatch.setattr(exports, "GIF_MIN_FRAMES", 2)
    fig = animation(n_frames=9, n=40)  # 80 points a frame
    gif = exports.animation_gif(fig, width=160, height=120, max_points=80 * 3)
    assert Image.open(io.BytesIO(gif)).n_frames == 3


def test_drawn_points_counts_every_trace():
    still = exports.still_figure(animation(n=40), 2)
    assert exports.drawn_points(still) == 80
    assert exports.drawn_points({"data": [{"x": [1, 2, 3]}, {"type": "heatmap"}]}) == 3


def test_html_is_standalone_with_data_and_frames():
    fig = animation(n_frames=7)
    fig.data[0].update(x=[1.25, 2.5], y=[3.75, 4.125])
    html = exports.figure_html(fig).decode("utf-8")
    assert html.lstrip().lower().startswith(("<!doctype html>", "<html>"))
    assert "plotly" in html.lower() and len(html) > 1_000_000  # plotly.js inlined
    assert not re.search(r"<script[^>]*\ssrc=", html)  # nothing fetched: works offline
    assert "[1.25,2.5]" in html.replace(" ", "") and "4.125" in html
    frames = re.search(r"Plotly\.addFrames\([^,]+,\s*(\[.*?\])\)", html, re.S)
    assert frames is not None  # Play needs the frames
    assert frames.group(1).count('"name":') == 7
    assert '"label":"Play"' in html.replace(" ", "")


def test_csv_round_trips():
    pts = np.random.default_rng(1).normal(size=(50, 2)) * [1e-3, 1e4]
    csv = exports.samples_csv(pts)
    assert csv.decode().splitlines()[0] == "x,y"
    back = np.loadtxt(io.BytesIO(csv), delimiter=",", skiprows=1)
    np.testing.assert_allclose(back, pts, rtol=1e-8)
    with pytest.raises(ConfigError, match=r"\(N, 2\)"):
        exports.samples_csv(np.zeros(4))
    with pytest.raises(ConfigError):
        exports.samples_csv(pts, header=("x", "=cmd()"))


@pytest.mark.parametrize(
    "name, ext, expected",
    [
        ("sampling", "png", "sampling.png"),
        ("Eight Gaussians · vp", "GIF", "Eight_Gaussians_vp.gif"),
        ("../../etc/passwd", "csv", "etc_passwd.csv"),
        (".hidden", "html", "hidden.html"),
        ("a..b", "png", "a.b.png"),
        ('<img src=x onerror="x">', "png", "img_src_x_onerror_x.png"),
        ("", "png", "scoreviz.png"),
        ("日本語", "png", "scoreviz.png"),
        ("x" * 300, "png", "x" * 80 + ".png"),
        ("ok", "p/n g", "ok.png"),
    ],
)
def test_safe_file_name(name, ext, expected):
    safe = exports.safe_file_name(name, ext)
    assert safe == expected
    assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", safe)


def test_export_error_is_shown_to_students():
    assert issubclass(exports.ExportError, ScorevizError)  # friendly_errors shows its message


def test_a_missing_kaleido_raises_a_readable_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "kaleido", None)  # `import kaleido` raises ImportError
    monkeypatch.setattr(exports, "_BROWSER", exports._Browser())
    with pytest.raises(exports.ExportError, match="Chromium"):
        exports.figure_png(go.Figure(go.Scatter(x=[1], y=[1])))


def test_a_browser_that_cannot_start_raises_instead_of_hanging(monkeypatch):
    class Broken:  # kaleido's sync server waits forever on a browser that never started
        def __init__(self, **kwargs):
            pass

        async def open(self):
            raise RuntimeError("chromium crashed")

    monkeypatch.setitem(sys.modules, "kaleido", types.SimpleNamespace(Kaleido=Broken))
    monkeypatch.setattr(exports, "_BROWSER", exports._Browser())
    started = time.monotonic()
    with pytest.raises(exports.ExportError, match="failed|Chromium"):
        exports.figure_png(go.Figure(go.Scatter(x=[1], y=[1])))
    assert time.monotonic() - started < 10


# --------------------------------------------------------------------------- through chromium


@needs_chromium
def test_concurrent_sessions_each_get_their_own_image():
    sizes = [(160 + 16 * k, 120) for k in range(6)]
    with ThreadPoolExecutor(len(sizes)) as pool:
        pngs = list(pool.map(lambda wh: exports.figure_png(animation(), *wh), sizes))
    assert [ink(p).size for p in pngs] == sizes


@needs_chromium
def test_png_is_projector_sized_and_not_blank():
    png = exports.figure_png(animation())
    img = ink(png)
    assert img.size == (1920, 1080)
    grey = np.asarray(img.convert("L"), dtype=np.float64)
    assert grey.std() > 5  # axes, points and text, not a blank page


@needs_chromium
def test_png_of_a_chosen_frame_differs_from_the_first():
    fig = animation()
    first = np.asarray(ink(exports.figure_png(fig, 640, 360, frame=0)).convert("L"))
    last = np.asarray(ink(exports.figure_png(fig, 640, 360, frame=4)).convert("L"))
    assert first.shape == (360, 640) and np.abs(first.astype(int) - last).sum() > 0


def square_panels_animation(n_frames: int = 4) -> go.Figure:
    """Two equal-aspect panels side by side (+-3), 400 px high, with a frame slider: the shape of
    the Sampling page's figure."""
    from plotly.subplots import make_subplots

    rng = np.random.default_rng(1)
    fig = make_subplots(rows=1, cols=2)
    x = rng.normal(size=(200, 2))
    for c in (1, 2):
        fig.add_trace(go.Scatter(x=x[:, 0], y=x[:, 1], mode="markers"), 1, c)
        fig.update_xaxes(range=[-3, 3], constrain="domain", row=1, col=c)
        fig.update_yaxes(range=[-3, 3], scaleanchor="x" if c == 1 else "x2", row=1, col=c)
    frames = [go.Frame(name=str(k), data=[go.Scatter(x=x[:, 0] * (1 + k), y=x[:, 1])],
                       traces=[0]) for k in range(n_frames)]  # fmt: skip
    fig.frames = frames
    fig.update_layout(**player_controls([f.name for f in frames], range(n_frames), 100),
                      height=400, margin=dict(l=50, r=10, t=30, b=80))  # fmt: skip
    return fig


def test_fitted_height_fills_the_image_with_square_panels():
    d = exports.still_figure(square_panels_animation(), 0)
    domain = d["layout"]["xaxis"]["domain"]
    panel = (domain[1] - domain[0]) * (1920 - 60)  # px wide, and as high (equal aspect)
    assert exports.fitted_height(d, 1920) == round(panel + 30 + 80)
    assert exports.fitted_height(d, 1920) < 1080  # two squares side by side: wider than 16:9
    assert exports.fitted_height(exports.still_figure(animation(), 0), 1920) == 1080  # free
    tall = exports.still_figure(square_panels_animation(), 0)
    tall["layout"]["xaxis"]["domain"] = [0, 0.9]
    assert exports.fitted_height(tall, 1920) == 1080  # at most a projector's height


@needs_chromium
def test_png_of_an_animation_is_its_last_frame_filling_the_image():
    """A lecturer pastes the result (the last frame), and the panels reach the image's bottom:
    no blank third under them (issue 20)."""
    fig = square_panels_animation()
    default = np.asarray(ink(exports.figure_png(fig, 960)).convert("L"))
    last = np.asarray(ink(exports.figure_png(fig, 960, frame=3)).convert("L"))
    first = np.asarray(ink(exports.figure_png(fig, 960, frame=0)).convert("L"))
    assert default.shape == last.shape and np.array_equal(default, last)
    assert np.abs(first.astype(int) - last).sum() > 0
    rows = np.nonzero((default < 200).any(axis=1))[0]  # rows with ink
    assert rows.max() > 0.85 * default.shape[0], (rows.max(), default.shape)


@needs_chromium
def test_gif_has_the_frames_and_the_size():
    fig = animation(n_frames=9)
    gif = exports.animation_gif(fig, fps=10, max_frames=6, width=320, height=240)
    img = Image.open(io.BytesIO(gif))
    assert img.format == "GIF" and img.size == (320, 240)
    assert img.n_frames == 6
    durations = []
    for k in range(img.n_frames):
        img.seek(k)
        durations.append(img.info["duration"])
    assert durations[0] == 100 and durations[-1] == 100 + 1500  # the last frame held
    with pytest.raises(ConfigError, match="not an animation"):
        exports.animation_gif(go.Figure(go.Scatter(x=[1], y=[1])))


# --------------------------------------------------------------------------- the Streamlit menu


def _menu_app():
    import numpy as np
    import plotly.graph_objects as go
    import streamlit as st

    from scoreviz.ui.exports import export_menu

    n = st.session_state.get("n", 3)
    fig = go.Figure(go.Scatter(x=list(range(n)), y=[1.5] * n))
    export_menu(fig, '../My "run" <1>', samples=np.ones((n, 2)), key="t")


def test_menu_is_one_click_per_format_and_builds_nothing_on_a_rerun(monkeypatch):
    """Issue 20: one click per format. Every format is a Download button at once, its data a
    callable that nothing calls on a rerun; called as Streamlit calls it (another thread, no
    script run), it builds the file from the figure it holds."""
    from streamlit.testing.v1 import AppTest

    from scoreviz.ui import exports as ui_exports

    calls = []
    real = exports.samples_csv
    monkeypatch.setattr(exports, "samples_csv", lambda p: calls.append(p) or real(p))
    at = AppTest.from_function(_menu_app, default_timeout=60).run()
    assert not at.exception
    downloads = at.get("download_button")
    labels = [d.proto.label for d in downloads]
    assert labels == ["PNG 1920×1080", "HTML (interactive, offline)", "CSV (samples)"]
    assert all(d.proto.deferred_file_id for d in downloads)  # data built on the click only
    assert not at.get("button")  # no Build step
    at.run()
    assert calls == []  # nothing built on a rerun
    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[1.5] * 3))
    build = ui_exports.builders(fig, np.ones((3, 2)), animated=False)
    assert sorted(build) == ["csv", "html", "png"]
    data = build["csv"]()  # outside a script run, like Streamlit's download thread
    assert data.decode().splitlines()[0].lower().startswith("x") and len(calls) == 1
    html = build["html"]()
    assert b"plotly" in html.lower()


def _animated_menu_app():
    from scoreviz.ui.exports import export_menu
    from tests.test_exports import animation

    export_menu(animation(n_frames=4), "forward", animated=True)


@needs_chromium
def test_menu_builds_a_gif_and_a_png():
    from streamlit.testing.v1 import AppTest

    from scoreviz.ui import exports as ui_exports

    at = AppTest.from_function(_animated_menu_app, default_timeout=120).run()
    assert [d.proto.label for d in at.get("download_button")][-1] == "GIF (animation)"
    build = ui_exports.builders(animation(n_frames=4), None, animated=True)
    gif = Image.open(io.BytesIO(build["gif"]()))
    png = Image.open(io.BytesIO(build["png"]()))
    assert gif.format == "GIF" and gif.n_frames > 1 and png.format == "PNG"


@needs_chromium
def test_the_forward_animation_makes_a_gif_and_a_last_frame_png():
    """Issue 20: the forward animation offered no GIF. The core export takes it as it is (the
    page only has to show it an Export menu: see the report's UI follow-ups)."""
    from scoreviz import pipelines
    from scoreviz.figures.forward import forward_animation_figure
    from scoreviz.problem import Problem

    view = pipelines.forward_animation_view(Problem.builtin("word", "vp_linear"), 6, 200)
    fig = forward_animation_figure(view)
    gif = Image.open(io.BytesIO(exports.animation_gif(fig, max_frames=4, width=320, height=240)))
    assert gif.format == "GIF" and gif.n_frames == 4 and gif.size == (320, 240)
    last = exports.still_figure(fig, len(fig.frames) - 1)
    assert any("t = 1.000" in a.get("text", "") for a in last["layout"]["annotations"])
    png = ink(exports.figure_png(fig, 640))  # the last frame, at its fitted height
    assert png.size[0] == 640 and 360 <= png.size[1] <= 1080
