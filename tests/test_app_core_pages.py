"""AppTest of app.py on the core pages: Home, Data & forward, Train, Score field.

Training runs in the real background thread (scoreviz.ui.training_runner); tests rerun the app
until app.py has collected the job (`run_until`), exactly as the page's polling fragment does.
"""

from __future__ import annotations

import functools
import html

import pytest

from scoreviz import get_process
from scoreviz.figures.arrows import polygon_vectors
from scoreviz.models import ModelConfig
from scoreviz.stops import t_stops as t_options
from tests.apptest_utils import (
    assert_no_exception,
    chart_specs,
    inject_model,
    make_app,
    open_page,
    run_until,
    tiny_result,
)

pytestmark = pytest.mark.slow
SMALL = ModelConfig(width=32, depth=2)


def _collected(at) -> bool:
    job = at.session_state["training_job"] if "training_job" in at.session_state else None
    return job is not None and job.collected


def _train_via_form(at, steps: int = 100):
    open_page(at, "views/train.py")
    at.number_input(key="tf_steps").set_value(steps)
    at.select_slider(key="tf_width").set_value(32)
    at.slider(key="tf_depth").set_value(2)
    at.button(key="train_submit").click().run()
    return run_until(at, _collected, timeout=90)


# ----------------------------------------------------------------------------- Home
def test_home_explains_and_links_every_view():
    at = make_app().run()
    assert_no_exception(at)
    assert at.get("latex"), "Tweedie's formula is missing"
    assert any(b.label == "Train the default model" for b in at.button)
    assert len(at.get("page_link")) >= 6


def test_home_button_trains_the_default_config_and_activates_it(monkeypatch):
    import scoreviz.training as training

    # the real default trains 3000 steps; same code path with a short run
    quick = functools.partial(training.TrainConfig, steps=60, model=SMALL)
    monkeypatch.setattr(training, "TrainConfig", quick)
    at = make_app().run()
    next(b for b in at.button if b.label == "Train the default model").click().run()
    run_until(at, _collected, timeout=90)
    assert_no_exception(at)
    name = at.session_state["active_model"]
    assert name and name.startswith("default")
    cfg = at.session_state["models"][name].config
    assert (cfg.distribution, cfg.process, cfg.seed) == ("eight_gaussians", "vp_linear", 0)
    assert any("is now active" in s.value for s in at.success)


# ----------------------------------------------------------------------------- Data & forward
def test_forward_page_defaults():
    at = open_page(make_app(), "views/forward.py")
    assert_no_exception(at)
    assert len(chart_specs(at)) == 3  # data | noised (one figure), schedule, animation
    assert not at.warning  # the default VP schedule reaches the prior
    anim = chart_specs(at)[2]
    assert len(anim["frames"]) >= 20
    assert {m.label for m in at.metric} >= {"σ_t (noise)", "α_t (signal)"}


@pytest.mark.parametrize("proc", ["vp_linear", "ve", "sub_vp"])
def test_forward_page_at_slider_extremes(proc):
    at = make_app().run()
    at.selectbox(key="process").set_value(proc).run()
    open_page(at, "views/forward.py")
    opts = t_options(get_process(proc))
    for t in (opts[0], opts[-1]):
        at.select_slider(key=f"forward_t_{proc}").set_value(t).run()
        assert_no_exception(at)
        assert len(chart_specs(at)) == 3  # data | noised, schedule, animation
        assert at.metric[0].value == f"{t:.3g}"


def test_sidebar_choice_persists_across_pages():
    at = make_app().run()
    at.selectbox(key="distribution").set_value("two_moons").run()
    at.selectbox(key="process").set_value("ve").run()
    for page in ("views/forward.py", "views/score_field.py", "views/train.py", "views/home.py"):
        open_page(at, page)
        assert_no_exception(at)
        assert at.selectbox(key="distribution").value == "two_moons", page
        assert at.selectbox(key="process").value == "ve", page
    open_page(at, "views/forward.py")
    assert any("Two moons" in m.value for m in at.markdown)


# ----------------------------------------------------------------------------- Score field
def test_score_field_before_training_shows_exact_field_and_says_what_to_do():
    at = open_page(make_app(), "views/score_field.py")
    assert_no_exception(at)
    assert any("No trained model yet" in i.value for i in at.info)
    assert len(chart_specs(at)) == 1  # the exact field only
    assert any("train" in str(link.proto.page).lower() for link in at.get("page_link"))
    assert any(b.label.startswith("Train for this data (~") for b in at.button)


