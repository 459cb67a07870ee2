"""Built-in 2D toy distributions, each an exact Gaussian mixture scaled to unit spread.

Curves (moons, spirals, rings, swiss roll, pinwheel arms) are chains of small Gaussians placed
closer than their width, so the density is a smooth band; areas (checkerboard squares, the ink of
a word) are filled grids of Gaussians. Because every one is a `GaussianMixture`, its log-density,
score and optimal denoiser are exact at every noise level.

`DISTRIBUTIONS` maps registry name -> (display label, builder); `get_distribution(name)` builds
(and caches) one, scaled so that sqrt(tr Cov / 2) = 1 and centred at 0.

Every built-in has natural classes (`CLASSES`: name -> a function giving each component's class
and the class names): each Gaussian of the ring, each row of the grid, each moon, ring, spiral arm,
pinwheel arm, square of the checkerboard, letter of the word, each third of the swiss roll. So
p(x | c) and p(x) are both exact mixtures (`GaussianMixture.given`, `class_weights`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache, lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from scoreviz.errors import unknown_key
from scoreviz.mixture import GaussianMixture, empirical

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]  # means (K, 2), stds (K,), weights (K,)


def _chain(points: np.ndarray, width: float) -> Arrays:
    """Equal-weight chain of Gaussians of std `width` at `points` (K, 2)."""
    k = len(points)
    return points, np.full(k, width), np.ones(k)


def _arc_points(curve: Callable[[np.ndarray], np.ndarray], n: int) -> np.ndarray:
    """n points evenly spaced in arc length along curve(u), u in [0, 1]."""
    u = np.linspace(0, 1, 4000)
    p = curve(u)
    s = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    return curve(np.interp(np.linspace(0, s[-1], n), s, u))


def eight_gaussians() -> Arrays:
    ang = np.arange(8) * 2 * np.pi / 8
    return np.stack([np.cos(ang), np.sin(ang)], 1) * 2.0, np.full(8, 0.2), np.ones(8)


def grid() -> Arrays:
    g = np.linspace(-2, 2, 5)
    xx, yy = np.meshgrid(g, g)
    return np.stack([xx.ravel(), yy.ravel()], 1), np.full(25, 0.15), np.ones(25)


def skewed() -> Arrays:
    """Two well-separated modes with weights 0.8 / 0.2: plain Langevin gets these weights wrong."""
    return np.array([[1.5, 0.0], [-1.5, 0.0]]), np.array([0.35, 0.35]), np.array([0.8, 0.2])


def two_moons() -> Arrays:
    def upper(u):
        a = np.pi * u
        return np.stack([np.cos(a), np.sin(a)], 1)

    def lower(u):
        a = np.pi * u
        return np.stack([1 - np.cos(a), 0.5 - np.sin(a)], 1)

    pts = np.concatenate([_arc_points(upper, 60), _arc_points(lower, 60)]) - [0.5, 0.25]
    return _chain(pts, 0.07)


def swiss_roll() -> Arrays:
    def curve(u):
        a = 1.5 * np.pi * (1 + 2 * u)
        return np.stack([a * np.cos(a), a * np.sin(a)], 1) / 10

    return _chain(_arc_points(curve, 160), 0.06)


def rings() -> Arrays:
    pts, widths = [], []
    for r, n in ((0.6, 40), (1.4, 90)):
        a = np.arange(n) * 2 * np.pi / n
        pts.append(r * np.stack([np.cos(a), np.sin(a)], 1))
        widths.append(np.full(n, 0.06))
    return np.concatenate(pts), np.concatenate(widths), np.ones(130)


def two_spirals() -> Arrays:
    def arm(sign):
        def curve(u):
            a = np.pi * (0.3 + 2.7 * u)
            return sign * np.stack([a * np.cos(a), a * np.sin(a)], 1) / 4

        return _arc_points(curve, 110)

    return _chain(np.concatenate([arm(1), arm(-1)]), 0.07)


def checkerboard() -> Arrays:
    """8 filled squares of a 4x4 board; each square a 5x5 grid of Gaussians (near-uniform)."""
    cells = [(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0]
    sub = (np.arange(5) + 0.5) / 5
    su, sv = np.meshgrid(sub, sub)
    off = np.stack([su.ravel(), sv.ravel()], 1)
    pts = np.concatenate([off + [i, j] for i, j in cells]) - 2.0
    return _chain(pts, 0.1)


def pinwheel() -> Arrays:
    """Five curved arms (the classic pinwheel: radial stretch, rotation growing with radius)."""
    pts = []
    for arm in range(5):
        r = np.linspace(0.25, 1.6, 30)
        a = arm * 2 * np.pi / 5 + 0.55 * r**1.3
        pts.append(np.stack([r * np.cos(a), r * np.sin(a)], 1))
    pts = np.concatenate(pts)
    widths = 0.05 + 0.05 * np.linalg.norm(pts, axis=1)
    return pts, widths, np.ones(len(pts))


@lru_cache(maxsize=8)
def text_points(text: str = "SCORE", max_points: int = 700) -> np.ndarray:
    """Ink pixels of `text` rendered with Pillow's built-in font, as (K, 2) points (y up)."""
    font = ImageFont.load_default(size=48)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(img).text((4 - left, 4 - top), text, fill=255, font=font)
    arr = np.asarray(img)[::2, ::2] > 127
    ys, xs = np.nonzero(arr)
    pts = np.stack([xs, -ys], 1).astype(np.float64)
    if len(pts) > max_points:
        pts = pts[np.linspace(0, len(pts) - 1, max_points).astype(int)]
    return pts


