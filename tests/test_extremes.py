"""Extreme settings: the ends of every range the pages offer, and what happens when things break.

Core first, with the same inputs the pages build (through `scoreviz.ui.cache`):
- every figure builder a page uses, at t = t_min and t = 1 (sigma at both ends of its slider) for
  every noise process, contains only finite numbers (conftest's `assert_finite_figure`);
- every sampler with 1 step and 1 particle, for every process, with the exact and a learned score;
- an exploding Langevin step: `SamplerDivergedError` with a clear message, and on the Sampling
  page an st.error, never a traceback;
- a diverging learning rate raises `TrainingDivergedError`; after it, the Train page still trains;
- Stop from Home ends the thread cleanly and the stopped model is never shared;
- an unexpected RuntimeError inside a page's computation shows a short friendly message, and
  `.streamlit/config.toml` hides error details from the audience.

(Already covered elsewhere, not repeated: lr = 1e6 on the Train page keeps the previous model and
Stop on the Train page — tests/test_app_core_pages.py; a NaN model on the Sampling page —
tests/test_app_analysis_pages.py; steps = 1 / one particle on vp_linear — tests/test_samplers.py.)
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import streamlit as st

from scoreviz import pipelines
from scoreviz.distributions import get_distribution
from scoreviz.errors import TrainingDivergedError
from scoreviz.figures.dae import dae_reconstruction_figure, reconstruction_error_figure
from scoreviz.figures.fields import score_difference_figure, score_field_figure
from scoreviz.figures.forward import (
    forward_animation,
    forward_figures,
    samples_density_figure,
    schedule_figure,
)
from scoreviz.figures.loss import loss_figure, loss_vs_t_figure, weighting_floor_figure
from scoreviz.figures.sampling import SamplingPanel, mode_weights_figure, sampling_animation
from scoreviz.figures.training import loss_curve_figure
from scoreviz.forward import schedule_at, schedule_table, view_range
from scoreviz.losses import WEIGHTINGS
from scoreviz.models import ModelConfig
from scoreviz.pipelines import (
    DaeSettings,
    ForwardSettings,
    LossSettings,
    SamplingSettings,
    denoiser_kinds,
)
from scoreviz.problem import Problem, model_key
from scoreviz.processes import PROCESSES, get_process
from scoreviz.samplers import SAMPLERS, SamplerConfig, SamplerDivergedError, sample
from scoreviz.score import exact_score_fn
from scoreviz.stops import sigma_stops
from scoreviz.stops import t_stops as t_options
from scoreviz.training import TrainConfig, train
from scoreviz.ui import cache
from tests.apptest_utils import (
    ROOT,
    assert_no_exception,
    chart_specs,
    inject_model,
    make_app,
    open_page,
    run_until,
    tiny_result,
)

pytestmark = pytest.mark.slow
PROCS = list(PROCESSES)
SEED = 0
TRACEBACK_MARKS = ("Traceback", 'File "')
SMALL = ModelConfig(width=32, depth=2)


def _tiny(proc_key: str):
    """A few hundred steps on eight Gaussians for this process (cached for the session)."""
    return tiny_result(process=proc_key)


def _t_ends(proc) -> tuple[float, float]:
    """The t slider's two ends, which must be t_min and 1."""
    opts = t_options(proc)
    assert (opts[0], opts[-1]) == (proc.t_min, 1.0)
    return opts[0], opts[-1]


def _screen_texts(at) -> list[str]:
    kinds = ("error", "warning", "info", "success", "markdown", "caption", "exception", "code")
    return [str(e.value) for kind in kinds for e in getattr(at, kind)]


