"""Model files: a faithful round trip, and a clear ModelFileError for anything else."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
import safetensors.torch
import torch

from scoreviz import model_io
from scoreviz.errors import ModelFileError
from scoreviz.mixture import empirical
from scoreviz.model_io import export_model, import_model
from scoreviz.models import ModelConfig
from scoreviz.training import MAX_N_TRAIN, TrainConfig, train

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
    cfg = TrainConfig(distribution="upload:0123abcd0123abcd", model=SMALL, steps=5, batch_size=32)
    r = train(cfg, dist=empirical(pts, 0.1))
    back = import_model(export_model(r))
    assert back.config.distribution == "upload:0123abcd0123abcd"
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


# ----------------------------------------------------------------------------- hostile files
# Hand-made files with a consistent header (model id and checksum recomputed), as an attacker
# would write them: each must be refused before anything large is built.


def craft(header_edit, tensors: dict | None = None, metadata: str | None = None) -> bytes:
    """A model file whose header says what `header_edit` makes it say, over `tensors`
    (default: a 4-wide, 1-layer network). model_id and checksum are made consistent."""
    import dataclasses

    from scoreviz.models import TrainedModel
    from scoreviz.processes import get_process

    if tensors is None:
        net = TrainedModel(ModelConfig(width=4, depth=1), get_process("vp_linear")).net
        tensors = {f"net.{k}": v.contiguous() for k, v in net.state_dict().items()}
    cfg = dataclasses.asdict(TrainConfig(steps=100, model=ModelConfig(width=4, depth=1)))
    header = {
        "format": model_io.FORMAT,
        "version": model_io.VERSION,
        "checksum": model_io._checksum(tensors),
        "config": cfg,
        "history": {"step": [], "loss": [], "elapsed": []},
        "elapsed": 1.0,
        "stopped": False,
    }
    header_edit(header)
    c = header["config"]
    if isinstance(c, dict) and isinstance(c.get("model"), dict):
        try:
            header["model_id"] = TrainConfig(**{**c, "model": ModelConfig(**c["model"])}).model_id
        except Exception:  # settings the core refuses: any id will do
            header["model_id"] = "0" * 12
    meta = json.dumps(header) if metadata is None else metadata
    return safetensors.torch.save(tensors, metadata={model_io.META_KEY: meta})


def _model(**kw):
    return lambda h: h["config"]["model"].update(kw)


BOMB_SCRIPT = """
import resource, sys, time
from scoreviz.errors import ModelFileError
from scoreviz.model_io import import_model
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    import_model(data)
    message = "ACCEPTED"
except ModelFileError as exc:
    message = str(exc)
seconds = time.perf_counter() - t0
extra_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(f"{seconds:.4f} {extra_mb:.1f} {message}")
"""


@pytest.mark.parametrize(
    "edit, words",
    [
        # the attack as reported: 13 kB claiming 4096 x 32 allocated ~2 GB in 10 s
        (_model(width=4096, depth=32), "'width' = 4096 is outside what the Train page allows"),
        # within the limits, but the weights present are those of a 4 x 1 network
        (_model(width=256, depth=6), "do not fit its settings"),
        (lambda h: h["config"].update(n_train=MAX_N_TRAIN), f"its {MAX_N_TRAIN} training points"),
    ],
)
def test_import_bomb_is_refused_before_building(tmp_path, edit, words):
    """Time and peak RSS of the import, measured in a fresh process (ru_maxrss is a process-wide
    high-water mark): < 1 s and < 200 MB extra (before the fix: 12 s and +1,985 MB)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "bomb.safetensors"
    path.write_bytes(craft(edit))
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout.strip()
    seconds, extra_mb, message = out.split(" ", 2)
    assert re.search(words, message), message
    assert float(seconds) < 1.0, out
    assert float(extra_mb) < 200, out


def test_deeply_nested_metadata_is_refused_without_recursion():
    deep = "[" * 100_000 + "]" * 100_000
    for meta in (
        deep,  # the scoreviz header itself
        json.dumps(
            {"format": model_io.FORMAT, "version": 1, "x": json.loads("[" * 900 + "]" * 900)}
        )[:-1]
        + ', "y": '
        + deep
        + "}",
    ):
        with pytest.raises(ModelFileError, match="nested too deeply"):
            import_model(craft(lambda h: None, metadata=meta))