@pytest.mark.parametrize("proc", ["vp_linear", "ve"])
def test_score_field_with_a_model_at_slider_extremes(proc):
    res = tiny_result(process=proc)
    at = make_app()
    inject_model(at, res, "tiny")
    at.run()
    at.selectbox(key="process").set_value(proc).run()
    open_page(at, "views/score_field.py")
    assert not any("No trained model yet" in i.value for i in at.info)
    opts = t_options(get_process(proc))
    for t in (opts[0], opts[-1]):
        for scaled in (True, False):
            at.select_slider(key=f"field_t_{proc}").set_value(t)
            at.toggle(key="field_scaled").set_value(scaled).run()
            assert_no_exception(at)
            specs = chart_specs(at)
            assert len(specs) == 2  # learned | exact, and difference | error
            assert specs[0]["layout"]["meta"]["arrow_scale"] >= 0
            assert any("Mean error" in m.value for m in at.markdown)


def test_score_field_overlay_and_arrow_density():
    at = make_app()
    inject_model(at, tiny_result(), "tiny")
    at.run()
    open_page(at, "views/score_field.py")
    at.slider(key="field_arrows").set_value(9)
    at.toggle(key="field_overlay").set_value(True).run()
    assert_no_exception(at)
    field = chart_specs(at)[0]
    assert {tr.get("xaxis", "x") for tr in field["data"]} == {"x"}  # one panel
    arrows = field["layout"]["shapes"]
    assert [s["name"] for s in arrows] == ["learned score", "exact score"]
    assert all(s["xref"] == "x" for s in arrows)  # one panel
    assert len(polygon_vectors(arrows[0]["path"])[0]) == 9 * 9


def test_score_field_without_a_matching_model_shows_the_exact_field_and_the_notice():
    """Issue 10: like every page, a model for other data is not shown: the exact field, the
    mismatch warning and the no-model notice with its Train button."""
    at = make_app()
    inject_model(at, tiny_result(), "tiny")  # trained on eight_gaussians / vp_linear
    at.run()
    at.selectbox(key="distribution").set_value("two_moons").run()
    open_page(at, "views/score_field.py")
    assert_no_exception(at)
    assert any("was trained on" in w.value for w in at.warning)
    assert any("No trained model yet" in i.value for i in at.info)
    assert any(b.label.startswith("Train for this data (~") for b in at.button)
    specs = chart_specs(at)
    assert len(specs) == 1  # the exact field only, no learned panel, no error figure
    names = {it.get("name") for it in [*specs[0]["data"], *specs[0]["layout"].get("shapes", [])]}
    assert "exact score" in names and "learned score" not in names


# ----------------------------------------------------------------------------- Train
def test_train_form_trains_a_model_in_the_background():
    at = make_app().run()
    _train_via_form(at)
    assert_no_exception(at)
    models = at.session_state["models"]
    assert len(models) == 1
    name = at.session_state["active_model"]
    assert name in models and len(models[name].history) == 100
    assert any("is now active" in s.value for s in at.success)
    assert len(chart_specs(at)) == 1  # the active model's loss curve
    assert at.selectbox(key="active_model").value == name  # the sidebar offers it


def test_the_train_forms_defaults_are_the_api_defaults():
    """Pressing Train without touching the form trains exactly TrainConfig(distribution=...)
    for the sidebar's data, process and seed: the API (benchmark, notebooks) and the page agree."""
    from scoreviz.training import TrainConfig

    at = make_app().run()
    open_page(at, "views/train.py")
    at.button(key="train_submit").click().run()
    job = at.session_state["training_job"]
    job.request_stop()
    assert job.config == TrainConfig(distribution="eight_gaussians", process="vp_linear", seed=0)
    run_until(at, _collected, timeout=90)
    assert_no_exception(at)


