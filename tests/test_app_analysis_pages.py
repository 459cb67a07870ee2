"""AppTest of the DAE, Loss-vs-t and Sampling pages: before training (exact views + notice),
with a tiny trained model (defaults and sliders at their extremes), and failures shown kindly."""

import dataclasses

import numpy as np
import pytest
import torch

from scoreviz.processes import get_process
from scoreviz.stops import sigma_stops
from scoreviz.text import readable
from tests.apptest_utils import (
    assert_no_exception,
    chart_specs,
    decode,
    inject_model,
    make_app,
    open_page,
    tiny_result,
)

DAE, LOSS, SAMPLING = "views/dae.py", "views/loss.py", "views/sampling.py"


def _names(spec) -> set[str]:
    """Legend names as the reader sees them, of traces and of shapes (arrows and dots: see
    figures.polygons); model names in them arrive escaped (text.escape)."""
    items = [*spec["data"], *spec["layout"].get("shapes", [])]
    return {readable(it["name"]) for it in items if it.get("name")}


def _app(page, model=None, name="tiny"):
    at = make_app()
    at.run()
    if model is not None:
        inject_model(at, model, name)
    return open_page(at, page)


@pytest.fixture(scope="module")
def tiny():
    return tiny_result()


@pytest.mark.parametrize("page, n_charts", [(DAE, 2), (LOSS, 1), (SAMPLING, 1)])
def test_pages_before_training_show_exact_views_and_a_notice(page, n_charts):
    at = _app(page)
    assert_no_exception(at)
    assert any("No trained model" in i.value for i in at.info)
    specs = chart_specs(at)
    assert len(specs) >= n_charts
    if page == SAMPLING:
        anim = specs[0]
        assert len(anim["frames"]) == 50
        assert any("exact score" in n for n in _names(anim))
        assert not any("learned" in n for n in _names(anim))


def test_dae_page_with_a_model_and_sigma_at_both_ends(tiny):
    at = _app(DAE, tiny)
    assert_no_exception(at)
    recon, error = chart_specs(at)
    assert {"x̃ → tiny", "x̃ → exact E[x₀|x̃]"} <= _names(recon)
    assert "tiny" in _names(error)
    opts = sigma_stops(get_process("vp_linear"))  # the slider's values
    for lo, hi in ((opts[0], opts[0]), (opts[-1], opts[-1]), (opts[0], opts[-1])):
        at.select_slider(key="dae_range_vp_linear").set_value((lo, hi)).run()
        assert_no_exception(at)
        n_panels = sum(1 for k in chart_specs(at)[0]["layout"] if k.startswith("xaxis"))
        assert n_panels == (1 if lo == hi else 4)
    at.slider(key="dae_points").set_value(20).run()
    at.multiselect(key="dae_hidden").set_value(["tiny"]).run()
    assert "x̃ → tiny" not in _names(chart_specs(at)[0])
    assert_no_exception(at)


def test_dae_page_trains_a_classical_dae(tiny):
    at = _app(DAE, tiny)
    at.slider(key="dae_train_steps").set_value(200)
    at.button(key="dae_train").click().run()
    assert_no_exception(at)
    daes = [n for n, r in at.session_state["models"].items() if r.config.model.kind == "dae"]
    assert len(daes) == 1
    assert at.session_state["active_model"] == "tiny"  # the DAE does not replace it
    recon, error = chart_specs(at)
    label = daes[0].split(" · ")[0]  # "DAE σ=…": legends leave the registry keys out
    assert f"x̃ → {label}" in _names(recon)
    assert f"{label}: its σ" in _names(error)
    assert not any("eight_gaussians" in n or "vp_linear" in n for n in _names(recon))


def test_loss_page_with_a_model(tiny):
    at = _app(LOSS, tiny)
    assert_no_exception(at)
    specs = chart_specs(at)
    assert len(specs) == 3  # loss vs t, weighting floors, history
    assert sum(1 for tr in specs[0]["data"] if tr.get("name", "").startswith("exact floor")) == 2
    at.multiselect(key="loss_weightings").set_value(["sigma2", "one", "x0", "min_snr"])
    at.slider(key="loss_bins").set_value(60).run()
    assert_no_exception(at)
    data = chart_specs(at)[0]["data"]
    loss_traces = [tr for tr in data if tr.get("name", "").startswith("model's loss")]
    assert len(loss_traces) == 4
    at.multiselect(key="loss_weightings").set_value([]).run()
    assert_no_exception(at)


def test_sampling_page_with_a_model_at_the_extremes(tiny):
    at = _app(SAMPLING, tiny)
    assert_no_exception(at)
    anim = chart_specs(at)[0]
    names = " ".join(_names(anim))
    assert "learned score" in names and "exact score" in names
    assert len(anim["frames"]) == 50
    assert len(at.dataframe) == 1
    at.slider(key="sampler_steps").set_value(1)
    at.slider(key="sampler_particles").set_value(1).run()
    assert_no_exception(at)
    assert len(chart_specs(at)[0]["frames"]) == 2  # start and end
    at.radio(key="sampler_show").set_value("Exact only").run()
    assert_no_exception(at)


