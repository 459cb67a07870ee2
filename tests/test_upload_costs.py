"""Page costs bounded for uploads with many components (issue 13, benchmarks/upload_pages.py).

The Loss page's exact floor curves cost ~10^5 x K pairs (a minute at K = 2,000 on the 2-core
box): above FLOOR_MAX_COMPONENTS they are computed only on request, and the binned view uses the
exact score's own loss as its floor meanwhile.
"""

from __future__ import annotations

import numpy as np

from scoreviz import models, training
from scoreviz.mixture import empirical
from scoreviz.ui.models import UploadedData
from tests.apptest_utils import assert_no_exception, chart_specs, inject_model, make_app, open_page

SHA = "00112233445566aa"


def _upload_app(n_points: int):
    pts = np.random.default_rng(0).normal(size=(n_points, 2))
    dist = empirical(pts, 0.1)
    cfg = training.TrainConfig(
        distribution="upload:" + SHA,
        model=models.ModelConfig(width=32, depth=2),
        steps=30,
    )
    at = make_app()
    at.session_state["upload"] = UploadedData(
        name="many.csv", sha=SHA, dist=dist, n_points=n_points, note="", points=pts
    )
    at.session_state["distribution"] = "upload"
    inject_model(at, training.train(cfg, dist=dist), "m")
    return at.run()


def test_loss_page_defers_the_exact_floors_of_a_big_upload(monkeypatch):
    from scoreviz.ui import cache

    def refuse(*args, **kwargs):
        raise AssertionError("exact floor curves computed without being asked")

    for name in ("loss_floors", "weighting_floors"):
        monkeypatch.setattr(cache, name, refuse)
    monkeypatch.setattr(cache, "mean_loss_floor", refuse)
    at = _upload_app(500)  # 500 components > FLOOR_MAX_COMPONENTS
    open_page(at, "views/loss.py")
    assert_no_exception(at)
    assert any("500 components" in i.value for i in at.info), [i.value for i in at.info]
    assert len(chart_specs(at)) >= 2  # the binned loss (exact score as floor) and the history
    buttons = [b for b in at.button if b.label == "Compute the exact floor curves"]
    assert buttons


def test_loss_page_draws_the_exact_floors_of_a_small_upload():
    at = _upload_app(100)
    open_page(at, "views/loss.py")
    assert_no_exception(at)
    assert not [b for b in at.button if b.label == "Compute the exact floor curves"]
    assert len(chart_specs(at)) >= 3  # binned loss, weighting floors, history