def word() -> Arrays:
    pts = text_points()
    spacing = 2.0 if len(pts) < 700 else 3.0
    return _chain(pts, 0.6 * spacing)


def _standardise(
    means: np.ndarray, stds: np.ndarray, weights: np.ndarray, classes: Classes | None = None
) -> GaussianMixture:
    """Centre at 0 and scale so that sqrt(tr Cov / 2) = 1 (classes ride along unchanged)."""
    m = GaussianMixture(torch.as_tensor(means), torch.as_tensor(stds), torch.as_tensor(weights))
    scale = 1.0 / math.sqrt(float(torch.trace(m.cov())) / 2)
    labels, names = (None, ()) if classes is None else (torch.as_tensor(classes[0]), classes[1])
    return GaussianMixture((m.means - m.mean()) * scale, m.stds * scale, m.weights, labels, names)


Classes = tuple[np.ndarray, tuple[str, ...]]  # class of each component (K,), class names (C,)


def _blocks(sizes: list[int], names: tuple[str, ...]) -> Classes:
    """Consecutive runs of components as classes: sizes[c] components of class c."""
    return np.repeat(np.arange(len(sizes)), sizes), names


def _word_classes() -> Classes:
    """Each letter of the word a class: a point's letter is where it lies between the letters'
    advance positions (Pillow's `getlength` of the text before each letter)."""
    text = "SCORE"
    font = ImageFont.load_default(size=48)
    left = font.getbbox(text)[0]
    starts = [4 - left + font.getlength(text[:i]) for i in range(1, len(text))]
    xs = text_points(text)[:, 0] * 2  # back to the full-size image's pixel column
    return np.searchsorted(np.asarray(starts), xs, side="right"), tuple(text)


def _checkerboard_classes() -> Classes:
    """Each filled square a class, named like a chessboard's (file a-d left to right, rank 1-4)."""
    cells = [(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0]
    return _blocks([25] * len(cells), tuple(f"square {'abcd'[i]}{j + 1}" for i, j in cells))


def _grid_classes() -> Classes:
    """Each row of the grid a class (its five Gaussians), bottom to top."""
    return np.repeat(np.arange(5), 5), tuple(f"row {r + 1} (from the bottom)" for r in range(5))


CLASSES: dict[str, Callable[[], Classes]] = {
    "eight_gaussians": lambda: (np.arange(8), tuple(f"mode at {45 * k}°" for k in range(8))),
    "grid": _grid_classes,
    "skewed": lambda: (np.arange(2), ("right (weight 0.8)", "left (weight 0.2)")),
    "two_moons": lambda: _blocks([60, 60], ("upper moon", "lower moon")),
    "swiss_roll": lambda: _blocks([53, 53, 54], ("inner third", "middle third", "outer third")),
    "rings": lambda: _blocks([40, 90], ("inner ring", "outer ring")),
    "two_spirals": lambda: _blocks([110, 110], ("first arm", "second arm")),
    "checkerboard": _checkerboard_classes,
    "pinwheel": lambda: _blocks([30] * 5, tuple(f"arm {a + 1}" for a in range(5))),
    "word": _word_classes,
}


DISTRIBUTIONS: dict[str, tuple[str, Callable[[], Arrays]]] = {
    "eight_gaussians": ("Eight Gaussians (ring)", eight_gaussians),
    "grid": ("5×5 grid of Gaussians", grid),
    "skewed": ("Skewed two modes (0.8 / 0.2)", skewed),
    "two_moons": ("Two moons", two_moons),
    "swiss_roll": ("Swiss roll", swiss_roll),
    "rings": ("Concentric rings", rings),
    "two_spirals": ("Two spirals", two_spirals),
    "checkerboard": ("Checkerboard", checkerboard),
    "pinwheel": ("Pinwheel", pinwheel),
    "word": ("The word “SCORE”", word),
}


@cache
def get_distribution(name: str) -> GaussianMixture:
    """The built-in distribution `name` as a standardised GaussianMixture (cached, immutable)."""
    if name not in DISTRIBUTIONS:
        raise unknown_key("distribution", name, DISTRIBUTIONS)
    return _standardise(*DISTRIBUTIONS[name][1](), CLASSES[name]())


def distribution_labels() -> dict[str, str]:
    """Registry name -> display label (feeds the select boxes)."""
    return {k: v[0] for k, v in DISTRIBUTIONS.items()}


__all__ = ["CLASSES", "DISTRIBUTIONS", "get_distribution", "distribution_labels", "empirical"]
