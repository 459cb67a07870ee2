"""Exports for a lecture: any figure as a projector PNG or a standalone HTML page, an animation
as a GIF, sample points as CSV. Pure functions returning bytes; no Streamlit.

    png = figure_png(fig)                       # 1920-wide PNG, an animation's last frame
    gif = animation_gif(fig, fps=8)             # <= 30 of its frames (first and last kept)
    html = figure_html(fig)                     # one file with plotly.js: offline, Play works
    csv = samples_csv(points)                   # (N, 2) -> "x,y" lines

PNG and GIF drive Debian's /usr/bin/chromium through kaleido 1.x. One kaleido browser is opened
on first use and kept for the life of the process (a cold start costs ~3-5 s, each later image
~0.3 s plus the figure's rendering). It runs in its own thread and event loop, like
`kaleido.start_sync_server()`, but with two guarantees that server lacks (kaleido 1.5): a browser
that cannot start raises here instead of hanging every later call forever, and concurrent
sessions each get their own image (its shared return queue can hand one session's bytes to
another). MathJax is off: no CDN request, the app runs offline.

A still of an animation (`still_figure`) applies one frame's data and layout to the base figure,
drops the frames, the Play button and the slider, and writes the slider's label for that frame
("t = 0.340") in the bottom-right corner, so each PNG/GIF frame says where it is.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import io
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from scoreviz.analysis import evenly_spaced
from scoreviz.errors import ConfigError, ScorevizError
from scoreviz.figures.style import filled_height

CHROMIUM = Path("/usr/bin/chromium")
PROJECTOR = (1920, 1080)  # width, height of a PNG export, in pixels
GIF_MAX_FRAMES = 60  # hard bound: each frame is one browser render (~0.3-3 s)
GIF_MIN_FRAMES = 10  # fewer would not show the motion
GIF_MAX_SIDE = 1600  # px: bounds a GIF's memory and file size
START_TIMEOUT_S = 60.0  # opening chromium, on a busy 2-core box
RENDER_TIMEOUT_S = 120.0  # one call (a whole GIF's frames)
TABS = 1  # chromium tabs: 2 were not reliably faster on the busy 2-core server, and cost memory
RELOAD_EVERY = 50  # images between reloads of a tab's page (kaleido reloads after every one)


class ExportError(ScorevizError, RuntimeError):
    """An image could not be made (browser missing or failing); the message says what to do."""


# --------------------------------------------------------------------------- kaleido browser


class _Browser:
    """One kaleido browser in a daemon thread's event loop, opened lazily, reopened if it fails."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kaleido = None

    def _open(self):
        try:
            import kaleido  # here: optional (PNG/GIF only), and it starts a browser
        except ImportError as exc:
            raise ExportError(_MISSING) from exc
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="scoreviz-kaleido", daemon=True).start()
        path = str(CHROMIUM) if CHROMIUM.exists() else None

        async def start():
            k = _fast_kaleido(kaleido)(n=TABS, timeout=RENDER_TIMEOUT_S, mathjax=False, path=path)
            await k.open()
            return k

        try:
            k = asyncio.run_coroutine_threadsafe(start(), loop).result(START_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - any failure to start means no images
            loop.call_soon_threadsafe(loop.stop)
            missing = not CHROMIUM.exists() or type(exc).__name__ == "ChromeNotFoundError"
            raise ExportError(_MISSING if missing else _FAILED) from exc
        self._loop, self._kaleido = loop, k
        atexit.register(self._forget, k)  # close Chromium with the process, leave no orphan

    def render(self, figs: Sequence[dict], opts: dict) -> list[bytes]:
        """PNG bytes of each figure dict, in order (queued to the browser's tabs at once)."""
        with self._lock:  # opening (or reopening) happens once, not once per waiting session
            if self._kaleido is None:
                self._open()
            loop, k = self._loop, self._kaleido

        async def all_images():
            return await asyncio.gather(*(k.calc_fig(f, opts=opts) for f in figs))

        future = asyncio.run_coroutine_threadsafe(all_images(), loop)
        try:
            return list(future.result(RENDER_TIMEOUT_S))
        except Exception as exc:  # noqa: BLE001 - a timeout or a browser error alike
            future.cancel()
            self._forget(k)
            raise ExportError(_FAILED) from exc

    def _forget(self, k) -> None:
        """Drop a browser that failed, so that the next export opens a fresh one."""
        with self._lock:
            if self._kaleido is not k:
                return
            loop, self._loop, self._kaleido = self._loop, None, None
        closing = asyncio.run_coroutine_threadsafe(k.close(), loop)
        try:
            closing.result(10)
        except Exception:  # noqa: BLE001 - a browser that failed may not close cleanly
            pass
        loop.call_soon_threadsafe(loop.stop)


def _fast_kaleido(kaleido):
    """kaleido.Kaleido without its page reload after every image, where this version allows.

    The reload re-parses plotly.js (~4.7 MB) each time: skipping it halved a 26-frame GIF
    (measured). It is only hygiene: the page renders each figure with `Plotly.toImage`, which
    draws in a temporary element and purges it. So a tab is reloaded every RELOAD_EVERY images.
    """
    base = kaleido.Kaleido
    if not hasattr(base, "_return_kaleido_tab"):
        return base  # another kaleido version: keep its behaviour

    class Kaleido(base):
        _served = 0

        async def _return_kaleido_tab(self, tab) -> None:
            self._served += 1
            if self._served % RELOAD_EVERY == 0 or not hasattr(self, "tabs_ready"):
                return await super()._return_kaleido_tab(tab)
            await self.tabs_ready.put(tab)

    return Kaleido


_MISSING = (
    "Image export needs the Chromium browser and the kaleido package on the server "
    "(Debian: `apt-get install chromium`; `pip install kaleido`). "
    "The HTML export works without them."
)
_FAILED = (
    "The browser that draws the images failed or took too long. Try again; "
    "for a GIF, fewer frames or a smaller size help. The HTML export always works."
)
_BROWSER = _Browser()


def render_pngs(figs: Sequence[dict | go.Figure], width: int, height: int, scale=1) -> list[bytes]:
    """PNG bytes of each figure at width x height CSS pixels (times `scale`), in order."""
    opts = dict(format="png", width=int(width), height=int(height), scale=scale)
    return _BROWSER.render([f if isinstance(f, dict) else f.to_dict() for f in figs], opts)


# --------------------------------------------------------------------------- stills of animations


def _merge(base: dict, patch: dict) -> dict:
    """`base` updated by `patch` as Plotly.animate does: nested dicts merged, the rest replaced."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _frame_label(layout: dict, index: int) -> str | None:
    """The slider's text for frame `index` ("t = 0.340"), or None without a slider."""
    sliders = layout.get("sliders") or []
    steps = sliders[0].get("steps", []) if sliders else []
    if index >= len(steps):
        return None
    prefix = sliders[0].get("currentvalue", {}).get("prefix", "")
    return f"{prefix}{steps[index].get('label', '')}"


def _label_annotation(text: str) -> dict:
    """The frame label, bottom right below the plots (where the slider was)."""
    return dict(
        text=text, x=1, y=0, xref="paper", yref="paper", xanchor="right", yanchor="top",
        yshift=-48, showarrow=False, font=dict(size=18),
    )  # fmt: skip


def n_frames(fig: go.Figure | dict) -> int:
    """Number of animation frames (0 for a static figure)."""
    return len(fig.get("frames") or []) if isinstance(fig, dict) else len(fig.frames or ())


def still_figure(fig: go.Figure | dict, index: int = 0) -> dict:
    """Figure dict of animation frame `index`: its data and layout applied, no frames, no Play
    button or slider, the slider's label for the frame written bottom right. A static figure
    (no frames) comes back unchanged, as a dict, for index 0."""
    d = fig if isinstance(fig, dict) else fig.to_dict()
    frames = d.get("frames") or []
    if not frames:
        if index != 0:
            raise ConfigError("This figure has no animation frames: only frame 0 exists.")
        return d
    if not 0 <= index < len(frames):
        raise ConfigError(f"Frame {index} does not exist: the animation has {len(frames)}.")
    return _apply_frame(d, frames[index], index)


def _apply_frame(d: dict, frame: dict, index: int) -> dict:
    data = list(d.get("data", []))
    targets = frame.get("traces") or range(len(frame.get("data", [])))
    for i, patch in zip(targets, frame.get("data", []), strict=False):  # as plotly.js
        data[i] = _merge(data[i], {k: v for k, v in patch.items() if k != "type"})
    layout = _merge(d.get("layout", {}), frame.get("layout") or {})
    label = _frame_label(layout, index)
    layout = {k: v for k, v in layout.items() if k not in ("sliders", "updatemenus")}
    if label:
        layout["annotations"] = [*layout.get("annotations", []), _label_annotation(label)]
    return {"data": data, "layout": layout}


# --------------------------------------------------------------------------- the exports


def figure_png(
    fig: go.Figure | dict, width: int = PROJECTOR[0], height: int | None = None, scale=1,
    frame: int | None = None,
) -> bytes:  # fmt: skip
    """PNG bytes of `fig` at width x height pixels (x scale; default 1920 wide, a projector).

    An animation shows frame `frame` (default the last: the result a slide shows; 0 is the
    start), as `still_figure` draws it. height None: the height at which the figure's
    equal-aspect panels fill the image (`fitted_height`, at most PROJECTOR[1] = 1080), so a wide
    row of square panels leaves no blank band under it. Raises ExportError if Chromium or
    kaleido is missing or fails.
    """
    d = fig if isinstance(fig, dict) else fig.to_dict()
    frames = n_frames(d)
    still = still_figure(d, frames - 1 if frame is None and frames else frame or 0)
    height = fitted_height(still, width) if height is None else height
    _check_size(width, height)
    return render_pngs([still], width, height, scale)[0]


def fitted_height(fig: dict, width: int, most: int = PROJECTOR[1], least: int = 360) -> int:
    """The image height (px, in [least, most]) at which a figure `width` px wide has no blank
    band above or below its equal-aspect panels (`style.filled_height`); `most` for a figure
    without such panels (its panels stretch to any height)."""
    needed = filled_height(fig, width)
    return most if needed is None else int(np.clip(round(needed), least, most))


def figure_html(fig: go.Figure) -> bytes:
    """A standalone UTF-8 HTML page of `fig`: plotly.js inlined (~4.7 MB, works offline),
    animation frames and the Play button kept, zoom and hover as in the app."""
    html = fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False)
    return html.encode("utf-8")


