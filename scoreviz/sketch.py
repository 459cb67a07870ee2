"""Data you draw or type: mouse strokes or a word -> standardised (N, 2) points -> a mixture.

A drawing is a list of strokes (polylines in canvas pixels, y down). It travels as a short code
(`encode_strokes`: each vertex quantised to a 1/QUANT of the canvas' larger side, delta- and
varint-encoded, base64url), so a link carries the drawing itself and every server rebuilds the
same points from it. `strokes_to_points` spreads N_DRAWN points evenly by arc length over all
strokes (a tap, a stroke shorter than the pen is wide, becomes a small disc of the pen's width
with the points of a stroke TAP_WEIGHT long), flips y up and
standardises like an upload (mean 0, unit spread sqrt(tr Cov / 2) = 1).

A word is rendered with the font Pillow bundles (`ImageFont.load_default(size)`, FreeType's
Aileron, the same on every machine with Pillow >= 10.1; Pillow's bitmap font where FreeType is
missing), thickened by a 3x3 maximum filter so thin strokes hold enough points, and N_TYPED
points are drawn uniformly inside its ink (a seeded generator: the same word gives the same
points), then standardised.

Both become a `Sketch`: the points, a label, and `key` = "drawn:<16 hex>" / "typed:<16 hex>",
the sha256 of the points themselves. The key is a content address: a model trained on it
(`TrainConfig.distribution`) names exactly these points, so models of drawn and typed data can
be shared between sessions and replicas and found again from a link, unlike uploads (private to
their session). Then the same path as uploads: `data_io.select_bandwidth` (leave-one-out) and
`data_io.reduce_components` give the exact mixture (`to_distribution`).

Every failure raises `DataError` with a message for the student (empty drawing, a word too long
or with characters the font cannot draw, a damaged link code). No Streamlit here.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from scoreviz.data_io import reduce_components, select_bandwidth
from scoreviz.errors import DataError
from scoreviz.mixture import GaussianMixture

N_DRAWN = 600  # points along the strokes: spacing ~0.02 on a shape of unit spread
N_TYPED = 1000  # points inside the glyphs (an area needs more than a line)
QUANT = 4096  # a stroke's vertices on a 4096-step grid of the canvas' larger side
MAX_STROKES = 60
MAX_VERTICES = 3000  # after simplification; a code of ~2 bytes a vertex stays a short link
MAX_CODE_CHARS = 8000
MIN_EXTENT = 0.02  # of the canvas: a drawing smaller than this is a smudge, not a shape
PEN_WIDTH = 0.02  # of the canvas' larger side: a tap's disc; a stroke shorter than it is a tap
# A tap weighs like a stroke this long (of the larger side): as much as its pen width made an eye
# of a drawn face 0.75 % of the points, a mode too small to see; 0.08 gives it ~3 %.
TAP_WEIGHT = 0.08
WORD_MAX_CHARS = 12
WORD_FONT_PX = 96
WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -+=!?.&#*%@")
CODE_VERSION = "1"
_CODE = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True, eq=False)
class Sketch:
    """Drawn or typed data: `points` (N, 2) float64, read-only, mean 0 and unit spread."""

    kind: str  # "drawn" | "typed"
    source: str  # the drawing's code (`encode_strokes`) or the word
    points: np.ndarray
    sha: str  # sha256 of the points, 16 hex digits
    label: str  # "Drawn: 3 strokes", "Typed: SCORE"

    @property
    def key(self) -> str:
        """The data key models and caches know it by: "drawn:<sha>" / "typed:<sha>"."""
        return f"{self.kind}:{self.sha}"

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])


# --------------------------------------------------------------------------- strokes
def canvas_strokes(json_data: dict | None) -> list[np.ndarray]:
    """The freehand strokes of a Fabric.js canvas (streamlit-drawable-canvas's `json_data`) as
    polylines (K, 2) in canvas pixels, placed by each object's transform (move, scale, rotate
    with the canvas' edit tool); objects other than paths are ignored. A freehand path is
    M, then quadratic Béziers (Q: control point = a mouse position, end = the midpoint to the
    next), then L: each curve contributes its points at t = 1/4, 1/2, 3/4, 1."""
    objects = (json_data or {}).get("objects") or []
    out = []
    for obj in objects:
        if not isinstance(obj, dict) or str(obj.get("type", "")).lower() != "path":
            continue
        xy = _path_points(obj.get("path") or [])
        xy = xy[np.isfinite(xy).all(1)]
        if len(xy):
            out.append(_placed(xy, obj))
    return out


_Q_T = np.array([0.25, 0.5, 0.75, 1.0])[:, None]


def _path_points(path: list) -> np.ndarray:
    """The vertices of a Fabric path's M / L / Q commands (others: their last point), (K, 2)."""
    pts: list[np.ndarray] = []
    here = None
    for cmd in path:
        if not (isinstance(cmd, list) and len(cmd) >= 3):
            continue
        try:
            nums = np.array([float(v) for v in cmd[1:]], dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if str(cmd[0]).upper() == "Q" and len(nums) >= 4 and here is not None:
            c, end = nums[0:2], nums[2:4]
            pts.append((1 - _Q_T) ** 2 * here + 2 * (1 - _Q_T) * _Q_T * c + _Q_T**2 * end)
        else:
            end = nums[-2:] if len(nums) % 2 == 0 else nums[:2]
            pts.append(end[None, :])
        here = pts[-1][-1]
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def _placed(xy: np.ndarray, obj: dict) -> np.ndarray:
    """Path coordinates -> canvas coordinates by the object's transform (Fabric: the object's
    centre is (left, top) shifted by its origin; the path is centred on its bounding box)."""
    sx = float(obj.get("scaleX", 1) or 1) * (-1 if obj.get("flipX") else 1)
    sy = float(obj.get("scaleY", 1) or 1) * (-1 if obj.get("flipY") else 1)
    angle = math.radians(float(obj.get("angle", 0) or 0))
    box_centre = (xy.min(0) + xy.max(0)) / 2
    stroke = float(obj.get("strokeWidth", 0) or 0)
    size = np.array([float(obj.get("width", 0) or 0), float(obj.get("height", 0) or 0)]) + stroke
    size *= np.abs([sx, sy])
    origin = {"left": 0.0, "center": 0.5, "right": 1.0, "top": 0.0, "bottom": 1.0}
    shift = np.array(
        [0.5 - origin.get(obj.get("originX", "center"), 0.5),
         0.5 - origin.get(obj.get("originY", "center"), 0.5)]
    ) * size  # fmt: skip
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = np.array([float(obj.get("left", 0) or 0), float(obj.get("top", 0) or 0)])
    centre = centre + rot @ shift
    return centre + ((xy - box_centre) * [sx, sy]) @ rot.T


def encode_strokes(strokes: list[np.ndarray], width: float, height: float) -> str:
    """Strokes (canvas pixels, a `width` x `height` canvas) as a URL-safe code: version, then
    per stroke its vertex count and the deltas of its quantised vertices (zigzag varints),
    base64url without padding. Vertices are quantised to QUANT steps of the larger side and
    simplified (Ramer-Douglas-Peucker, tolerance 1/2000 of the larger side: only what a
    straight line already says). DataError when
    nothing usable is drawn or the drawing is too detailed for a link."""
    side = float(max(width, height))
    if not side > 0:
        raise DataError("The canvas has no size.")
    out = bytearray()
    kept = 0
    for s in strokes[:MAX_STROKES]:
        q = np.clip(np.rint(np.asarray(s, dtype=np.float64) / side * (QUANT - 1)), 0, QUANT - 1)
        q = _simplify(_dedupe(q.astype(np.int64)), QUANT / 2000)
        if not len(q):
            continue
        kept += 1
        out += _varint(len(q))
        for v in np.diff(q, axis=0, prepend=np.zeros((1, 2), np.int64)).ravel():
            out += _varint((int(v) << 1) ^ (int(v) >> 63))  # zigzag
    if not kept:
        raise DataError("Nothing is drawn yet: draw a shape with the mouse (a few strokes).")
    if len(strokes) > MAX_STROKES:
        raise DataError(f"At most {MAX_STROKES} strokes, please (this drawing has {len(strokes)}).")
    return CODE_VERSION + base64.urlsafe_b64encode(bytes(out)).decode().rstrip("=")


def decode_strokes(code: str) -> list[np.ndarray]:
    """The strokes of a code (`encode_strokes`) as polylines (K, 2) on the unit square
    (x right, y down); DataError for anything that is not such a code."""
    bad = DataError("This link's drawing is damaged: draw the shape again.")
    code = str(code)
    if not (0 < len(code) <= MAX_CODE_CHARS and code[:1] == CODE_VERSION):
        raise bad
    body = code[1:]
    if not _CODE.fullmatch(body):
        raise bad
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, TypeError):
        raise bad from None
    values, pos = [], 0
    while pos < len(raw):
        v, pos = _read_varint(raw, pos)
        if v is None:
            raise bad
        values.append(v)
    strokes, i, total = [], 0, 0
    while i < len(values):
        n = values[i]
        total += n
        if n < 1 or total > MAX_VERTICES or len(strokes) >= MAX_STROKES:
            raise bad
        d = np.array(values[i + 1 : i + 1 + 2 * n], dtype=np.int64)
        if len(d) != 2 * n:
            raise bad
        q = np.cumsum(((d >> 1) ^ -(d & 1)).reshape(-1, 2), axis=0)
        if (q < 0).any() or (q >= QUANT).any():
            raise bad
        strokes.append(q / (QUANT - 1))
        i += 1 + 2 * n
    if not strokes:
        raise bad
    return strokes


def strokes_to_points(strokes: list[np.ndarray], n: int = N_DRAWN) -> np.ndarray:
    """`n` points spread evenly by arc length over the strokes (unit-square coordinates, y
    down), at the middle of n equal pieces of the total length; a stroke shorter than the pen
    width is a tap: a disc of that width with the points of a stroke TAP_WEIGHT long, on a
    sunflower spiral inside it.
    Returns (n, 2) raw points (y down); DataError for a smudge."""
    pen = PEN_WIDTH
    lengths = np.array([_length(s) for s in strokes])
    dots = lengths < pen
    weights = np.where(dots, TAP_WEIGHT, lengths)
    counts = _split_count(n, weights)
    parts = []
    for s, dot, k in zip(strokes, dots, counts, strict=True):
        if k:
            parts.append(_disc(s.mean(0), pen / 2, k) if dot else _along(s, k))
    pts = np.concatenate(parts)
    extent = float(np.ptp(pts, axis=0).max())
    if extent < MIN_EXTENT:
        raise DataError(
            "The drawing is too small to be a distribution: draw a larger shape, or several "
            "dots apart."
        )
    return pts


def from_code(code: str, n: int = N_DRAWN) -> Sketch:
    """The drawn data of a drawing's code: points along its strokes, y up, standardised."""
    strokes = decode_strokes(code)
    raw = strokes_to_points(strokes, n) * [1.0, -1.0]
    k = len(strokes)
    return _sketch("drawn", code, raw, f"Drawn: {k} stroke{'s' * (k != 1)}")


def shape_sample(code: str, n: int, seed: int = 0) -> np.ndarray:
    """n random points of the drawn shape itself, in the frame of `from_code(code).points`:
    uniform by arc length along the strokes, a tap uniform in its disc (with a tap's weight).
    Held-out points: W2 of the evenly spaced points, or of the mixture's samples, against them
    is compared with W2 of another such sample (the two-sample floor). (n, 2)."""
    strokes = decode_strokes(code)
    even = strokes_to_points(strokes) * [1.0, -1.0]
    centre = even.mean(0)
    spread = math.sqrt(float(((even - centre) ** 2).sum(1).mean()) / 2)
    lengths = np.array([_length(s) for s in strokes])
    dots = lengths < PEN_WIDTH
    weights = np.where(dots, TAP_WEIGHT, lengths)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, weights / weights.sum())
    parts = []
    for s, dot, k in zip(strokes, dots, counts, strict=True):
        if dot:
            r, a = PEN_WIDTH / 2 * np.sqrt(rng.random(k)), rng.random(k) * 2 * math.pi
            parts.append(s.mean(0) + np.stack([r * np.cos(a), r * np.sin(a)], 1))
        else:
            cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(s, axis=0).T))])
            at = rng.random(k) * cum[-1]
            parts.append(np.stack([np.interp(at, cum, s[:, 0]), np.interp(at, cum, s[:, 1])], 1))
    x = np.concatenate(parts)[rng.permutation(n)]  # in random order: any slice is a sample
    return (x * [1.0, -1.0] - centre) / spread