def test_sampling_page_switches_for_x0_hat_and_trails(tiny):
    """Defaults: one row of x_t panels (learned beside exact), trails on, x0_hat off; the
    toggles add the x0_hat row and remove the trails. The figure is the page's main chart."""
    at = _app(SAMPLING, tiny)
    anim = chart_specs(at)[0]
    titles = [a["text"] for a in anim["layout"]["annotations"]]
    assert titles == ["learned score: x_t", "exact score: x_t"]
    # fits 1280x720 under the controls: a fixed height of at most 470 px, or (issue 20: sized
    # to its data) no fixed height and a box at most the screen's height less charts.NORMAL_OFFSET
    from scoreviz.ui import charts

    if "height" in anim["layout"]:
        assert anim["layout"]["height"] <= 470
    else:
        assert 720 - charts.NORMAL_OFFSET <= 470
        css = [h.proto.body for h in at.get("html") if "aspect-ratio" in h.proto.body]
        assert css and f"calc(100vh - {charts.NORMAL_OFFSET}px)" in css[0]
    assert any(tr.get("legendgroup") == "trails" for tr in anim["data"])
    at.toggle(key="sampler_x0").set_value(True)
    at.toggle(key="sampler_trails").set_value(False).run()
    assert_no_exception(at)
    anim = chart_specs(at)[0]
    titles = [a["text"] for a in anim["layout"]["annotations"]]
    assert sum("x̂₀ (Tweedie)" in t for t in titles) == 2 and len(titles) == 4
    assert not any(tr.get("legendgroup") == "trails" for tr in anim["data"])
    assert len(anim["frames"]) == 50


def test_a_model_with_a_fixed_training_set_is_compared_with_the_memorising_optimum():
    from scoreviz.models import ModelConfig
    from scoreviz.training import TrainConfig, train

    few = train(TrainConfig(n_train=20, steps=200, model=ModelConfig(width=32, depth=2), seed=5))
    at = _app(SAMPLING, few, "few points")
    at.slider(key="sampler_steps").set_value(60)
    at.slider(key="sampler_particles").set_value(300).run()
    assert_no_exception(at)
    assert any("20 training points" in i.value for i in at.info)
    anim = chart_specs(at)[0]
    titles = [a["text"] for a in anim["layout"]["annotations"]]
    assert any(t.startswith("memorising optimum") for t in titles)
    assert sum(t.endswith("x_t") for t in titles) == 3  # learned, exact, memorising rows
    crosses = [tr for tr in anim["data"] if tr.get("legendgroup") == "train"]
    assert len(crosses) == 3 and all(len(decode(tr["x"])) == 20 for tr in crosses)
    assert np.allclose(decode(crosses[0]["x"]), few.train_points[:, 0].numpy(), atol=6e-4)
    table = at.dataframe[0].value
    assert list(table.columns) == ["learned score", "exact score", "memorising optimum"]
    ratio = table.loc["ratio (≈ 1: generalises, ≈ 0: memorises)"]
    assert ratio["memorising optimum"] < 0.5 * ratio["exact score"]  # it copies; exact does not
    at.checkbox(key="sampler_memorised").uncheck().run()
    assert_no_exception(at)
    titles = [a["text"] for a in chart_specs(at)[0]["layout"]["annotations"]]
    assert not any("memorising" in t for t in titles)


def test_infinite_data_models_are_not_offered_the_memorising_optimum(tiny):
    at = _app(SAMPLING, tiny)
    assert tiny.train_points is None
    assert not any("training points" in i.value for i in at.info)
    assert "memorising optimum" not in " ".join(_names(chart_specs(at)[0]))
    with pytest.raises(KeyError):
        at.checkbox(key="sampler_memorised")


@pytest.mark.parametrize(
    "sampler", ["pf_ode_heun", "ddpm", "ddim", "pc", "annealed_langevin", "langevin"]
)
def test_every_sampler_runs_on_the_page(tiny, sampler):
    at = _app(SAMPLING, tiny)
    at.selectbox(key="sampler").set_value(sampler)
    at.slider(key="sampler_steps").set_value(20)
    at.slider(key="sampler_particles").set_value(50).run()
    assert_no_exception(at)
    assert not at.error
    assert chart_specs(at)[0]["frames"]


class _NaNModel:
    """A model whose score is NaN everywhere: the sampler must report, not crash."""

    def __init__(self, model):
        self.config, self.process, self.dae_t = model.config, model.process, None

    def score(self, x, t):
        return torch.full_like(x, float("nan"))

    denoise = eps = score


def test_a_diverging_sampler_shows_its_message(tiny):
    bad = dataclasses.replace(tiny, model=_NaNModel(tiny.model), model_id="nan-model")
    at = _app(SAMPLING, bad, name="broken")
    assert_no_exception(at)
    assert any("blew up" in e.value for e in at.error)
    at.radio(key="sampler_show").set_value("Exact only").run()
    assert_no_exception(at) and not at.error
    assert chart_specs(at)


def test_a_model_for_other_data_is_not_compared(tiny):
    at = _app(DAE, tiny)
    at.selectbox(key="distribution").set_value("two_moons").run()
    for page in (DAE, LOSS, SAMPLING):
        open_page(at, page)
        assert_no_exception(at)
        assert any("was trained on" in w.value for w in at.warning)
