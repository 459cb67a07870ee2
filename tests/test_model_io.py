"""Model files: a faithful round trip, and a clear ModelFileError for anything else."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import safetensors.torch
import torch

from scoreviz import model_io
from scoreviz.errors import ModelFileError
from scoreviz.mixture import empirical
from scoreviz.model_io import export_model, import_model
from scoreviz.models import ModelConfig
from scoreviz.training import TrainConfig, train

SMALL = ModelConfig(width=32, depth=2)


@pytest.fixture(scope="module")
def result():
    return train(TrainConfig(model=SMALL, steps=40, batch_size=128, n_train=16, ema=0.9))


@pytest.fixture(scope="module")
def data(result):
    return export_model(result)


def grid() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.linspace(-3, 3, 21)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    x = torch.stack([xx.ravel(), yy.ravel()], 1)
    return x, torch.linspace(0.001, 1, x.shape[0])


def rewrite(data: bytes, edit_header=None, edit_tensors=None) -> bytes:
    """A copy of a model file with its JSON header and/or tensors edited (a hand-made file)."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(json.loads(data[8 : 8 + n])["__metadata__"][model_io.META_KEY])
    tensors = safetensors.torch.load(data)
    if edit_header:
        edit_header(header)
    if edit_tensors:
        edit_tensors(tensors)
        header["checksum"] = model_io._checksum(tensors)  # consistent, only the content is bad
    return safetensors.torch.save(tensors, metadata={model_io.META_KEY: json.dumps(header)})


def test_round_trip_is_exact(result, data):
    back = import_model(data)
    x, t = grid()
    assert torch.equal(back.model.score(x, t), result.model.score(x, t))  # bit for bit
    assert torch.equal(back.model.denoise(x, t), result.model.denoise(x, t))
    assert back.config == result.config and back.model_id == result.model_id
    assert torch.equal(back.train_points, result.train_points)
    assert back.history.equals(result.history)
    assert back.elapsed == result.elapsed and back.stopped == result.stopped
    assert export_model(back) == data  # and the file is reproducible


@pytest.mark.parametrize(
    "model", [ModelConfig(kind="dae", dae_sigma=0.3, width=16), ModelConfig(parameterization="x0")]
)
def test_round_trip_other_kinds_and_processes(model):
    r = train(TrainConfig(process="ve", model=model, steps=5, batch_size=64, seed=9))
    back = import_model(export_model(r))
    x, t = grid()
    assert back.train_points is None and back.model.dae_t == r.model.dae_t
    assert torch.equal(back.model.score(x, t), r.model.score(x, t))


def test_uploaded_data_model_imports():
    pts = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    cfg = TrainConfig(distribution="upload:0123abcd", model=SMALL, steps=5, batch_size=32)
    r = train(cfg, dist=empirical(pts, 0.1))
    back = import_model(export_model(r))
    assert back.config.distribution == "upload:0123abcd"
    x, t = grid()
    assert torch.equal(back.model.score(x, t), r.model.score(x, t))


def test_file_is_plain_safetensors_without_pickle(data):
    assert b"pickle" not in data and not data.startswith(b"PK")
    tensors = safetensors.torch.load(data)
    assert "train_points" in tensors and all(
        k.startswith("net.") for k in tensors if k != "train_points"
    )


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.pkl", b"\x80\x04K\x01.")
    return buf.getvalue()


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: b"", "too short"),
        (lambda d: d[:5], "too short"),
        (lambda d: d[:40], "cut off"),
        (lambda d: d[: len(d) - 100], "damaged or truncated"),
        (lambda d: torch.randint(0, 256, (5000,), dtype=torch.uint8).numpy().tobytes(), "not a"),
        (lambda d: _zip_bytes(), "not a"),
        (lambda d: safetensors.torch.save({"weight": torch.zeros(3)}), "not a"),
        (lambda d: safetensors.torch.save({"w": torch.zeros(3)}, {"scoreviz": "{"}), "not a"),
        (lambda d: b"hello world, this is text and not a model", "not a"),
        (lambda d: d[:8] + b"\x00" * (len(d) - 8), "not a"),
    ],
)
def test_corrupt_truncated_and_foreign_files_are_refused(data, make, words):
    with pytest.raises(ModelFileError, match=words):
        import_model(make(data))


def _set(key, value):
    return lambda h: h.__setitem__(key, value)


def _set_cfg(key, value):
    return lambda h: h["config"].__setitem__(key, value)


