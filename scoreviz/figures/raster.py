"""A density on a grid as one PNG image in the figure's layout, instead of a heatmap trace.

Why: Plotly draws a heatmap by colouring every cell in JavaScript, encoding the result as a PNG
in the browser and decoding it again: ~15 ms per heatmap in Chromium, twice on every t step of
the Data & forward pair. Coloured and encoded here (numpy and Pillow, < 1 ms for 120 x 120),
the same picture is one `<image>` element, ~8 kB instead of ~80 kB of float32 z values. The
browser scales the image up smoothly, as it does a `zsmooth="fast"` heatmap. What is lost:
hovering the background for the value of p_t.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from scoreviz.grids import Grid, finite

PREFIX = "data:image/png;base64,"


def colorize(z: np.ndarray, colorscale) -> np.ndarray:
    """(G, G) values -> (G, G, 3) uint8 RGB, as Plotly colours a heatmap with its default zmin
    and zmax (the least and largest value): every channel interpolated linearly between the
    colorscale's stops [[position, "#rrggbb"], ...]. Non-finite values count as 0."""
    z = finite(z).astype(np.float64)
    lo, hi = float(z.min()), float(z.max())
    u = (z - lo) / (hi - lo) if hi > lo else np.zeros_like(z)
    stops = np.array([float(s) for s, _ in colorscale])
    rgb = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for _, c in colorscale], float)
    out = np.stack([np.interp(u, stops, rgb[:, k]) for k in range(3)], axis=-1)
    return np.round(out).astype(np.uint8)


def png_uri(rgb: np.ndarray) -> str:
    """(H, W, 3) uint8, row 0 at the top -> a data: URI of a PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buf, "PNG", compress_level=6)
    return PREFIX + base64.b64encode(buf.getvalue()).decode("ascii")


def image_rgb(item: dict) -> np.ndarray:
    """Inverse of `density_image` (for tests and notebooks): its pixels (G, G, 3) uint8, row 0
    at the grid's lowest y (as the density's rows)."""
    data = base64.b64decode(item["source"].removeprefix(PREFIX))
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[::-1]


def density_image(grid: Grid, z: np.ndarray, colorscale, name: str) -> dict:
    """The density z (G, G) on `grid` (rows = y), coloured by `colorscale`, as a layout image
    item (a dict with "source"): pixel (i, j) is the grid cell centred at (xs[j], ys[i]),
    stretched over the panel's data coordinates. Drawn in the layer above the traces, so that it
    covers the grid lines as a heatmap does (and any trace of its panel: draw points and arrows
    over it as images or shapes, which come later in that layer). `style.place_shapes` puts it
    on its panel's axes."""
    xs, ys = np.asarray(grid.xs, float), np.asarray(grid.ys, float)
    dx = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)
    dy = (ys[-1] - ys[0]) / max(len(ys) - 1, 1)
    return dict(
        source=png_uri(colorize(z, colorscale)[::-1]),  # PNG rows run top to bottom
        x=float(xs[0] - dx / 2), y=float(ys[-1] + dy / 2),
        sizex=float(len(xs) * dx), sizey=float(len(ys) * dy),
        xanchor="left", yanchor="top", sizing="stretch", layer="above", name=name,
    )  # fmt: skip


def is_image(item) -> bool:
    """Whether a layout item (a dict, see `polygons.is_shape`) is an image (a `density_image`
    or a `dots.cloud_image`), not a shape."""
    return isinstance(item, dict) and "source" in item