def from_canvas(json_data: dict | None, width: float, height: float) -> Sketch:
    """The drawn data of a canvas (`canvas_strokes` -> `encode_strokes` -> `from_code`): the
    code, not the raw strokes, defines the points, so a link rebuilds exactly these."""
    return from_code(encode_strokes(canvas_strokes(json_data), width, height))


# --------------------------------------------------------------------------- words
def check_word(text: str) -> str:
    """The word to render (surrounding spaces stripped); DataError with what to change."""
    word = " ".join(str(text).split())
    if not word:
        raise DataError(f"Type a word (1 to {WORD_MAX_CHARS} characters).")
    if len(word) > WORD_MAX_CHARS:
        raise DataError(
            f"“{word[:WORD_MAX_CHARS]}…” is {len(word)} characters long; at most "
            f"{WORD_MAX_CHARS} fit the picture."
        )
    bad = sorted({c for c in word if c not in WORD_CHARS})
    if bad:
        shown = " ".join(repr(c) if c.isprintable() else f"U+{ord(c):04X}" for c in bad[:5])
        raise DataError(
            f"The font cannot draw {shown}: use letters A-Z and a-z, digits, spaces and "
            "- + = ! ? . & # * % @."
        )
    return word


def glyph_mask(word: str) -> np.ndarray:
    """The rendered word as a boolean ink mask (H, W), row 0 at the top, cropped to the ink
    with a margin; thickened by a 3x3 maximum filter."""
    font = _font()
    left, top, right, bottom = font.getbbox(word)
    pad = 8
    img = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(img).text((pad - left, pad - top), word, fill=255, font=font)
    img = img.filter(ImageFilter.MaxFilter(3))
    return np.asarray(img) > 127