def test_a_trained_model_gets_a_verdict_against_the_exact_answer_and_trains_longer():
    """After training, the Train page and the sidebar show the verdict with its number (nats
    lost vs the exact score); "Train longer" continues the same model: its history runs on
    from the parent's, and the continued model becomes active with its own verdict."""
    at = make_app().run()
    # 120 steps: a config no other test trains (an identical one would be reused from the
    # server-wide store without a job)
    _train_via_form(at, steps=120)
    assert_no_exception(at)
    parent_name = at.session_state["active_model"]
    parent = at.session_state["models"][parent_name]
    assert parent.quality is not None and parent.quality.nats_lost > 0.3  # 120 steps: unlearned
    verdicts = [w.value for w in at.warning if "nats lost" in w.value]
    assert verdicts and "Keep training" in verdicts[0]
    assert any("nats lost" in c.value for c in at.sidebar.caption)
    at.button(key="train_more").click().run()
    run_until(at, _collected, timeout=90)
    assert_no_exception(at)
    name = at.session_state["active_model"]
    assert name == f"{parent_name} +120"
    more = at.session_state["models"][name]
    assert more.config.parent == parent.model_id
    assert more.history["step"].tolist() == list(range(1, 241))
    assert more.history["loss"].iloc[:120].tolist() == parent.history["loss"].tolist()
    assert more.quality is not None and more.quality.nats_lost < parent.quality.nats_lost


def test_identical_config_is_reused_from_the_server_store():
    at = make_app().run()
    _train_via_form(at, steps=150)
    first = at.session_state["models"][at.session_state["active_model"]]
    at2 = make_app().run()  # another session
    open_page(at2, "views/train.py")
    at2.number_input(key="tf_steps").set_value(150)
    at2.select_slider(key="tf_width").set_value(32)
    at2.slider(key="tf_depth").set_value(2)
    at2.button(key="train_submit").click().run()
    assert "training_job" not in at2.session_state  # nothing trained
    assert at2.session_state["models"][at2.session_state["active_model"]] is first
    assert any("already trained on this server" in s.value for s in at2.success)


def test_two_sessions_pressing_train_together_train_once():
    """The second session presses while the first one's identical job is still running: it
    waits for that job (showing its progress) and gets the same model, no second training."""

    def press(at):
        at.number_input(key="seed").set_value(97).run()  # a config no other test trains
        open_page(at, "views/train.py")
        at.number_input(key="tf_steps").set_value(1500)
        at.select_slider(key="tf_width").set_value(32)
        at.slider(key="tf_depth").set_value(2)
        return at.button(key="train_submit").click().run()

    first, second = press(make_app().run()), press(make_app().run())
    job1, job2 = first.session_state["training_job"], second.session_state["training_job"]
    assert not job1.done, "the first job ended before the second press: nothing to share"
    run_until(second, lambda at: at.session_state["training_job"].collected, timeout=120)
    run_until(first, _collected, timeout=120)
    assert job2.reused and not job1.reused
    a = first.session_state["models"][first.session_state["active_model"]]
    b = second.session_state["models"][second.session_state["active_model"]]
    assert a is b and len(a.history) == 1500
    assert any("already trained on this server" in s.value for s in second.success)
    assert_no_exception(second)


def test_diverging_learning_rate_shows_error_and_keeps_previous_model():
    at = make_app()
    inject_model(at, tiny_result(), "good")
    at.run()
    open_page(at, "views/train.py")
    at.select_slider(key="tf_lr").set_value(1e6)
    at.select_slider(key="tf_width").set_value(32)
    at.button(key="train_submit").click().run()
    run_until(at, _collected, timeout=60)
    assert_no_exception(at)
    assert any("diverged" in e.value and "learning rate" in e.value for e in at.error)
    assert at.session_state["active_model"] == "good"
    assert list(at.session_state["models"]) == ["good"]


def test_stop_button_stops_training_and_keeps_the_model():
    at = make_app().run()
    open_page(at, "views/train.py")
    at.number_input(key="tf_steps").set_value(20_000)
    at.select_slider(key="tf_width").set_value(32)
    at.button(key="train_submit").click().run()
    job = at.session_state["training_job"]
    run_until(at, lambda a: job.steps_done >= 25, timeout=60)
    at.button(key="train_stop").click().run()
    run_until(at, _collected, timeout=60)
    res = at.session_state["models"][at.session_state["active_model"]]
    assert res.stopped and len(res.history) < 20_000
    assert any("stopped at step" in s.value for s in at.success)


