"""Figures drawn as images (`raster.density_image`, `dots.cloud_image`) land where the maths
puts them, in a real Chromium running the Plotly that Streamlit ships with the Python package.

The figure's JSON is drawn with Plotly.newPlot in a blank page; the screenshot's pixels are
read at data coordinates mapped through Plotly's own axes (`_fullLayout.xaxis.l2p`). Dots are
SVG documents in data units with y flipped: a sign or offset error moves every dot off its
point, which these checks see.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import plotly
import pytest
from PIL import Image

from scoreviz.figures.dots import cloud_image
from scoreviz.figures.fields import SOFT_BLUES
from scoreviz.figures.raster import colorize, density_image
from scoreviz.figures.style import one_panel, place_shapes
from scoreviz.grids import make_grid
from tests.browser_utils import CHROMIUM, CHROMIUM_ARGS, require_chromium

pytestmark = [pytest.mark.browser]

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
SIZE = 600  # px, the plot area (no margins)


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])


@pytest.fixture(scope="module")
def page():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": SIZE + 40, "height": SIZE + 40})
        page.set_content("<html><body style='margin:0'><div id='gd'></div></body></html>")
        page.add_script_tag(path=str(PLOTLY_JS))
        yield page
        browser.close()


def _draw(page, fig) -> tuple[np.ndarray, dict]:
    """fig drawn by Plotly in Chromium: (screenshot RGB, {"x": (offset, px per unit), "y": ...})."""
    fig.update_layout(width=SIZE, height=SIZE, margin=dict(l=0, r=0, t=0, b=0), showlegend=False,
                      xaxis=dict(range=[-2, 2], visible=False), plot_bgcolor="white",
                      yaxis=dict(range=[-2, 2], visible=False), paper_bgcolor="white")  # fmt: skip
    axes = page.evaluate(
        """async (spec) => { const gd = document.getElementById('gd');
        await Plotly.newPlot(gd, spec.data, spec.layout, {staticPlot: true});
        await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50)));
        const ax = (a) => [a._offset + a.l2p(0), a.l2p(1) - a.l2p(0)];
        return {x: ax(gd._fullLayout.xaxis), y: ax(gd._fullLayout.yaxis)}; }""",
        fig.to_plotly_json() | {"data": [tr.to_plotly_json() for tr in fig.data]},
    )
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    return np.asarray(shot).astype(int), axes


def _pixel(axes: dict, xy) -> tuple[int, int]:
    """(row, col) of the screenshot pixel at data point xy."""
    (x0, sx), (y0, sy) = axes["x"], axes["y"]
    return int(round(y0 + sy * xy[1])), int(round(x0 + sx * xy[0]))


def test_a_density_image_shows_the_density_where_it_is(page):
    grid = make_grid(40, (-2.0, 2.0))
    xx, yy = np.meshgrid(grid.xs, grid.ys)
    z = np.exp(-((xx - 1.0) ** 2 + (yy + 0.5) ** 2) / 0.1)  # one bump at (1, -0.5)
    items = [density_image(grid, z, SOFT_BLUES, "p")]
    shot, axes = _draw(page, place_shapes(one_panel(items), [items]))
    colors = colorize(z, SOFT_BLUES).astype(int)
    peak = _pixel(axes, (1.0, -0.5))
    assert np.abs(shot[peak] - colors.reshape(-1, 3)[np.argmax(z)]).max() <= 6
    assert np.abs(shot[_pixel(axes, (-1.0, 1.0))] - _rgb("#ffffff")).max() <= 6  # far: white
    mirror = _pixel(axes, (1.0, 0.5))  # where a y flip would have put the bump
    assert np.abs(shot[mirror] - _rgb("#ffffff")).max() <= 6


@pytest.mark.parametrize("edge", [0.0, 1.0])
def test_cloud_image_dots_sit_on_their_points(page, edge):
    pts = np.array([[-1.2, 0.8], [0.5, -1.1], [1.3, 1.4], [-0.3, -0.2]])
    px = 4.0 / SIZE  # data units per pixel of this plot
    items = cloud_image(pts, px, 14, "#ff0000", "dots", edge=edge, showlegend=False)
    shot, axes = _draw(page, place_shapes(one_panel(items), [items]))
    for x, y in pts:
        centre = shot[_pixel(axes, (x, y))]
        assert np.abs(centre - _rgb("#ff0000")).max() <= 10, (x, y, centre)
        # 14 px across: 5 px from the centre is inside, 12 px out is background
        r, c = _pixel(axes, (x, y))
        assert np.abs(shot[r, c + 5] - _rgb("#ff0000")).max() <= 10
        assert np.abs(shot[r, c + 12] - _rgb("#ffffff")).max() <= 10
        assert np.abs(shot[r - 12, c] - _rgb("#ffffff")).max() <= 10
        rim = shot[r, c + 7]  # the dot's edge: with a rim, a grey of EDGE blended into white
        if edge:
            assert rim.max() < 215 and np.ptp(rim) < 30, rim
        else:  # red up to its edge, no grey
            assert shot[r, c + 6][0] > shot[r, c + 6][1] + 30 and rim.min() > 200, rim
    # a y flip would have put a dot at (x, -y): background there
    assert np.abs(shot[_pixel(axes, (1.3, -1.4))] - _rgb("#ffffff")).max() <= 10