def _assert_no_traceback(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    for text in _screen_texts(at):
        assert not any(m in text for m in TRACEBACK_MARKS), text


# ----------------------------------------------------------------------------- the oracle
def test_the_finite_check_flags_bad_numbers_and_allows_line_breaks(assert_finite_figure):
    gaps = go.Scatter(
        x=np.array([0, 1, np.nan, 2.0]), y=np.array([0, 1, np.nan, 3.0]), mode="lines"
    )
    assert_finite_figure(go.Figure([gaps]), "NaN line breaks are allowed")
    bad = [
        go.Scatter(x=[0.0, np.inf], y=[1.0, 2.0], mode="markers"),
        go.Scatter(x=np.array([0.0, np.nan]), y=np.array([1.0, 2.0]), mode="lines"),  # half gap
        go.Heatmap(z=np.array([[1.0, np.nan], [2.0, 3.0]])),
    ]
    for trace in bad:
        with pytest.raises(AssertionError):
            assert_finite_figure(go.Figure([trace]))
    frame = go.Frame(data=[go.Scatter(x=[np.inf], y=[0.0])])
    with pytest.raises(AssertionError, match="frames"):
        assert_finite_figure(go.Figure([go.Scatter(x=[0.0], y=[0.0])], frames=[frame]))


# ----------------------------------------------------------------------------- figures at t ends
@pytest.mark.parametrize("dist_key", ["eight_gaussians", "word"])
@pytest.mark.parametrize("proc_key", PROCS)
def test_forward_figures_at_both_ends_of_t(proc_key, dist_key, assert_finite_figure):
    proc, problem = get_process(proc_key), Problem.builtin(dist_key, proc_key)
    for t in _t_ends(proc):
        view = cache.forward_view(problem, ForwardSettings(t, 600, 120, 80, SEED))
        assert view.noisy.density.max() > 0, "the density must show at every t"
        s = schedule_at(proc, t)
        fig = samples_density_figure(
            view.x0, view.xt, view.noisy.grid, view.noisy.density, t, s["alpha"], s["sigma"],
            view_range(proc, t),
        )  # fmt: skip
        assert_finite_figure(fig, f"samples over p_t at t={t}")
        assert_finite_figure(schedule_figure(schedule_table(proc), t), f"schedule at t={t}")
        for f in forward_figures(view):
            assert_finite_figure(f, f"the page's forward figures at t={t}")
    anim = cache.animation(problem, 26, 600, SEED)
    assert_finite_figure(forward_animation(anim.traj, anim.times, anim.ranges), "animation")


@pytest.mark.parametrize("dist_key", ["eight_gaussians", "word"])
@pytest.mark.parametrize("proc_key", PROCS)
def test_score_field_figures_at_both_ends_of_t(proc_key, dist_key, assert_finite_figure):
    proc, model = get_process(proc_key), _tiny(proc_key)
    for t in _t_ends(proc):
        xy = view_range(proc, t)
        for res in (None, model):
            key = model_key(res)
            problem = Problem.builtin(dist_key, proc_key).with_model("tiny", res)
            field = cache.score_field(problem, cache.tkey(t)).field
            for scaled in (True, False):
                what = f"t={t}, model={key}, scaled={scaled}"
                assert_finite_figure(score_field_figure(field, xy, scaled), what)
                if res is not None:
                    assert_finite_figure(score_difference_figure(field, xy, scaled), what)
                    assert np.isfinite([field.mean_error, field.weighted_error]).all(), what


@pytest.mark.parametrize("proc_key", PROCS)
def test_dae_figures_at_both_ends_of_sigma(proc_key, assert_finite_figure):
    proc, dist_key = get_process(proc_key), "eight_gaussians"
    models = {"tiny": _tiny(proc_key), "tiny dae": tiny_result(kind="dae")}
    kinds = {"tiny": "learned", "tiny dae": "dae", pipelines.EXACT: "exact"}
    problem = Problem.builtin(dist_key, proc_key).with_models(models)
    assert denoiser_kinds(problem) == kinds
    opts = sigma_stops(proc)  # the page's select-slider stops
    lo, hi = opts[0], opts[-1]
    for sigmas in ((lo,), (hi,), tuple(float(s) for s in np.geomspace(lo, hi, 4))):
        for n in (20, 400):  # the "Points" slider's ends
            panels = list(cache.dae_view(problem, DaeSettings(sigmas, n, SEED)).panels)
            assert_finite_figure(dae_reconstruction_figure(panels, kinds), f"σ {sigmas}, {n}")
            hidden = [p.only(set()) for p in panels]  # every denoiser hidden
            assert_finite_figure(dae_reconstruction_figure(hidden, kinds), "all hidden")
    err = cache.dae_error(problem, seed=SEED)
    df = err.table
    marks = {"tiny dae": models["tiny dae"].config.model.dae_sigma}
    assert err.marks == marks
    assert_finite_figure(reconstruction_error_figure(df, kinds, marks), "error vs σ")


@pytest.mark.parametrize("proc_key", PROCS)
def test_loss_figures_at_the_ends_of_their_sliders(proc_key, assert_finite_figure):
    dist_key = "eight_gaussians"
    exact, model = Problem.builtin(dist_key, proc_key), _tiny(proc_key)
    problem = exact.with_model("tiny", model)
    for ws, n_bins, per_bin in (
        ((model.config.weighting,), 20, 128),
        (tuple(WEIGHTINGS), 60, 1024),
    ):
        view = cache.loss_view(problem, LossSettings(ws, n_bins, per_bin, SEED))
        binned, fine, by_bin = view.binned, view.fine, view.by_bin
        fig = loss_vs_t_figure(binned, fine, by_bin, WEIGHTINGS, ws)
        assert_finite_figure(fig, f"loss vs t, {ws}, {n_bins} bins")
        assert_finite_figure(loss_figure(view, ws), f"the page's loss vs t, {ws}")
    floors = cache.weighting_floors(exact)
    assert_finite_figure(weighting_floor_figure(floors, WEIGHTINGS), "weighting floors")
    w, dae_t = model.config.weighting, model.model.dae_t
    floor = cache.mean_loss_floor(exact, w, dae_t)
    assert floor is not None and np.isfinite(floor)
    assert_finite_figure(loss_curve_figure(model.history, floor=floor, title=None), "history")
    assert_finite_figure(loss_curve_figure(model.history, floor=floor), "Train page loss curve")


def test_loss_curve_of_a_run_stopped_before_its_first_report(assert_finite_figure):
    import pandas as pd

    empty = pd.DataFrame({"step": [], "loss": [], "elapsed": []})
    assert_finite_figure(loss_curve_figure(empty, total_steps=20_000), "live curve, no rows yet")


# ----------------------------------------------------------------------------- samplers
def _sampling_figure(model, proc_key: str, config: SamplerConfig, dist_key="eight_gaussians"):
    """What the Sampling page draws for one row (learned if model, else exact)."""
    color = "exact" if model is None else "learned"
    problem = Problem.builtin(dist_key, proc_key).with_model("tiny", model)
    view = cache.sampling_view(problem, SamplingSettings(config, rows=(color,)))
    out = view.rows[0].as_dict()
    fr = out["frames"]
    panel = SamplingPanel("row", color, fr, out["field_xy"], out["field_score"], out["ranges"])
    return sampling_animation([panel], data=view.data), out


@pytest.mark.parametrize("proc_key", PROCS)
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_with_one_step_and_one_particle(name, proc_key, assert_finite_figure):
    for model in (None, _tiny(proc_key)):
        config = SamplerConfig(name, 1, 1, 50, SEED)
        fig, out = _sampling_figure(model, proc_key, config)
        assert out["frames"].xs.shape == (2, 1, 2), "start and end of the single particle"
        assert_finite_figure(fig, f"{name} on {proc_key}, model={model is not None}")
        weights = {"row": out["report"].get("mode_weights", np.zeros(8))}
        true_w = get_distribution("eight_gaussians").weights.numpy()
        assert_finite_figure(mode_weights_figure(true_w, weights, {"row": "exact"}), "weights")


@pytest.mark.parametrize("steps, particles", [(500, 1), (1, 2000)])
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_at_its_other_slider_corners(name, steps, particles, assert_finite_figure):
    config = SamplerConfig(name, steps, particles, 50, SEED)
    fig, out = _sampling_figure(None, "ve", config)  # ve: the widest range of noise levels
    assert out["frames"].n_dropped == 0
    assert_finite_figure(fig, f"{name}, {steps} steps, {particles} particles")


@pytest.mark.parametrize("proc_key", PROCS)
@pytest.mark.parametrize("name", ["langevin", "annealed_langevin"])
def test_an_exploding_langevin_step_raises_a_clear_error(name, proc_key):
    proc = get_process(proc_key)
    score = exact_score_fn(get_distribution("eight_gaussians"), proc)
    # Plain Langevin samples at one t: take the t of sigma = 0.5 (at t_langevin = 0.01, sub-VP's
    # sigma is 0.002 and e = step_size sigma^2 stays tiny). e = 25 > 2 sigma^2: it must blow up.
    t = float(proc.t_from_sigma(0.5))
    config = SamplerConfig(name, 50, 50, 10, SEED, step_size=100.0, t_langevin=t)
    with pytest.raises(SamplerDivergedError) as info:
        sample(score, proc, config)
    msg = str(info.value)
    assert SAMPLERS[name][0] in msg and "blew up" in msg and "Lower the step size" in msg


def test_the_langevin_slider_maximum_samples_finitely(assert_finite_figure):
    """step_size = 2 (the slider's end) is the stability limit with the exact score: no blow-up."""
    for name in ("langevin", "annealed_langevin"):
        fig, out = _sampling_figure(
            None, "vp_linear", SamplerConfig(name, 200, 500, 50, SEED, step_size=2.0)
        )
        assert out["frames"].n_dropped == 0
        assert_finite_figure(fig, f"{name} at step size 2")


def _exploding_configs(monkeypatch) -> None:
    """Make the Sampling page's Langevin step 100x what its slider says (the slider stops at 2)."""
    import scoreviz.samplers as samplers

    real = samplers.SamplerConfig

    def config(*args, **kw):
        if "step_size" in kw:
            kw["step_size"] *= 100
        return real(*args, **kw)

    monkeypatch.setattr(samplers, "SamplerConfig", config)


@pytest.mark.parametrize("name", ["langevin", "annealed_langevin"])
def test_the_sampling_page_shows_an_exploding_step_as_an_error(monkeypatch, name):
    _exploding_configs(monkeypatch)
    at = make_app()
    inject_model(at, _tiny("vp_linear"), "tiny")
    at.run()
    open_page(at, "views/sampling.py")
    at.selectbox(key="sampler").set_value(name).run()
    at.slider(key="sampler_step").set_value(2.0)
    at.slider(key="sampler_particles").set_value(100).run()
    assert_no_exception(at)
    _assert_no_traceback(at)
    errors = [e.value for e in at.error]
    assert errors and all("blew up" in e and "step size" in e for e in errors), errors
    at.selectbox(key="sampler").set_value("reverse_sde").run()  # the page recovers
    assert_no_exception(at)
    assert not at.error and chart_specs(at)


# ----------------------------------------------------------------------------- training
@pytest.mark.parametrize("lr", [100.0, 1e6])  # the Train page's two largest learning rates
@pytest.mark.parametrize("weighting", ["sigma2", "one"])
def test_a_diverging_learning_rate_raises_with_advice(lr, weighting):
    config = TrainConfig(steps=200, lr=lr, weighting=weighting, model=SMALL)
    with pytest.raises(TrainingDivergedError) as info:
        train(config)
    msg = str(info.value)
    assert "diverged" in msg and f"now {lr:g}" in msg and "Lower the learning rate" in msg
    if weighting == "one":
        assert "λ = σ²" in msg


def test_after_a_diverged_run_the_train_page_trains_again():
    """The failed job frees its slot and the button: the next run trains and becomes active."""
    at = make_app()
    inject_model(at, _tiny("vp_linear"), "good")
    at.run()
    open_page(at, "views/train.py")
    at.select_slider(key="tf_lr").set_value(100.0)
    at.selectbox(key="tf_w").set_value("one")
    at.select_slider(key="tf_width").set_value(16)
    at.number_input(key="tf_steps").set_value(50)
    at.button(key="train_submit").click().run()
    run_until(at, _collected, timeout=60)
    _assert_no_traceback(at)
    assert any("diverged" in e.value and "λ = σ²" in e.value for e in at.error)
    assert at.session_state["active_model"] == "good"
    at.select_slider(key="tf_lr").set_value(1e-3)
    at.button(key="train_submit").click().run()
    run_until(at, _collected, timeout=60)
    assert_no_exception(at)
    assert not at.error
    name = at.session_state["active_model"]
    assert name != "good" and list(at.session_state["models"]) == ["good", name]


def _collected(at) -> bool:
    job = at.session_state["training_job"] if "training_job" in at.session_state else None
    return job is not None and job.collected


def test_stop_from_home_ends_cleanly_and_is_never_shared(monkeypatch, assert_finite_figure):
    import scoreviz.training as training

    long_run = functools.partial(training.TrainConfig, steps=20_000, model=SMALL)
    monkeypatch.setattr(training, "TrainConfig", long_run)
    at = make_app().run()
    next(b for b in at.button if b.label == "Train the default model").click().run()
    job = at.session_state["training_job"]
    run_until(at, lambda a: job.steps_done >= 25, timeout=60)
    at.button(key="home_stop").click().run()
    run_until(at, _collected, timeout=60)
    assert job.wait(10) and not job.thread.is_alive(), "the training thread must end"
    assert_no_exception(at)
    res = at.session_state["models"][at.session_state["active_model"]]
    assert res.stopped and 25 <= len(res.history) < 20_000
    assert any("stopped at step" in s.value for s in at.success)
    assert not any(b.key == "home_stop" for b in at.button), "no Stop once it has stopped"
    for page in ("views/score_field.py", "views/sampling.py"):  # the stopped model is usable
        open_page(at, page)
        assert_no_exception(at)
        for spec in chart_specs(at):
            assert_finite_figure(spec, page)

    other = make_app().run()  # another session, same settings: must not get the stopped model
    next(b for b in other.button if b.label == "Train the default model").click().run()
    assert "training_job" in other.session_state, "a stopped model was reused from the store"
    other.session_state["training_job"].request_stop()
    run_until(other, _collected, timeout=60)


# ----------------------------------------------------------------------------- unexpected errors
def test_config_hides_error_details_from_the_audience():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import toml as tomllib  # a Streamlit dependency
    text = (ROOT / ".streamlit" / "config.toml").read_text()
    config = tomllib.loads(text)
    assert config["client"]["showErrorDetails"] in ("none", False)


# (page, a core function it calls, the friendly prefix that must show)
BREAKABLE = [
    ("views/forward.py", "scoreviz.forward.forward_trajectory", "The noised samples"),
    ("views/score_field.py", "scoreviz.grids.score_field", "The score field"),
    ("views/dae.py", "scoreviz.analysis.reconstructions", "The reconstruction view"),
    ("views/loss.py", "scoreviz.analysis.floor_curve", "The weighting comparison"),
    ("views/sampling.py", "scoreviz.samplers.sample", "Sampling"),
    ("views/train.py", "scoreviz.losses.loss_floor", "The loss curve"),
]


@pytest.mark.parametrize("page, target, what", BREAKABLE, ids=[b[0] for b in BREAKABLE])
def test_an_unexpected_error_shows_a_friendly_message(monkeypatch, page, target, what):
    secret = "internal detail the audience must not see"

    def broken(*args, **kwargs):
        raise RuntimeError(secret)

    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(f"{module}.{name}", broken)
    st.cache_data.clear()  # a cached result would never call the broken function
    cache.clear_shared_figures()  # nor would a figure another test built
    at = make_app()
    inject_model(at, _tiny("vp_linear"), "tiny")
    at.run()
    open_page(at, page)
    _assert_no_traceback(at)
    errors = [e.value for e in at.error]
    expected = f"{what} hit an unexpected problem (RuntimeError)"
    assert any(e.startswith(expected) for e in errors), errors
    assert not any(secret in text for text in _screen_texts(at))
    st.cache_data.clear()
    cache.clear_shared_figures()


def test_breakable_targets_exist():
    """The functions patched above are real (a rename must not silently turn the test vacuous)."""
    import importlib

    for _, target, _ in BREAKABLE:
        module, name = target.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), target
    assert Path(ROOT / ".streamlit" / "config.toml").exists()