def test_over_budget_settings_are_refused_before_training():
    at = make_app().run()
    open_page(at, "views/train.py")
    at.number_input(key="tf_steps").set_value(20_000)
    at.select_slider(key="tf_width").set_value(256)
    at.slider(key="tf_depth").set_value(6)
    at.select_slider(key="tf_batch").set_value(2048)
    at.button(key="train_submit").click().run()
    assert_no_exception(at)
    refused = [e.value for e in at.error if "one training may take at most 5 min" in e.value]
    assert refused and "Use fewer steps" in refused[0], [e.value for e in at.error]
    assert "at most 2,800 at these settings" in refused[0]
    assert "training_job" not in at.session_state  # nothing started


def test_an_overrunning_training_is_stopped_and_its_model_kept(monkeypatch):
    from scoreviz.ui import training_runner as tr

    monkeypatch.setattr(tr, "TIME_LIMIT_SECONDS", 0.5)
    at = make_app().run()
    open_page(at, "views/train.py")
    at.number_input(key="tf_steps").set_value(20_000)
    at.select_slider(key="tf_width").set_value(32)
    at.button(key="train_submit").click().run()
    run_until(at, _collected, timeout=60)
    assert_no_exception(at)
    res = at.session_state["models"][at.session_state["active_model"]]
    assert res.stopped and len(res.history) < 20_000
    assert any("reached the time limit" in s.value for s in at.success)


class _Running:
    """A stand-in for a job holding a training slot, 40 s from its end."""

    estimate = 40.0

    def remaining(self) -> float:
        return 40.0


def test_a_queued_training_shows_its_place_and_wait():
    from scoreviz.jobs import training_job as tr

    holders = [_Running() for _ in range(tr.MAX_CONCURRENT)]
    for h in holders:
        tr.SLOTS.acquire(h)
    try:
        at = make_app().run()
        open_page(at, "views/train.py")
        at.select_slider(key="tf_width").set_value(32)
        at.button(key="train_submit").click().run()
        job = at.session_state["training_job"]
        run_until(at, lambda a: job.queue_place() is not None, timeout=30)
        texts = [p.proto.text for p in at.get("progress")]
        assert any("1st in line, about 40 s" in t for t in texts), texts
    finally:
        job.request_stop()
        for h in holders:
            tr.SLOTS.release(h)
    assert job.wait(30)


def test_bad_upload_shows_error_and_keeps_dataset():
    at = make_app().run()
    open_page(at, "views/train.py")
    at.file_uploader(key="upload_file").set_value(("bad.csv", b"x,y\nfoo,bar\n", "text/csv"))
    at.run()
    assert_no_exception(at)
    assert at.error, "a rejected upload must say why"
    assert at.session_state["upload"] is None
    assert at.selectbox(key="distribution").value == "eight_gaussians"


def test_good_upload_becomes_the_selected_distribution():
    rows = "\n".join(f"{i % 7},{(i * 3) % 11}" for i in range(300))
    at = make_app().run()
    open_page(at, "views/train.py")
    at.file_uploader(key="upload_file").set_value(("cloud.csv", rows.encode(), "text/csv"))
    at.run()
    assert_no_exception(at)
    assert at.session_state["upload"] is not None
    assert at.selectbox(key="distribution").value == "upload"
    open_page(at, "views/forward.py")
    assert_no_exception(at)
    assert any("cloud.csv" in html.unescape(m.value) for m in at.markdown)  # escaped: cloud&#46;csv


def test_upload_smoothing_is_chosen_from_the_data_and_can_be_changed():
    """A thin outline gets a small width chosen from the data; the slider shows the points over
    the smoothed density, and another width makes another distribution (its own key)."""
    import numpy as np

    rng = np.random.default_rng(0)
    u = rng.uniform(0, 2 * np.pi, 3000)
    r = 1 + 0.3 * np.sin(5 * u)
    pts = np.stack([r * np.cos(u), r * np.sin(u)], 1) + 0.026 * rng.normal(size=(3000, 2))
    rows = "\n".join(f"{x:.5f},{y:.5f}" for x, y in pts)
    at = make_app().run()
    open_page(at, "views/train.py")
    at.file_uploader(key="upload_file").set_value(("star.csv", rows.encode(), "text/csv"))
    at.run()
    assert_no_exception(at)
    up = at.session_state["upload"]
    assert 0.005 < up.bandwidth == up.auto_bandwidth < 0.06
    assert float(up.dist.stds.min()) == pytest.approx(
        up.bandwidth, rel=1e-3
    )  # 3,000 -> 2,000 merged
    assert at.select_slider(key="upload_h").value == up.bandwidth
    key_auto = f"upload:{up.sha}"
    assert any(s["layout"]["title"]["text"].startswith("Your points") for s in chart_specs(at))
    wider = round(up.auto_bandwidth * 16, 6)  # the widest option (the slider offers h x 2^k)
    at.select_slider(key="upload_h").set_value(wider).run()
    assert_no_exception(at)
    up2 = at.session_state["upload"]
    assert up2.bandwidth == pytest.approx(wider) and up2.bandwidth > 8 * up.bandwidth
    assert float(up2.dist.stds.min()) == pytest.approx(up2.bandwidth)
    assert f"upload:{up2.sha}" != key_auto and len(up2.sha) == 16
    assert up2.raw_sha == up.sha  # the file is the same