def word_to_points(word: str, n: int = N_TYPED, seed: int = 0) -> np.ndarray:
    """`n` points uniform inside the glyphs of `word` (checked by `check_word`): ink pixels
    drawn at random (seeded), each point uniform within its pixel. Pixel coordinates (x right,
    y down, a pixel's centre at +0.5); (n, 2)."""
    mask = glyph_mask(check_word(word))
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        raise DataError("This word has no ink to draw points from: type letters or digits.")
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(rows), size=n)
    jitter = rng.random((n, 2))
    return np.stack([cols[pick], rows[pick]], 1).astype(np.float64) + jitter


def from_word(text: str, n: int = N_TYPED) -> Sketch:
    """The typed data of a word: points inside its glyphs, y up, standardised."""
    word = check_word(text)
    raw = word_to_points(word, n) * [1.0, -1.0]
    return _sketch("typed", word, raw, f"Typed: {word}")


# --------------------------------------------------------------------------- to a mixture
def to_distribution(sketch: Sketch) -> tuple[float, GaussianMixture]:
    """(h, mixture): the smoothing width chosen by leave-one-out likelihood and the exact
    mixture of the points smoothed by it, as for an upload (`data_io`)."""
    h = select_bandwidth(sketch.points)
    return h, reduce_components(sketch.points, h)


