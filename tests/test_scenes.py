"""Scenes (scoreviz.ui.scenes): the shipped files load and validate, broken files are refused
with a message naming the file, and every scene opens from its link in the app: the right page,
its settings, its card, its models (from the server's shared cache)."""

from __future__ import annotations

import pytest

from scoreviz import sketch
from scoreviz.scenes import ScenesError, load_scene
from scoreviz.ui import keys, pages
from scoreviz.ui.scenes import check_settings, load_scenes
from tests.apptest_utils import make_app, tiny_result

SCENES = load_scenes()


def test_at_least_seven_scenes_each_complete():
    assert len(SCENES) >= 7
    files = {p.file for p in pages.PAGES}
    for scene in SCENES.values():
        assert scene.page in files
        assert 2 <= scene.summary.count(". ") + 1 <= 6, scene.name  # two or three sentences+
        assert "\\" in scene.formula  # LaTeX
        settings = scene.settings_dict
        data = settings["data"]  # drawn or typed data: trained under its points' key
        if data == "drawn":
            data = sketch.from_code(settings["drawing"]).key
        elif data == "typed":
            data = sketch.from_word(settings["word"]).key
        for config in scene.train:
            assert (config.distribution, config.process) == (data, settings["process"])


HEAD = 'title = "x"\npage = "views/dae.py"\nsummary = "s"\n'


@pytest.mark.parametrize(
    "text,problem",
    [
        (HEAD + 'formula = "f"\ncolour = 1', "unknown"),
        ('title = "x"\npage = "views/nope.py"\nsummary = "s"\nformula = "f"', "not one of"),
        (HEAD + 'formula = ""', "formula"),
        (HEAD + 'formula = "f"\n[settings]\nsteps = 5', "not on that page"),  # fmt: skip
        (HEAD + 'formula = "f"\n[settings]\ndata = "zz"', "invalid settings"),  # fmt: skip
        (HEAD + 'formula = "f"\n[train]\nwidht = 3', "not TrainConfig"),  # fmt: skip
        (HEAD + 'formula = "f"\n[train]\nsteps = -1', "steps"),  # fmt: skip
        ('title = "x\npage = ', "TOML"),
        (HEAD + 'formula = "f"\n[settings]\nsigmas = "0.0479~2"', "would show 1"),  # clamped
        (HEAD + 'formula = "f"\n[settings]\nsigmas = "0.05~0.827"', "would show 0.0479"),
        (HEAD + 'formula = "f"\n[settings]\nsigmas = "0~0.827"', "noise level"),
        (HEAD.replace("dae", "forward") + 'formula = "f"\n[settings]\nt = "0.105"', "t slider"),
        (HEAD.replace("dae", "forward") + 'formula = "f"\n[settings]\nt = "0.0001"', "t slider"),
    ],
)
def test_broken_scene_files_are_refused(tmp_path, text, problem):
    path = tmp_path / "9_broken.toml"
    path.write_text(text)
    with pytest.raises(ScenesError, match=problem) as e:
        check_settings(load_scene(path))  # the file's checks (core), then the page's (app)
    assert "9_broken" in str(e.value)


@pytest.fixture
def preload():
    """Put a quickly trained stand-in under each of a scene's model ids in the server's shared
    store, so the scene finds it there (the path a second student's click takes); removed
    afterwards, since the ids are real configs' (the default model's among them) that other
    tests train."""
    from scoreviz.ui.models import shared_models

    ids = []

    def put(scene) -> None:
        for i, config in enumerate(scene.train):
            shared_models().put(config.model_id, tiny_result(steps=200 + i))
            ids.append(config.model_id)

    yield put
    for model_id in ids:
        shared_models().discard(model_id)


@pytest.mark.parametrize("name", list(SCENES))
def test_every_scene_opens_from_its_link(name, preload):
    scene = SCENES[name]
    preload(scene)
    at = make_app()
    at.query_params["scene"] = name
    at.run()
    for _ in range(len(scene.train) + 2):  # each shared model: one rerun; then the page switch
        if at.session_state[keys.PAGE] == scene.page and not at.session_state["_scene_trainings"]:
            break
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    ss = at.session_state
    assert ss[keys.PAGE] == scene.page
    assert ss["distribution"] == scene.settings_dict["data"]
    assert ss["scene"] == name
    assert len(ss["models"]) == len(scene.train)
    assert any(scene.title in m.value for m in at.markdown), [m.value for m in at.markdown]
    assert any(scene.formula in x.value for x in at.latex)
    assert dict(at.query_params)["scene"] == name