def test_bad_model_file_shows_error_and_changes_nothing():
    at = make_app()
    inject_model(at, tiny_result(), "good")
    at.run()
    open_page(at, "views/train.py")
    at.file_uploader(key="model_file").set_value(("m.safetensors", b"not a model", "x/y"))
    at.run()
    assert_no_exception(at)
    assert at.error
    assert list(at.session_state["models"]) == ["good"]
    assert at.session_state["active_model"] == "good"


def test_score_field_with_a_classical_dae_explains_its_single_sigma():
    at = make_app()
    inject_model(at, tiny_result(kind="dae"), "dae")
    at.run()
    open_page(at, "views/score_field.py")
    assert_no_exception(at)
    assert any("classical DAE" in i.value for i in at.info)
    assert len(chart_specs(at)) == 2


def test_model_export_import_round_trip():
    from scoreviz import model_io

    res = tiny_result()
    at = make_app().run()
    open_page(at, "views/train.py")
    data = model_io.export_model(res)
    at.file_uploader(key="model_file").set_value(("tiny.safetensors", data, "x/y"))
    at.run()
    assert_no_exception(at)
    name = at.session_state["active_model"]
    assert name == "imported · tiny.safetensors"
    assert at.session_state["models"][name].model_id == res.model_id
    assert at.get("download_button"), "the active model can be exported again"
    open_page(at, "views/score_field.py")
    assert_no_exception(at)
    assert len(chart_specs(at)) == 2


def test_home_button_reuses_an_identical_model_and_the_sidebar_shows_it():
    from scoreviz.training import TrainConfig
    from scoreviz.ui.models import shared_models

    res = tiny_result()
    default_id = TrainConfig(distribution="eight_gaussians", process="vp_linear", seed=0).model_id
    at = make_app()
    inject_model(at, tiny_result(kind="dae"), "other")  # the sidebar already has a model box
    at.run()
    shared_models().put(default_id, res)  # as if another session had trained the default
    next(b for b in at.button if b.label == "Train the default model").click().run()
    assert_no_exception(at)
    assert "training_job" not in at.session_state
    name = at.session_state["active_model"]
    assert name.startswith("default") and at.session_state["models"][name] is res
    assert at.selectbox(key="active_model").value == name
    assert any("already trained on this server" in s.value for s in at.success)


@pytest.mark.parametrize("page", ["views/score_field.py", "views/sampling.py", "views/loss.py"])
def test_train_for_this_data_shows_the_model_in_place(page):
    """The no-model notice's button trains the default model for the sidebar's choice; when the
    server already has it (shared cache), it is active at once and the page shows it."""
    from scoreviz.training import TrainConfig
    from scoreviz.ui.models import shared_models

    config = TrainConfig(distribution="two_moons", process="vp_linear", seed=11)
    shared_models().put(config.model_id, tiny_result("two_moons", steps=310))
    at = make_app()
    at.run()
    at.selectbox(key="distribution").set_value("two_moons").run()
    at.number_input(key="seed").set_value(11).run()
    open_page(at, page)
    assert any("No trained model yet" in i.value for i in at.info)
    next(b for b in at.button if b.label.startswith("Train for this data")).click().run()
    assert_no_exception(at)
    assert not any("No trained model yet" in i.value for i in at.info)
    assert at.session_state["models"][at.session_state["active_model"]].config.distribution == (
        "two_moons"
    )
    shared_models().discard(config.model_id)  # a stand-in under a real config's id
