"""Issue 26, item 1: no student can poison the class's "Train longer" models.

The attack: a model file with a classmate's settings (here: 20 training points, the memorisation
set-up) and doctored weights and training points, imported and trained longer. Before the fix
its continuation's id named only the parent's settings, so it entered the server-wide and the
on-disk store under the id every classmate's "Train longer" of that model looks up.

Checked: the core (a continuation's id binds the parent's content; replicas agree on it after a
disk round trip, so honest sharing still works), the on-disk store of two replicas (a doctored
continuation stored by one is never what the other's honest Train longer gets), and the app
(AppTest: the attacker's session imports and trains longer; a second session and then a second
replica - a fresh server-wide store over the same disk store - train the honest model longer
and get its own continuation, never the attacker's weights).
"""

from __future__ import annotations

import pytest
import torch

from scoreviz import model_io, model_store
from scoreviz.identity import content_digest
from scoreviz.models import ModelConfig
from scoreviz.training import TrainConfig, continuation, train
from tests.apptest_utils import assert_no_exception, inject_model, make_app, open_page, run_until

pytestmark = pytest.mark.slow
SMALL = ModelConfig(width=16, depth=1, n_freqs=4, x_freqs=0)
CONFIG = TrainConfig(model=SMALL, steps=40, batch_size=64, n_train=20, seed=11)
ATTACK_POINT = 3.0  # the attacker's 20 points all sit at (3, 3), far from the eight Gaussians
ATTACK_WEIGHT = 0.5


@pytest.fixture(scope="module")
def honest():
    return train(CONFIG)


def doctored_file(honest) -> bytes:
    """What the attacker uploads: the honest model's settings, any finite weights, own points."""
    fake = train(CONFIG)  # same settings, same id
    with torch.no_grad():
        for p in fake.model.net.parameters():
            p.fill_(ATTACK_WEIGHT)
    fake.train_points = torch.full_like(honest.train_points, ATTACK_POINT)
    return model_io.export_model(fake)


def _is_attackers(result) -> bool:
    return bool((result.train_points == ATTACK_POINT).all())


def test_a_continuation_names_its_parent_by_content(honest):
    imported = model_io.import_model(doctored_file(honest))
    assert imported.model_id == honest.model_id  # the settings-only id is the same...
    assert imported.from_file and not honest.from_file
    mine, theirs = continuation(honest), continuation(imported)
    assert mine.parent == theirs.parent == honest.model_id
    assert mine.parent_digest == content_digest(honest) != theirs.parent_digest
    assert mine.model_id != theirs.model_id  # ...but the continuations' ids differ
    # what is trained from an imported file stays marked as such
    assert train(theirs, init=imported).from_file


def test_replicas_agree_on_an_honest_parents_continuation(tmp_path, monkeypatch, honest):
    """The digest survives the store (float32 tensors, JSON floats are exact): a replica that
    loaded the parent from disk looks up the same continuation as the one that trained it."""
    monkeypatch.setenv(model_store.SECRET_ENV, "the-hall-secret-0123456789abcdef")
    model_store.ModelStore(tmp_path).put(honest)
    loaded = model_store.ModelStore(tmp_path).get(honest.model_id)
    assert loaded is not None and not loaded.from_file
    assert content_digest(loaded) == content_digest(honest)
    assert continuation(loaded).model_id == continuation(honest).model_id


def test_a_stored_doctored_continuation_is_not_a_classmates(tmp_path, monkeypatch, honest):
    """Even if a doctored parent's continuation is trained into the store by replica 1, replica
    2's Train longer of the honest model looks up another id and trains it itself."""
    monkeypatch.setenv(model_store.SECRET_ENV, "the-hall-secret-0123456789abcdef")
    imported = model_io.import_model(doctored_file(honest))
    replica1, replica2 = model_store.ModelStore(tmp_path), model_store.ModelStore(tmp_path)
    bad = continuation(imported, steps=5)
    replica1.get_or_create(bad.model_id, lambda: train(bad, init=imported))
    assert bad.model_id in replica1
    good = continuation(honest, steps=5)
    result, loaded = replica2.get_or_create(good.model_id, lambda: train(good, init=honest))
    assert not loaded and not _is_attackers(result)
    assert torch.equal(result.train_points, honest.train_points)