def test_scene_button_applies_it_and_close_hides_the_card():
    scene = SCENES["too_few_steps"]
    at = make_app()
    at.run()
    at.sidebar.button(key="scene_too_few_steps").click().run()
    if at.session_state[keys.PAGE] != scene.page:
        at.run()
    assert not at.exception
    assert at.session_state[keys.PAGE] == "views/sampling.py"
    assert at.slider(key="sampler_steps").value == 8
    assert any(scene.title in m.value for m in at.markdown)
    at.button(key="scene_close").click().run()
    assert not any(scene.title in m.value for m in at.markdown)
    assert "scene" not in dict(at.query_params)


@pytest.fixture
def scenes_dir(tmp_path, monkeypatch):
    """The shipped scenes plus one with a typo (`sigma` for `sigmas`), loaded afresh."""
    import shutil

    from scoreviz import scenes as core
    from scoreviz.ui import scenes as ui

    for path in core.SCENES_DIR.glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    typo = (core.SCENES_DIR / "1_tweedie.toml").read_text().replace("sigmas =", "sigma =")
    (tmp_path / "9_typo.toml").write_text(typo)
    (tmp_path / "9_zz_not_toml.toml").write_text('title = "x\n')
    monkeypatch.setattr(core, "SCENES_DIR", tmp_path)
    core._scan.cache_clear()
    ui._checked.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    core._scan.cache_clear()
    ui._checked.cache_clear()


def test_a_bad_scene_file_disables_only_that_scene(scenes_dir):
    from scoreviz import scenes as core
    from scoreviz.ui import scenes as ui

    assert set(core.broken_scenes()) == {"9_zz_not_toml.toml"}  # the file's own checks
    assert "typo" in core.load_scenes()  # its settings are the page's business
    assert set(ui.load_scenes()) == set(SCENES)  # every good scene still there
    broken = ui.broken()
    assert set(broken) == {"9_typo.toml", "9_zz_not_toml.toml"}
    assert "sigma" in broken["9_typo.toml"] and "TOML" in broken["9_zz_not_toml.toml"]


def test_a_bad_scene_file_shows_on_the_scenes_menu_and_every_page_works(scenes_dir):
    at = make_app().run()
    assert not at.exception
    captions = [c.value for c in at.sidebar.caption if "Disabled" in c.value]
    assert len(captions) == 2 and any("9&#95;typo" in c or "9_typo" in c for c in captions)
    assert at.button(key="scene_tweedie")  # the good scenes are still offered
    for page in ("views/dae.py", "views/train.py"):
        at.switch_page(page).run()
        assert not at.exception


def test_warm_plans_the_good_scenes_and_names_the_broken(scenes_dir):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("warm", root / "scripts" / "warm.py")
    warm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(warm)
    said = []
    configs = warm.plan(["vp_linear"], defaults=False, log=said.append)
    good = {c.model_id for s in SCENES.values() for c in s.train}
    assert good <= {c.model_id for c in configs}  # the good scenes' models are still warmed
    assert len(said) == 1 and "9_zz_not_toml.toml" in said[0] and "disabled" in said[0]


def test_scenes_are_listed_in_their_files_numeric_order(tmp_path):
    """ "10_..." comes after "9_..." (a plain sort put the tenth scene first in the picker)."""
    from scoreviz import scenes as core

    for name in ("10_b.toml", "9_a.toml", "2_c.toml"):
        (tmp_path / name).write_text((core.SCENES_DIR / "1_tweedie.toml").read_text())
    order = [p.name for p in sorted(tmp_path.glob("*.toml"), key=core._file_order)]
    assert order == ["2_c.toml", "9_a.toml", "10_b.toml"]
    numbers = [int(p.name.split("_")[0]) for p in core.SCENES_DIR.glob("*.toml")]
    assert len(numbers) == len(set(numbers))  # one scene per number: the order is not left to names