# --------------------------------------------------------------------------- helpers
def _sketch(kind: str, source: str, raw: np.ndarray, label: str) -> Sketch:
    centre = raw.mean(0)
    d = raw - centre
    spread = math.sqrt(float((d**2).sum(1).mean()) / 2)
    points = np.ascontiguousarray(d / spread)
    points.setflags(write=False)
    sha = hashlib.sha256(np.round(points, 9).tobytes()).hexdigest()[:16]
    return Sketch(kind, source, points, sha, label)


@functools.cache
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at WORD_FONT_PX (FreeType), else its bitmap font."""
    try:
        return ImageFont.load_default(size=WORD_FONT_PX)
    except (ImportError, OSError, TypeError):  # Pillow without FreeType
        return ImageFont.load_default()


def _dedupe(q: np.ndarray) -> np.ndarray:
    """Consecutive repeated vertices dropped (a stroke keeps at least one)."""
    if len(q) < 2:
        return q
    keep = np.ones(len(q), bool)
    keep[1:] = (np.diff(q, axis=0) != 0).any(1)
    return q[keep]


def _simplify(q: np.ndarray, tol: float) -> np.ndarray:
    """Ramer-Douglas-Peucker: the vertices needed to stay within `tol` of the polyline
    (iterative, a stack of index ranges; each pass is vectorised over its range)."""
    if len(q) < 3:
        return q
    keep = np.zeros(len(q), bool)
    keep[[0, -1]] = True
    stack = [(0, len(q) - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        seg = (q[b] - q[a]).astype(np.float64)
        rel = (q[a + 1 : b] - q[a]).astype(np.float64)
        norm = math.hypot(*seg)
        dist = (
            np.abs(rel[:, 0] * seg[1] - rel[:, 1] * seg[0]) / norm
            if norm > 0
            else np.hypot(rel[:, 0], rel[:, 1])
        )
        i = int(dist.argmax())
        if dist[i] > tol:
            keep[a + 1 + i] = True
            stack += [(a, a + 1 + i), (a + 1 + i, b)]
    return q[keep]


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte, v = v & 0x7F, v >> 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _read_varint(raw: bytes, pos: int) -> tuple[int | None, int]:
    value, shift = 0, 0
    while pos < len(raw) and shift <= 28:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None, pos


def _length(s: np.ndarray) -> float:
    return float(np.hypot(*np.diff(s, axis=0).T).sum()) if len(s) > 1 else 0.0


def _split_count(n: int, weights: np.ndarray) -> np.ndarray:
    """n split in proportion to `weights` (largest remainders), summing to n exactly."""
    share = n * weights / weights.sum()
    counts = np.floor(share).astype(int)
    rest = n - counts.sum()
    counts[np.argsort(counts - share, kind="stable")[:rest]] += 1
    return counts


def _along(s: np.ndarray, k: int) -> np.ndarray:
    """k points at the middles of k equal pieces of the polyline s (by arc length)."""
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(s, axis=0).T))])
    at = (np.arange(k) + 0.5) * cum[-1] / k
    return np.stack([np.interp(at, cum, s[:, 0]), np.interp(at, cum, s[:, 1])], 1)


def _disc(centre: np.ndarray, radius: float, k: int) -> np.ndarray:
    """k points filling a disc evenly (Vogel's sunflower spiral)."""
    i = np.arange(k) + 0.5
    r = radius * np.sqrt(i / k)
    a = i * math.pi * (3 - math.sqrt(5))
    return centre + np.stack([r * np.cos(a), r * np.sin(a)], 1)
