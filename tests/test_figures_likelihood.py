"""The Likelihood figure's data against its view: log p clipped at the floor on one shared colour
scale, the difference as learned - exact with both raised to the floor, the exact panel alone
without a model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoreviz.figures.likelihood import DIFF_NATS, likelihood_figure
from scoreviz.models import build_model
from scoreviz.pipelines import LikelihoodSettings, likelihood_view
from scoreviz.problem import Problem
from scoreviz.processes import get_process
from scoreviz.training import TrainConfig, TrainResult

S = LikelihoodSettings(n_grid=10, n_heldout=20, n_steps=4)


def _untrained():
    cfg = TrainConfig(steps=1)
    model = build_model(cfg.model, get_process("vp_linear"))
    hist = pd.DataFrame({"step": [], "loss": [], "elapsed": []})
    return TrainResult(cfg, model, hist, "untrained", 0.0, False, None)


def _z(tr) -> np.ndarray:
    return np.asarray(tr.z, dtype=float)


def test_exact_panel_alone_without_a_model(assert_finite_figure):
    view = likelihood_view(Problem.builtin("two_moons", "vp_linear"), S)
    fig = likelihood_figure(view)
    assert_finite_figure(fig)
    assert len(fig.data) == 1
    z = _z(fig.data[0])
    np.testing.assert_allclose(z, np.maximum(view.truth.log_p0, view.floor), atol=1e-3)
    assert fig.layout.coloraxis.cmin == view.floor
    assert fig.layout.coloraxis.cmax == float(view.truth.log_p0.max())
    np.testing.assert_allclose(fig.data[0].x, view.truth.grid.xs)


def test_learned_exact_and_difference_panels(assert_finite_figure):
    problem = Problem.builtin("eight_gaussians", "vp_linear").with_model("mine", _untrained())
    view = likelihood_view(problem, S)
    fig = likelihood_figure(view)
    assert_finite_figure(fig)
    learned, exact, diff = fig.data
    np.testing.assert_allclose(_z(learned), np.maximum(view.learned.log_p, view.floor), atol=1e-3)
    np.testing.assert_allclose(_z(exact), np.maximum(view.truth.log_p0, view.floor), atol=1e-3)
    np.testing.assert_allclose(_z(diff), _z(learned) - _z(exact), atol=3e-3)
    assert learned.coloraxis == exact.coloraxis == "coloraxis" and diff.coloraxis == "coloraxis2"
    assert fig.layout.coloraxis2.cmin == -DIFF_NATS and fig.layout.coloraxis2.cmax == DIFF_NATS
    titles = [a.text for a in fig.layout.annotations]
    assert titles[1:] == ["exact log p₀(x)", "learned − exact (nats)"]
    assert learned.name == "mine log p"  # the model's name, in the hover
    # the standard normal puts density between the ring's modes, where the mixture has none
    g = view.truth.grid
    centre = (np.abs(g.ys)[:, None] < 0.3) & (np.abs(g.xs)[None, :] < 0.3)
    assert (_z(diff)[centre] > 1).all()
