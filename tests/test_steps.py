"""The quality-vs-steps pipeline and its figure: nats lost and W2 against fresh exact samples,
checked against the mixture's maths (the reference is minus the entropy; a converged sampler
with the exact score loses ~0 nats and sits at the W2 floor; one reverse-SDE step does not)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scoreviz import metrics
from scoreviz.errors import ConfigError
from scoreviz.figures.steps import NATS_TOP, steps_figure
from scoreviz.pipelines import StepsCurve, StepsSettings, StepsView, steps_curve, steps_view
from scoreviz.pipelines.steps import reference_log_p, w2_floor
from scoreviz.problem import Problem
from scoreviz.samplers import SamplerConfig, sample
from scoreviz.score import exact_score_fn


def test_reference_is_minus_the_entropy():
    problem = Problem.builtin("skewed", "vp_linear")
    x = problem.dist.sample(50_000, torch.Generator().manual_seed(9), dtype=torch.float64)
    lp = problem.dist.log_prob(x)
    se = float(lp.std()) / math.sqrt(20_000)
    assert abs(reference_log_p(problem) - float(lp.mean())) < 5 * se


def test_exact_score_converges_and_one_step_does_not():
    problem = Problem.builtin("eight_gaussians", "vp_linear")
    s = StepsSettings(SamplerConfig(name="pf_ode_heun"), step_counts=(1, 64), n_particles=300)
    c = steps_curve(problem, "exact", s)
    assert c.kind == "exact" and list(c.steps) == [1, 64] and not c.diverged.any()
    floor, spread = w2_floor(problem, 300)
    assert abs(c.nats_lost[1]) < 0.15  # 64 Heun steps of the exact score: the data
    assert c.w2[1] < floor + 2 * spread + 0.05
    assert c.nats_lost[0] > 1 and c.w2[0] > 2 * floor  # one step: far from the data


def test_nats_lost_and_w2_are_what_the_metrics_say():
    problem = Problem.builtin("two_moons", "ve")
    cfg = SamplerConfig(name="ddim", seed=3)
    s = StepsSettings(cfg, step_counts=(4,), n_particles=100)
    c = steps_curve(problem, "exact", s)
    x = sample(exact_score_fn(problem.dist, problem.process), problem.process, s.run_config(4))
    lost = reference_log_p(problem, seed=3) - metrics.mean_log_likelihood(x.final, problem.dist)
    assert c.nats_lost[0] == pytest.approx(lost)
    gen = torch.Generator().manual_seed(3 + 7_777)
    fresh = problem.dist.sample(100, gen, dtype=torch.float64)
    assert c.w2[0] == pytest.approx(metrics.wasserstein2(x.final, fresh))


def test_view_without_model_has_the_exact_curve_only():
    problem = Problem.builtin("eight_gaussians", "vp_linear")
    s = StepsSettings(SamplerConfig(name="ddim"), step_counts=(2, 8), n_particles=50)
    v = steps_view(problem, s)
    assert [c.kind for c in v.curves] == ["exact"]
    assert v.sampler == "DDIM" and v.n_particles == 50 and v.w2_floor > 0


def test_settings_refuse_what_cannot_run():
    cfg = SamplerConfig()
    for bad in [dict(step_counts=()), dict(step_counts=(4, 2)), dict(step_counts=(0, 2)),
                dict(n_particles=5), dict(curves=("nope",))]:  # fmt: skip
        with pytest.raises(ConfigError):
            StepsSettings(cfg, **bad)


def _curve(kind, nats, w2):
    steps = np.array([1, 2, 4, 8])
    nats, w2 = np.array(nats, float), np.array(w2, float)
    bad = ~np.isfinite(nats)
    return StepsCurve(steps, nats, w2, bad, kind, kind + " score", 0.1)


def test_figure_data_clip_large_losses_and_drop_blowups(assert_finite_figure):
    learned = _curve("learned", [4000.0, np.nan, 0.4, -0.1], [9.0, np.nan, 0.3, 0.2])
    exact = _curve("exact", [12.0, 3.0, 0.2, 0.05], [5.0, 1.0, 0.25, 0.2])
    fig = steps_figure(StepsView((learned, exact), 0.21, 0.02, "DDIM", 500))
    assert_finite_figure(fig)
    by_name = {}
    for tr in fig.data:
        by_name.setdefault(tr.name, []).append(tr)
    line, clipped = by_name["learned score"][0], by_name["learned score (off the chart)"][0]
    assert list(line.x) == [1, 4, 8]  # the blown-up step count is left out
    np.testing.assert_allclose(line.y, [NATS_TOP, 0.4, -0.1])
    assert list(clipped.x) == [1] and list(clipped.text) == ["4000"]
    assert list(line.customdata) == ["4e+03", "0.4", "-0.1"]  # the hover tells the true value
    w2_lines = [tr for tr in fig.data if tr.xaxis == "x2" and tr.name == "exact score"]
    np.testing.assert_allclose(w2_lines[0].y, [5.0, 1.0, 0.25, 0.2])
    floor = by_name["two exact samples"][0]
    assert list(floor.y) == [0.21, 0.21] and fig.layout.meta["w2_floor"] == 0.21
    assert fig.layout.yaxis.range[0] < -0.1  # a loss below 0 stays on the chart
