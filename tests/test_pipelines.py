"""The view pipelines (`scoreviz.pipelines`) and the Problem they take: keys, the decisions they
own (which score, which floor), and their numbers against exact answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scoreviz import analysis, pipelines
from scoreviz.distributions import get_distribution
from scoreviz.figures.sampling import sampling_figure, sampling_weights_figure
from scoreviz.mixture import memorising_optimum
from scoreviz.problem import Problem, model_key
from scoreviz.samplers import SamplerConfig
from scoreviz.score import exact_score_fn
from tests.apptest_utils import tiny_result

DIST, PROC = "eight_gaussians", "vp_linear"


@pytest.fixture(scope="module")
def tiny():
    return tiny_result(steps=60)


def test_a_problem_is_equal_and_hashed_by_its_keys_only(tiny):
    a = Problem.builtin(DIST, PROC)
    b = Problem(DIST, get_distribution("word"), PROC)  # another mixture under the same key
    assert a == b and hash(a) == hash(b) and a.key == (DIST, PROC, ())
    assert a != Problem.builtin(DIST, "ve") and a != Problem.builtin("word", PROC)
    m = a.with_model("mine", tiny)
    assert m.key == (DIST, PROC, (("mine", model_key(tiny)),))
    assert m != a and m.exact() == a and m.model is tiny
    assert m == b.with_model("mine", tiny) and len({m, b.with_model("mine", tiny)}) == 1
    assert a.with_model("x", None) == a and a.model is None and a.train_points is None
    assert a.process.label == Problem.builtin(DIST, PROC).process.label


def test_forward_view_noises_the_same_points_and_draws_the_exact_density():
    problem = Problem.builtin(DIST, PROC)
    view = pipelines.forward_view(problem, pipelines.ForwardSettings(0.300004, 400, 60, 40, 3))
    assert view.t == 0.3  # rounded: a stable cache key
    a, s, _ = problem.process.at(0.3)
    assert (view.alpha, view.sigma) == pytest.approx((a, s))
    x0_again, _ = pipelines.noised(problem, 0.7, 400, 3)
    np.testing.assert_array_equal(view.x0, x0_again)  # one x_0 at every t
    eps = (view.xt - a * view.x0) / s  # x_t = alpha x_0 + sigma eps with eps ~ N(0, I)
    assert abs(eps.mean()) < 0.15 and eps.std() == pytest.approx(1.0, abs=0.1)
    pts = torch.as_tensor(view.noisy.grid.points, dtype=torch.float64)
    exact = problem.dist.log_prob(pts, a, s).exp().numpy().reshape(60, 60)
    np.testing.assert_allclose(view.noisy.density, exact, rtol=1e-4, atol=1e-8)
    cell = (view.noisy.xy[1] - view.noisy.xy[0]) / 60  # the grid points are cell centres
    assert view.noisy.density.sum() * cell**2 == pytest.approx(1.0, abs=0.03)


def test_loss_bins_is_the_model_s_loss_or_the_exact_one(tiny):
    exact = Problem.builtin(DIST, PROC)
    s = pipelines.LossSettings(("sigma2",), n_bins=6, per_bin=64, seed=2, exact_floors=False)
    direct = analysis.binned_loss(exact_score_fn(exact.dist, exact.process), exact.dist,
                                  exact.process, ("sigma2",), 6, 64, 2)  # fmt: skip
    np.testing.assert_allclose(pipelines.loss_bins(exact, s)["loss"], direct["loss"])
    view = pipelines.loss_view(exact.with_model("m", tiny), s)
    assert view.exact is None  # the exact score's loss is the floor here
    np.testing.assert_allclose(view.fine["floor"], direct["loss"])
    np.testing.assert_allclose(view.by_bin["floor"], direct["loss"])
    assert not np.allclose(view.binned["loss"], direct["loss"])  # the model's, not the exact
    # sigma^2 weighting: the loss is the eps-prediction error, at most E||eps||^2 = 2 per point
    assert (direct["loss"] < 2.2).all() and (direct["loss"] > 0).all()


def test_sampling_rows_pick_their_scores_and_share_the_exact_row(tiny):
    problem = Problem.builtin(DIST, PROC).with_model("m", tiny)
    assert pipelines.row_problem(problem, "exact") == problem.exact()  # no training points
    assert pipelines.row_problem(problem, "learned") == problem
    x = torch.randn(5, 2)
    t = torch.full((5,), 0.3)
    exact = exact_score_fn(problem.dist, problem.process)(x, t)
    torch.testing.assert_close(pipelines.row_score(problem, "exact")(x, t), exact)
    torch.testing.assert_close(pipelines.row_score(problem, "learned")(x, t), tiny.score_fn()(x, t))
    pts = np.array([[0.0, 1.0], [1.0, 0.0], [-1.0, -1.0]])
    memo = exact_score_fn(memorising_optimum(pts), problem.process)(x, t)
    small = Problem.builtin(DIST, PROC).with_model("few", _with_points(tiny, pts))
    torch.testing.assert_close(pipelines.row_score(small, "memorised")(x, t), memo)
    with pytest.raises(ValueError, match="valid"):
        pipelines.SamplingSettings(SamplerConfig(), rows=("nonsense",))


def _with_points(result, pts):
    from dataclasses import replace

    return replace(result, train_points=torch.as_tensor(pts, dtype=torch.float32))


def test_sampling_view_rows_report_and_figure(tiny):
    problem = Problem.builtin(DIST, PROC).with_model("m", tiny)
    config = SamplerConfig("pf_ode_heun", n_steps=20, n_particles=300, n_frames=10, seed=1)
    view = pipelines.sampling_view(problem, pipelines.SamplingSettings(config))
    assert [r.kind for r in view.rows] == ["learned", "exact"]
    assert [r.label for r in view.rows] == ["learned score", "exact score"]
    exact = view.rows[1]
    assert exact.final.shape == (300, 2) and exact.frames.xs.shape == (10, 300, 2)
    # the exact score's deterministic ODE lands on the data: mode weights near the true ones
    np.testing.assert_allclose(exact.report["mode_weights"], view.true_weights, atol=0.06)
    np.testing.assert_array_equal(view.data, pipelines.data_samples(problem, 1000, 1))
    fig = sampling_figure(view)
    assert len(fig.frames) == 10
    names = {t.name for t in fig.data}
    assert {"x_t, learned score", "x_t, exact score"} <= names
    np.testing.assert_allclose(np.asarray(fig.frames[-1].data[1].x, float),
                               view.rows[0].frames.xs[-1][:, 0], atol=1e-5)  # fmt: skip
    weights = sampling_weights_figure(view)
    assert [t.name for t in weights.data] == ["true weights", "learned score", "exact score"]


def test_sampling_rows_share_their_ranges_and_arrows_follow_them(tiny):
    """VE with 20 steps: the learned and exact rows' own ranges differ (this tiny model leaves
    its samples wider); the view gives both the widest at each frame and recomputes the
    narrower row's arrows on that grid; the exact row's own ranges shrink over the run. Plain
    Langevin frames carry their sampler steps."""
    ve = tiny_result(process="ve", steps=60)
    problem = Problem.builtin(DIST, "ve").with_model("m", ve)
    config = SamplerConfig("reverse_sde", n_steps=20, n_particles=200, n_frames=10, seed=2)
    settings = pipelines.SamplingSettings(config)
    view = pipelines.sampling_view(problem, settings)
    learned, exact = view.rows
    np.testing.assert_array_equal(learned.ranges, exact.ranges)
    own = [pipelines.sampling_view_row(problem, r, settings).ranges for r in ("learned", "exact")]
    np.testing.assert_array_equal(exact.ranges, np.maximum(*own))
    assert not np.array_equal(*own)
    assert own[1][0] > 3 * own[1][-1]  # VE: the exact row's view shrinks with its samples
    for row in view.rows:
        half = row.field_xy.reshape(len(row.ranges), -1, 2).max(axis=(1, 2))
        np.testing.assert_allclose(half, row.ranges * 0.9, rtol=0.12)  # grid inside +-range
        assert row.alphas.shape == row.sigmas.shape == row.frames.times.shape
    lang = SamplerConfig("langevin", n_steps=30, n_particles=50, n_frames=7)
    row = pipelines.sampling_view_row(problem.exact(), "exact", pipelines.SamplingSettings(lang))
    assert row.frames.steps.tolist() == [0, 5, 10, 15, 20, 25, 30]


def test_dae_view_has_every_denoiser_and_the_exact_one_is_tweedie(tiny):
    dae = tiny_result(kind="dae", steps=60)
    problem = Problem.builtin(DIST, PROC).with_models({"m": tiny, "d": dae})
    view = pipelines.dae_view(problem, pipelines.DaeSettings((0.5,), n=50, seed=4))
    assert view.kinds == {"m": "learned", "d": "dae", pipelines.EXACT: "exact"}
    (panel,) = view.panels
    assert set(panel.recon) == {"m", "d", pipelines.EXACT}
    d_star = analysis.exact_denoiser(problem.dist, problem.process)
    x_t = torch.as_tensor(panel.x_t, dtype=torch.float32)
    want = d_star(x_t, torch.full((50,), panel.t)).numpy()
    np.testing.assert_allclose(panel.recon[pipelines.EXACT], want, rtol=1e-4, atol=1e-4)
    assert set(view.without(["m"]).panels[0].recon) == {"d", pipelines.EXACT}
    err = pipelines.dae_error_view(problem, n_sigmas=4, n=64)
    assert err.marks == {"d": dae.config.model.dae_sigma}
    assert len(err.table) == 4 and (err.table["mmse"] > 0).all()


class _Store:
    def __init__(self):
        self.items = {}

    def get(self, key):
        return self.items.get(key)

    def put(self, key, value):
        self.items[key] = value


def test_train_dae_reuses_the_store_for_built_in_data_only():
    problem, store, seen = Problem.builtin(DIST, PROC), _Store(), []
    first = pipelines.train_dae(problem, 0.5, 20, 0, seen.append, store=store)
    cfg = pipelines.dae_train_config(problem, 0.5, 20, 0)
    assert (cfg.model.kind, cfg.model.dae_sigma, cfg.steps) == ("dae", 0.5, 20)
    assert store.items == {cfg.model_id: first} and seen[-1] == 1.0
    assert pipelines.train_dae(problem, 0.5, 20, 0, seen.append, store=store) is first
    upload = Problem("upload:abc", get_distribution(DIST), PROC)
    pipelines.train_dae(upload, 0.5, 20, 0, seen.append, store=store)
    assert len(store.items) == 1  # uploads are not shared


def test_the_app_caches_a_view_by_its_problem_keys():
    from scoreviz.ui import cache

    cache.prior_check.clear()
    first = cache.prior_check(Problem.builtin(DIST, PROC), 2**20)
    assert first == pipelines.prior_view(Problem.builtin(DIST, PROC), 2**20)
    impostor = Problem(DIST, get_distribution("word"), PROC)  # same keys, other mixture
    assert cache.prior_check(impostor, 2**20) == first  # served from the cache by key
    assert cache.prior_check(Problem.builtin("word", PROC), 2**20) != first
