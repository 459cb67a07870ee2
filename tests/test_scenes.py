"""Scenes (scoreviz.ui.scenes): the shipped files load and validate, broken files are refused
with a message naming the file, and every scene opens from its link in the app: the right page,
its settings, its card, its models (from the server's shared cache)."""

from __future__ import annotations

import pytest

from scoreviz.scenes import ScenesError, load_scene
from scoreviz.ui import links, pages
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
        for config in scene.train:
            assert (config.distribution, config.process) == (
                scene.settings_dict["data"],
                scene.settings_dict["process"],
            )


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
    from scoreviz.ui.state import shared_models

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
        if (
            at.session_state[links.PAGE_KEY] == scene.page
            and not at.session_state["_scene_trainings"]
        ):
            break
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    ss = at.session_state
    assert ss[links.PAGE_KEY] == scene.page
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
    if at.session_state[links.PAGE_KEY] != scene.page:
        at.run()
    assert not at.exception
    assert at.session_state[links.PAGE_KEY] == "views/sampling.py"
    assert at.slider(key="sampler_steps").value == 8
    assert any(scene.title in m.value for m in at.markdown)
    at.button(key="scene_close").click().run()
    assert not any(scene.title in m.value for m in at.markdown)
    assert "scene" not in dict(at.query_params)
