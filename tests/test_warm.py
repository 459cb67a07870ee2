"""scripts/warm.py: the models it prepares are the ones the app's buttons and scenes ask for,
and a second run (or a server) loads them from the store instead of training."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from scoreviz import model_store
from scoreviz.scenes import load_scenes
from scoreviz.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("warm", ROOT / "scripts" / "warm.py")
warm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(warm)


def test_plan_holds_the_buttons_and_scenes_models():
    ids = {c.model_id for c in warm.plan(["vp_linear", "ve"])}
    for scene in load_scenes().values():
        assert {c.model_id for c in scene.train} <= ids
    # Home's and the pages' "Train" buttons: the default config for the sidebar's defaults
    assert TrainConfig(distribution="word", process="ve", seed=0).model_id in ids
    assert len(ids) == len(warm.plan(["vp_linear", "ve"]))  # no duplicates


def test_warm_trains_once_then_loads(tmp_path):
    store = model_store.ModelStore(tmp_path)
    configs = [TrainConfig(distribution="skewed", steps=60)]
    first = warm.warm(configs, store, log=lambda *_: None)
    assert [r["loaded"] for r in first] == [False]
    assert configs[0].model_id in store
    again = warm.warm(configs, store, log=lambda *_: None)
    assert [r["loaded"] for r in again] == [True]
    assert store.get(configs[0].model_id).quality is not None  # the verdict travels with it


def test_main_without_a_store_says_what_to_set(monkeypatch, capsys):
    monkeypatch.delenv(model_store.ENV_VAR, raising=False)
    assert warm.main([]) == 2
    assert model_store.ENV_VAR in capsys.readouterr().out
