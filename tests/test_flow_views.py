"""The flow-matching views through the core pipelines and figure builders: the Score field page's
velocity view (exact v from the exact score, the model's own v beside it) and the Sampling
page's straightness line and row names on the linear path. Untrained models: no training here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from scoreviz import flow, pipelines
from scoreviz.figures.fields import arrow_vectors, velocity_field_figure
from scoreviz.models import ModelConfig, build_model
from scoreviz.problem import Problem
from scoreviz.training import TrainConfig, TrainResult


def untrained(process="linear", coupling="independent", param="v") -> TrainResult:
    cfg = TrainConfig(
        distribution="two_moons", process=process, coupling=coupling,
        model=ModelConfig(parameterization=param, width=16, depth=1),
    )  # fmt: skip
    model = build_model(cfg.model, Problem.builtin("two_moons", process).process, seed=1)
    with torch.no_grad():  # a field that is not the prior's: the learned panel shows its own
        model.net.out.bias.copy_(torch.tensor([0.4, -0.2]))
    history = pd.DataFrame({"step": [1], "loss": [1.0], "elapsed": [0.0]})
    return TrainResult(cfg, model, history, cfg.model_id, 0.0, False, None)


@pytest.mark.parametrize("t", [0.05, 0.5, 0.95])
def test_velocity_view_draws_the_exact_and_the_learned_velocity(t, assert_finite_figure):
    result = untrained(coupling="ot")
    problem = Problem.builtin("two_moons", "linear").with_model("m", result)
    view = pipelines.velocity_field_view(problem, t, n_arrows=9)
    pts = torch.as_tensor(view.grid.points, dtype=torch.float32)
    tt = torch.full((len(pts),), t)
    exact = flow.exact_velocity_fn(problem.dist, problem.process)(pts, tt).numpy()
    np.testing.assert_allclose(view.exact, exact, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(view.learned, result.model.velocity(pts, tt).numpy(), atol=1e-6)
    assert view.coupling == "ot" and view.speed == pytest.approx(0.99)
    assert view.error > 0.01  # an untrained field is visibly off
    fig = velocity_field_figure(view)
    assert_finite_figure(fig)
    scale, cap = fig.layout.meta["arrow_scale"], fig.layout.meta["arrow_cap"]
    tails, vecs = arrow_vectors(fig, "exact v", panel=2)
    short = np.linalg.norm(exact, axis=1) * scale < 0.95 * cap
    np.testing.assert_allclose(tails[short], view.grid.points[short], atol=2e-3)
    np.testing.assert_allclose(vecs[short], scale * exact[short], atol=3e-3)
    assert "OT" in fig.layout.annotations[0].text
    assert "independent" in fig.layout.annotations[1].text


def test_velocity_view_without_a_model_is_the_exact_panel_alone():
    view = pipelines.velocity_field_view(Problem.builtin("eight_gaussians", "vp_linear"), 0.3)
    assert view.learned is None and view.error is None and view.speed is None
    fig = velocity_field_figure(view)
    assert len(fig.layout.annotations) == 1 and "exact v" in fig.layout.annotations[0].text


def test_straightness_view_is_the_cores_number_for_both_scores():
    result = untrained()
    problem = Problem.builtin("two_moons", "linear").with_model("m", result)
    view = pipelines.straightness_view(problem, seed=2)
    exact = flow.ode_straightness(
        flow.exact_score_fn(problem.dist, problem.process), problem.process, seed=2
    )
    assert view.exact == pytest.approx(exact, rel=1e-9)
    assert view.learned == pytest.approx(
        flow.ode_straightness(result.score_fn(), problem.process, seed=2), rel=1e-9
    )
    assert view.learned >= 1 and view.exact >= 1
    assert "independent pairing" in view.text() and f"{view.exact:.2f}" in view.text()


def test_rows_on_the_linear_path_are_velocities_and_the_exact_one_is_independent():
    lin, vp = Problem.builtin("grid", "linear"), Problem.builtin("grid", "vp_linear")
    assert pipelines.row_label(lin, "exact") == "exact velocity"
    assert pipelines.row_label(vp, "exact") == "exact score"
    assert pipelines.row_label(lin, "memorised") == "memorising optimum"