@pytest.mark.parametrize(
    "edit, words",
    [
        (_set("version", 2), "newer scoreviz.*version 2"),
        (_set("version", "1"), "format version"),
        (_set("format", "other-app"), "not a scoreviz"),
        (_set("model_id", "0" * 12), "does not match"),
        (_set("history", {"step": [1], "loss": []}), "history"),
        (_set("history", {"step": [1], "loss": ["x"], "elapsed": [0.1]}), "history"),
        (_set("history", {"step": [1.5], "loss": [0.1], "elapsed": [0.1]}), "whole numbers"),
        (_set("history", {"step": [1], "loss": [float("nan")], "elapsed": [0.1]}), "history"),
        (_set("elapsed", None), "elapsed"),
        (_set("stopped", "no"), "stopped"),
        (lambda h: h["config"].pop("lr"), "missing \\['lr'\\]"),
        (_set_cfg("optimizer", "sgd"), "unknown \\['optimizer'\\]"),
        (_set_cfg("steps", "40"), "'steps'"),
        (_set_cfg("process", "warp"), "invalid settings.*noise process"),
        (lambda h: h["config"]["model"].__setitem__("width", True), "'width'"),
        (lambda h: h.pop("config"), "no valid training settings"),
    ],
)
def test_bad_headers_are_refused(data, edit, words):
    with pytest.raises(ModelFileError, match=words):
        import_model(rewrite(data, edit_header=edit))


def _drop_first_weight(t):
    t.pop(sorted(k for k in t if k.startswith("net."))[0])


def _widen_first_weight(t):
    k = sorted(k for k in t if k.startswith("net."))[0]
    t[k] = torch.zeros(t[k].shape[0] + 1, *t[k].shape[1:])


def _nan_weight(t):
    k = sorted(k for k in t if k.startswith("net."))[0]
    t[k] = t[k].clone()
    t[k].view(-1)[0] = float("nan")


@pytest.mark.parametrize(
    "edit, words",
    [
        (_drop_first_weight, "missing"),
        (lambda t: t.__setitem__("net.extra.weight", torch.zeros(2)), "unexpected"),
        (_widen_first_weight, "has shape"),
        (_nan_weight, "not a finite"),
        (lambda t: t.pop("train_points"), "16 training points"),
        (lambda t: t.__setitem__("train_points", torch.zeros(3, 2)), "16 training points"),
    ],
)
def test_weights_that_do_not_fit_are_refused(data, edit, words):
    with pytest.raises(ModelFileError, match=words):
        import_model(rewrite(data, edit_tensors=edit))


def test_a_flipped_bit_in_the_weights_fails_the_integrity_check(data):
    damaged = bytearray(data)
    damaged[-10] ^= 0x40  # inside the last tensor's bytes
    with pytest.raises(ModelFileError, match="integrity"):
        import_model(bytes(damaged))
    with pytest.raises(ModelFileError, match="integrity"):
        import_model(rewrite(data, edit_header=_set("checksum", "0" * 64)))


def test_the_width_in_the_settings_must_match_the_weights(data):
    def wider(h):
        h["config"]["model"]["width"] = 33
        cfg = TrainConfig(**{**h["config"], "model": ModelConfig(**h["config"]["model"])})
        h["model_id"] = cfg.model_id  # a consistent header, but weights of width 32

    with pytest.raises(ModelFileError, match="has shape"):
        import_model(rewrite(data, edit_header=wider))


def test_not_bytes_and_oversized_are_refused(monkeypatch, data):
    with pytest.raises(ModelFileError, match="bytes"):
        import_model("a path.safetensors")
    monkeypatch.setattr(model_io, "MAX_FILE_BYTES", len(data) - 1)
    with pytest.raises(ModelFileError, match="too large"):
        import_model(data)


def test_import_never_unpickles(monkeypatch, data):
    """Loading runs no pickle at all (so a malicious file cannot run code)."""
    import pickle

    def forbidden(*a, **k):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    import_model(data)


def test_random_damage_gives_model_file_error_or_a_valid_model(data):
    """Flipped bytes and cuts anywhere: never an unexpected exception, never a broken model."""
    gen = torch.Generator().manual_seed(0)
    for k in range(300):
        damaged = bytearray(data)
        if k % 3 == 0:
            damaged = damaged[: int(torch.randint(0, len(data), (1,), generator=gen))]
        else:
            for i in torch.randint(0, len(data), (1 + k % 4,), generator=gen).tolist():
                damaged[i] ^= 1 << int(torch.randint(0, 8, (1,), generator=gen))
        try:
            back = import_model(bytes(damaged))
        except ModelFileError:
            continue
        x, t = grid()  # bytes flipped inside the weights still give a working (finite) model
        assert torch.isfinite(back.model.score(x, t)).all()