def _collected(at) -> bool:
    job = at.session_state["training_job"] if "training_job" in at.session_state else None
    return job is not None and job.collected


def _train_longer(at):
    """Press Train longer; (the job or None when the model came "already trained", the model)."""
    open_page(at, "views/train.py")
    at.button(key="train_more").click().run()
    assert_no_exception(at)
    if "training_job" not in at.session_state:  # taken from the server-wide store at once
        return None, at.session_state["models"][at.session_state["active_model"]]
    run_until(at, _collected, timeout=120)
    assert_no_exception(at)
    job = at.session_state["training_job"]
    assert job.error is None, job.error
    return job, job.result


def test_import_and_train_longer_does_not_poison_sessions_or_replicas(
    tmp_path, monkeypatch, honest
):
    from scoreviz.ui.models import shared_models

    monkeypatch.setenv(model_store.ENV_VAR, str(tmp_path))
    monkeypatch.setenv(model_store.SECRET_ENV, "the-hall-secret-0123456789abcdef")
    shared_models.clear()
    shared_models().put(honest.model_id, honest)  # the class's model, trained on this server

    attacker = make_app().run()
    open_page(attacker, "views/train.py")
    upload = ("default.safetensors", doctored_file(honest), "x/y")
    attacker.file_uploader(key="model_file").set_value(upload).run()
    assert _is_attackers(attacker.session_state["models"][attacker.session_state["active_model"]])
    attack, attacks = _train_longer(attacker)
    assert _is_attackers(attacks)

    classmate = make_app()
    inject_model(classmate, honest, "default")
    classmate.run()
    job, mine = _train_longer(classmate)
    assert not _is_attackers(mine)
    assert job is not None and not job.reused  # trained here, from the honest model
    assert mine.model_id in model_store.ModelStore(tmp_path)

    shared_models.clear()  # replica 2: its own server-wide store, the same disk store
    parent = model_store.ModelStore(tmp_path).get(honest.model_id)
    assert parent is None  # the parent was trained before the store: replica 2 has it in memory
    other = make_app()
    inject_model(other, honest, "default")
    other.run()
    job, theirs = _train_longer(other)
    assert not _is_attackers(theirs) and job.from_store
    assert torch.equal(theirs.train_points, honest.train_points)
    sd, want = theirs.model.net.state_dict(), mine.model.net.state_dict()
    assert all(torch.equal(sd[k], want[k]) for k in want)  # the classmate's continuation
    # the attacker's continuation stayed in its session
    assert not attack.shareable and shared_models().get(attacks.model_id) is None
    assert attacks.model_id not in model_store.ModelStore(tmp_path)
    shared_models.clear()


def test_an_imported_models_cache_key_binds_its_weights(honest):
    from scoreviz.problem import model_key

    imported = model_io.import_model(doctored_file(honest))
    same = model_io.import_model(model_io.export_model(honest))
    assert model_key(honest) == f"{honest.model_id}:{len(honest.history)}"  # as before
    assert model_key(imported) != model_key(same) != model_key(honest)
    assert model_key(same) == model_key(model_io.import_model(model_io.export_model(honest)))


def test_a_doctored_file_does_not_poison_the_views_of_a_classmates_file(honest):
    """The lecturer shares model.safetensors; an attacker imports a doctored file of the same
    name and settings first. The server-wide caches of the views are keyed by model name and
    id: without the weights' digest the classmate's Score field was the attacker's."""
    from tests.apptest_utils import chart_specs

    specs = []
    for data in (doctored_file(honest), model_io.export_model(honest)):
        at = make_app().run()
        open_page(at, "views/train.py")
        at.file_uploader(key="model_file").set_value(("model.safetensors", data, "x/y")).run()
        open_page(at, "views/score_field.py")
        assert_no_exception(at)
        specs.append(chart_specs(at))
    assert specs[0] and specs[1] and specs[0] != specs[1]