def gif_frames(total: int, max_frames: int) -> np.ndarray:
    """Indices of the frames a GIF shows: at most max_frames, evenly spaced, first and last."""
    if not 1 <= max_frames <= GIF_MAX_FRAMES:
        raise ConfigError(f"A GIF holds 1 to {GIF_MAX_FRAMES} frames, not {max_frames}.")
    return evenly_spaced(total, max_frames)


def drawn_points(fig: dict) -> int:
    """Number of x values over the traces of a figure dict (what the browser draws, roughly)."""
    total = 0
    for trace in fig.get("data", []):
        x = trace.get("x")
        if isinstance(x, dict) and "bdata" in x:  # plotly's base64 typed array
            total += len(base64.b64decode(x["bdata"])) // np.dtype(x["dtype"]).itemsize
        elif x is not None:
            total += len(x)
    return total


def animation_gif(
    fig: go.Figure | dict, fps: float = 8.0, max_frames: int = 30, width: int = 960,
    height: int | None = None, hold_last_s: float = 1.5, max_points: int | None = None,
) -> bytes:  # fmt: skip
    """An animated GIF (looping) of the animation's frames, as Play shows them.

    At most `max_frames` (<= 60) frames, evenly spaced with the first and the last; `fps` frames
    per second, the last held `hold_last_s` longer so the result can be read. Size width x
    height pixels; height None keeps the figure's own height (its layout.height, else 540).
    Frames are rendered in one call to the browser (no page reload between them), then share
    one 256-colour palette (the first frame's, so colours do not flicker). Raises ConfigError
    for a figure without frames or bad sizes, ExportError if the browser fails.

    max_points bounds the time: a frame's render grows with the points it draws (~0.4 s per
    1,000 on the busy 2-core server), so at most max_points // (points of frame 0) frames are
    drawn (at least GIF_MIN_FRAMES).
    """
    d = fig if isinstance(fig, dict) else fig.to_dict()
    total = n_frames(d)
    if total == 0:
        raise ConfigError("This figure is not an animation: it has no frames to put in a GIF.")
    if not 0 < fps <= 50:
        raise ConfigError(f"A GIF plays 0 to 50 frames per second, not {fps}.")
    height = height or int(d.get("layout", {}).get("height") or 540)
    _check_size(width, height, GIF_MAX_SIDE)
    if max_points is not None:
        per_frame = max(1, drawn_points(still_figure(d, 0)))
        max_frames = min(max_frames, max(GIF_MIN_FRAMES, max_points // per_frame))
    stills = [still_figure(d, int(k)) for k in gif_frames(total, max_frames)]
    pngs = render_pngs(stills, width, height)
    return assemble_gif(pngs, 1000.0 / fps, hold_last_s * 1000.0)


def assemble_gif(pngs: Sequence[bytes], frame_ms: float, hold_last_ms: float = 0.0) -> bytes:
    """GIF bytes (looping) from PNG frames of one size, all on the first frame's palette."""
    frames = [Image.open(io.BytesIO(b)).convert("RGB") for b in pngs]
    first = frames[0].quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    paletted = [first] + [f.quantize(palette=first, dither=Image.Dither.NONE) for f in frames[1:]]
    durations = [round(frame_ms)] * len(paletted)
    durations[-1] += round(hold_last_ms)
    buf = io.BytesIO()
    paletted[0].save(
        buf, format="GIF", save_all=True, append_images=paletted[1:], duration=durations,
        loop=0, optimize=False, disposal=1,
    )  # fmt: skip
    return buf.getvalue()


def samples_csv(points: np.ndarray, header: Sequence[str] = ("x", "y")) -> bytes:
    """UTF-8 CSV of points (N, D) with one header line; 9 significant digits (float32-exact).

    Read back with `np.loadtxt(io.BytesIO(csv), delimiter=",", skiprows=1)`.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != len(header):
        raise ConfigError(f"CSV export needs points of shape (N, {len(header)}), not {pts.shape}.")
    if any(not re.fullmatch(r"[A-Za-z0-9_ .()-]+", h) for h in header):
        raise ConfigError(f"CSV column names must be plain words, not {list(header)}.")
    buf = io.StringIO()
    np.savetxt(buf, pts, fmt="%.9g", delimiter=",", header=",".join(header), comments="")
    return buf.getvalue().encode("utf-8")


def safe_file_name(name: str, ext: str, fallback: str = "scoreviz") -> str:
    """`name` made a safe download file name "<stem>.<ext>": only [A-Za-z0-9_.-], no leading dot
    (no hidden files, no "..": no path at all), at most 80 characters before the extension."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._-")
    stem = re.sub(r"\.{2,}", ".", stem)[:80].strip("._-")
    return f"{stem or fallback}.{re.sub(r'[^a-z0-9]', '', ext.lower()) or 'bin'}"


def _check_size(width: int, height: int, max_side: int = 4096) -> None:
    if not (16 <= width <= max_side and 16 <= height <= max_side):
        raise ConfigError(
            f"Image size must be 16 to {max_side} pixels a side, not {width}x{height}."
        )


__all__ = [
    "ExportError", "animation_gif", "assemble_gif", "drawn_points", "figure_html", "figure_png",
    "gif_frames", "n_frames", "render_pngs", "safe_file_name", "samples_csv", "still_figure",
]  # fmt: skip
