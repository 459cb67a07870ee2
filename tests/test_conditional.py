"""Class-conditional score models (issue 24): one network, a class embedding and a null class,
trained with label dropout, gives s(x_t, t, c) and s(x_t, t); the plain model is unchanged."""

import dataclasses

import pytest
import torch

from scoreviz.distributions import DISTRIBUTIONS, get_distribution
from scoreviz.errors import ConfigError
from scoreviz.mixture import empirical
from scoreviz.model_io import export_model, import_model
from scoreviz.models import ModelConfig, ScoreMLP
from scoreviz.processes import get_process
from scoreviz.quality import assess
from scoreviz.training import (
    LABEL_DROPOUT,
    TrainConfig,
    _labelled_batch,
    conditional,
    default_conditional,
    model_name,
    n_classes_of,
    train,
)

TARGET = 0.3  # nats lost per class, and by the unconditional branch (issue 24)


def _grid():
    g = torch.linspace(-2.5, 2.5, 15)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    x = torch.stack([xx.ravel(), yy.ravel()], 1)
    return x, torch.linspace(0.01, 1, x.shape[0])


def test_plain_configs_read_back_from_files_without_the_new_fields():
    """A model file written before issue 24 has neither label_dropout nor n_classes: it reads
    back as the same config, with the same id, as the one that wrote it."""
    for cfg in (TrainConfig(), TrainConfig(distribution="word", n_train=40, seed=3)):
        d = dataclasses.asdict(cfg)
        del d["label_dropout"], d["model"]["n_classes"]
        back = TrainConfig.from_dict(d)
        assert back == cfg and back.model_id == cfg.model_id and not back.conditional


def test_the_plain_network_has_no_class_embedding_and_the_same_weights():
    plain, cond = ModelConfig(), ModelConfig(n_classes=4)
    a, b = ScoreMLP(plain), ScoreMLP(cond)
    names = {n for n, _ in a.named_parameters()}
    assert not any("classes" in n for n in names)
    assert {n for n, _ in b.named_parameters()} - names == {"classes.weight"}
    assert b.classes.weight.shape == (5, 16)  # four classes and null
    assert b.hidden[0].in_features == a.hidden[0].in_features + 16


def test_conditional_model_ids_differ_and_name_themselves():
    plain = TrainConfig(distribution="two_moons")
    cond = default_conditional("two_moons", "vp_linear")
    assert cond.conditional and cond.model.n_classes == 2 and cond.label_dropout == LABEL_DROPOUT
    assert cond.model_id != plain.model_id
    assert model_name(cond).startswith("default conditional · Two moons")
    assert "conditional" in conditional(plain, 2, 0.2).display_name()


@pytest.mark.parametrize(
    "make",
    [
        lambda: conditional(TrainConfig(), 8, dropout=0.0),  # no unconditional branch
        lambda: conditional(TrainConfig(n_train=100), 8),  # a fixed set has no labels stored
        lambda: TrainConfig(label_dropout=0.1),  # dropout on a plain model
        lambda: conditional(TrainConfig(), 8, dropout=1.0),
        lambda: ModelConfig(kind="dae", n_classes=3),
    ],
)
def test_bad_conditional_settings_are_refused(make):
    with pytest.raises(ConfigError):
        make()


def test_label_dropout_replaces_the_share_asked_for_by_the_null_class():
    dist = get_distribution("eight_gaussians")
    gen = torch.Generator().manual_seed(0)
    x0, labels = _labelled_batch(dist, 20_000, gen, 8, 0.15)
    null = labels == 8
    assert abs(float(null.double().mean()) - 0.15) < 0.01
    # the kept labels are the classes the points came from (the nearest mode's, but for the
    # few in the tails between two modes)
    near = torch.cdist(x0.double(), dist.means).argmin(1)
    assert float((dist.labels[near][~null] == labels[~null]).double().mean()) > 0.99


def test_uploads_have_one_class_and_a_conditional_model_of_them_is_refused():
    assert n_classes_of("upload:0123456789abcdef") == 1
    assert n_classes_of("rings") == 2
    pts = torch.randn(30, 2, generator=torch.Generator().manual_seed(0))
    cfg = conditional(TrainConfig(distribution="upload:0123456789abcdef", steps=2), 2)
    with pytest.raises(ConfigError, match="one"):
        train(cfg, dist=empirical(pts, 0.1))


def test_conditional_training_gives_class_scores_and_round_trips():
    r = train(conditional(TrainConfig(distribution="rings", steps=40, batch_size=128), 2))
    x, t = _grid()
    m = r.model
    uncond, c0, c1 = m.class_score_fn(None), m.class_score_fn(0), m.class_score_fn(1)
    assert torch.equal(m.score(x, t), uncond(x, t))  # the plain ScoreFn is the null branch
    assert not torch.allclose(c0(x, t), c1(x, t))
    with pytest.raises(ConfigError):
        m.class_score_fn(2)
    back = import_model(export_model(r))
    assert back.config == r.config and back.model_id == r.model_id
    for c in (None, 0, 1):
        assert torch.equal(back.model.class_score_fn(c)(x, t), m.class_score_fn(c)(x, t))


def test_a_plain_model_has_no_class_scores():
    r = train(TrainConfig(steps=2, batch_size=16))
    with pytest.raises(ConfigError, match="not class-conditional"):
        r.model.class_score_fn(0)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_default_conditional_model_learns_every_class_and_the_whole(name):
    """The default conditional model loses <= 0.3 nats per class and in its unconditional
    branch (each: 3 sampler seeds averaged, `quality.assess`)."""
    dist, process = get_distribution(name), get_process("vp_linear")
    r = train(default_conditional(name, "vp_linear"))
    whole = assess(r.model.class_score_fn(None), dist, process, cache_key=(name, "vp_linear"))
    assert whole.nats_lost <= TARGET, whole.summary()
    for c in range(dist.n_classes):
        part = assess(r.model.class_score_fn(c), dist.given(c), process)
        assert part.nats_lost <= TARGET, (dist.class_names[c], part.summary())