def test_deeply_nested_safetensors_table_is_refused():
    """Brackets in the outer (safetensors) JSON, outside our metadata string."""
    good = craft(lambda h: None)
    n = int.from_bytes(good[:8], "little")
    table = good[8 : 8 + n].rstrip(b" ")
    table = table[:-1] + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    data = len(table).to_bytes(8, "little") + table + good[8 + n :]
    with pytest.raises(ModelFileError, match="nested too deeply"):
        import_model(data)


def test_json_depth_ignores_brackets_in_strings():
    assert model_io.json_depth(b'{"a": [1, {"b": "[[[[{{{"}], "c": "\\\\\\"]]"}') == 3
    assert model_io.json_depth(b"[]") == 1 and model_io.json_depth(b'"x"') == 0


@pytest.mark.parametrize(
    "dist",
    [
        "upload:" + "0" * 2_000_000,  # froze the importing tab for 90-120 s
        "upload:![t](http://example.com/x.png)",  # markdown image, fetched when shown
        "upload:0123ABCD0123ABCD",  # the app's hashes are lower-case
        "upload:0123abcd",
        "<a href='http://example.com'>eight_gaussians</a>",
    ],
)
def test_distribution_must_be_builtin_or_an_upload_hash(dist):
    import time

    data = craft(lambda h: h["config"].update(distribution=dist))
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError) as err:
        import_model(data)
    assert time.perf_counter() - t0 < 1.0
    message = str(err.value)
    assert len(message) < 200 and ("too long" in message or "16 hex digits" in message)


def test_long_strings_and_out_of_range_numbers_are_refused():
    cases = [
        (lambda h: h["config"].update(process="v" * 100), "'process' is too long"),
        (lambda h: h["config"].update(steps=10**7), "'steps' = 10000000 is outside"),
        (lambda h: h["config"].update(batch_size=65_536), "'batch_size'"),
        (_model(n_freqs=256), "'n_freqs'"),
        (lambda h: h["config"].update(lr=1e300), "learning rate"),
        (
            lambda h: h.update(
                history={"step": [1] * 20_001, "loss": [1] * 20_001, "elapsed": [1] * 20_001}
            ),  # fmt: skip
            "longer than any training run",
        ),
    ]
    for edit, words in cases:
        with pytest.raises(ModelFileError, match=words):
            import_model(craft(edit))


def test_file_size_must_match_the_weights(data):
    n = int.from_bytes(data[:8], "little")
    table = json.loads(data[8 : 8 + n])
    name = sorted(k for k in table if k.startswith("net."))[0]
    table[name]["data_offsets"][1] += 4  # claims one more float than its shape holds
    raw = json.dumps(table).encode()
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        import_model(len(raw).to_bytes(8, "little") + raw + data[8 + n :] + b"\0" * 4)
    with pytest.raises(ModelFileError, match="size does not match"):
        import_model(data + b"\0" * 4)


def test_any_unexpected_exception_becomes_a_short_model_file_error(monkeypatch, data):
    def boom(*a, **k):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(model_io, "_read_history", boom)
    with pytest.raises(ModelFileError, match=r"cannot be read \(RecursionError\)"):
        import_model(data)


def test_the_layout_from_the_meta_device_matches_a_real_network():
    from scoreviz.models import ScoreMLP

    for cfg in (ModelConfig(), ModelConfig(kind="dae", width=16, depth=1), ModelConfig(n_freqs=3)):
        real = {k: tuple(v.shape) for k, v in ScoreMLP(cfg).state_dict().items()}
        with torch.device("meta"):
            meta = {k: tuple(v.shape) for k, v in ScoreMLP(cfg).state_dict().items()}
        assert meta == real


def test_a_crafted_file_without_edits_imports():
    """The hand-made files above are refused for their edit alone."""
    back = import_model(craft(lambda h: None))
    assert back.config.model.width == 4 and back.config.steps == 100
