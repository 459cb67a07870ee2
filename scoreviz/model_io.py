"""Export / import a trained model as one safetensors file (no pickle: loading runs no code).

The file holds the network weights as tensors "net.<name>" (float32), the fixed training set as
"train_points" (n_train, 2) when there is one, and one metadata entry "scoreviz" with a JSON header

    {"format": "scoreviz-model", "version": 1, "checksum": <sha256 of the tensors>,
     "config": <TrainConfig as a dict>,
     "history": {"step": [...], "loss": [...], "elapsed": [...]},
     "model_id": ..., "elapsed": ..., "stopped": ...}

`import_model` checks everything before use: anything corrupt, truncated, foreign (another
safetensors file, a zip, random bytes), with missing or unexpected weights, wrong shapes,
non-finite values or from a newer format version raises `ModelFileError` with a message that says
what is wrong. An imported result is marked `from_file`: it (and what is trained from it) stays in
its session, never in a store shared with classmates. A model trained on uploaded data
("upload:<16 hex digits>"), drawn or typed data ("drawn:", "typed:") imports like any other;
the app decides what it can show without the data.

A model file is shared between students, so it is hostile input. It is checked *before* anything
is built, in this order, each step bounded by the previous one:
1. size (`MAX_FILE_BYTES`) and the safetensors preamble's length (`_MAX_HEADER_BYTES`);
2. JSON nesting depth (`MAX_JSON_DEPTH`, counted without recursion), then parsing;
3. settings within what the Train form can produce (`LIMITS`), short strings (`MAX_STRING`), a
   `distribution` that is a built-in key or "upload:"/"drawn:"/"typed:" + 16 hex digits;
4. the tensor table of the preamble against the layout of the network those settings build
   (names, float32, shapes) and against the file size;
only then are tensors read (their bytes are the file's) and loaded into the network. Any other
failure (a `RecursionError`, a safetensors error) still becomes a short `ModelFileError`. (A 13 kB
file whose header claimed a 4096 x 32 network used to allocate 2 GB before shapes were compared.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re

import numpy as np
import pandas as pd
import safetensors.torch
import torch

from scoreviz.data_io import CUSTOM_KEY
from scoreviz.distributions import DISTRIBUTIONS
from scoreviz.errors import ModelFileError, ScorevizError
from scoreviz.models import TrainedModel, build_model
from scoreviz.processes import get_process
from scoreviz.training import MAX_N_TRAIN, TrainConfig, TrainResult

FORMAT = "scoreviz-model"
VERSION = 1
META_KEY = "scoreviz"
# The largest values the Train form (views/train.py) and the DAE page can produce; a file beyond
# them is refused before anything is built. tests/test_model_io.py checks the form against these.
LIMITS = {
    "width": 256,
    "depth": 6,
    "n_freqs": 64,
    "x_freqs": 64,
    "steps": 20_000,
    "batch_size": 2048,
    "n_train": MAX_N_TRAIN,
    "seed": 2**31 - 1,
}
MAX_DAE_SIGMA = 100.0
MAX_LR = 1e6
# Weights <= 1.5 MB at the limits, training points <= 0.8 MB, header (20,000 history rows) ~ 1.5 MB.
MAX_FILE_BYTES = 8 * 2**20
_MAX_HEADER_BYTES = 4 * 2**20
MAX_JSON_DEPTH = 8  # ours is 3 deep (header -> config -> model); json.loads recurses per level
MAX_STRING = 64  # characters of any string in the settings
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")

_NUM = (int, float)
_TRAIN_TYPES = {
    "distribution": (str,),
    "process": (str,),
    "model": (dict,),
    "weighting": (str,),
    "steps": (int,),
    "batch_size": (int,),
    "lr": _NUM,
    "n_train": (int, type(None)),
    "ema": (*_NUM, type(None)),
    "seed": (int,),
}
# Settings added later: a file may lack them (then they take their legacy values, see
# TrainConfig.from_dict), and a file that has them is checked like the others.
_TRAIN_OPTIONAL = {
    "time_sampling": (str,),
    "parent": (str, type(None)),
    "parent_digest": (str, type(None)),
    "coupling": (str,),
    "tail_stretch": (bool,),
    "label_dropout": _NUM,
}
_MODEL_OPTIONAL = {
    "x_freqs": (int,),
    "residual": (bool,),
    "x_gate": (bool,),
    "prior_skip": (bool,),
    "n_classes": (int,),
}
_MODEL_TYPES = {
    "kind": (str,),
    "parameterization": (str,),
    "width": (int,),
    "depth": (int,),
    "activation": (str,),
    "embedding": (str,),
    "n_freqs": (int,),
    "dae_sigma": _NUM,
}
_NOT_OURS = "This is not a scoreviz model file (export one from the Train page)."


def export_model(result: TrainResult, extra: dict[str, str] | None = None) -> bytes:
    """The whole TrainResult as safetensors bytes (weights, settings, loss history).

    extra: more metadata entries beside META_KEY (the model store's MAC); `import_model` ignores
    them, `read_metadata` returns them.
    """
    tensors = {
        f"net.{k}": v.detach().to("cpu", torch.float32).contiguous()
        for k, v in result.model.net.state_dict().items()
    }
    if result.train_points is not None:
        tensors["train_points"] = result.train_points.detach().to("cpu", torch.float32)
    header = {
        "format": FORMAT,
        "checksum": _checksum(tensors),
        "version": VERSION,
        "config": dataclasses.asdict(result.config),
        "history": {c: result.history[c].tolist() for c in ("step", "loss", "elapsed")},
        "model_id": result.model_id,
        "elapsed": float(result.elapsed),
        "stopped": bool(result.stopped),
    }
    metadata = {**(extra or {}), META_KEY: json.dumps(header)}
    return safetensors.torch.save(tensors, metadata=metadata)


def read_metadata(data: bytes) -> dict[str, str]:
    """The metadata entries of a model file's preamble (strings), read without its tensors.

    Bounded like `import_model` (file size, preamble length, JSON depth); ModelFileError if the
    preamble is not a scoreviz model's. The model store checks its MAC on these before it
    imports anything.
    """
    data = bytes(data)
    if len(data) > MAX_FILE_BYTES or len(data) < 8:
        raise ModelFileError(_NOT_OURS)
    n = int.from_bytes(data[:8], "little")
    if n > min(len(data) - 8, _MAX_HEADER_BYTES):
        raise ModelFileError(f"{_NOT_OURS} Its header is missing or cut off (truncated file?).")
    try:
        meta = _json(data[8 : 8 + n]).get("__metadata__")
    except (UnicodeError, ValueError, AttributeError) as exc:
        raise ModelFileError(_NOT_OURS) from exc
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(_NOT_OURS)
    return meta


def import_model(data: bytes) -> TrainResult:
    """Rebuild a TrainResult from `export_model` bytes; ModelFileError if anything is off."""
    try:
        return _import(data)
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - RecursionError, MemoryError, a library's own error
        raise ModelFileError(
            f"This model file cannot be read ({type(exc).__name__}); it may be damaged."
        ) from exc


def _import(data: bytes) -> TrainResult:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ModelFileError("A model file must be given as bytes.")
    data = bytes(data)
    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError(f"This file is too large to be a scoreviz model ({len(data)} bytes).")
    table, header = _read_header(data)
    config = _read_config(header.get("config"))
    if header.get("model_id") != config.model_id:
        raise ModelFileError(
            "This model file is damaged or was edited: its model id does not match its settings."
        )
    # Within LIMITS the network is at most ~1.5 MB and builds in ~3 ms (the meta device would
    # allocate nothing but costs ~3 s of one-time setup per process).
    model = build_model(config.model, get_process(config.process))
    _check_layout(model, config, table, len(data) - 8 - int.from_bytes(data[:8], "little"))
    tensors = _read_tensors(data)
    if header.get("checksum") != _checksum(tensors):
        raise ModelFileError("This model file is damaged: its weights fail the integrity check.")
    _load_weights(model, tensors)
    return TrainResult(
        config=config,
        model=model,
        history=_read_history(header.get("history")),
        model_id=config.model_id,
        elapsed=_number(header.get("elapsed"), "elapsed"),
        stopped=_flag(header.get("stopped")),
        train_points=_read_points(config, tensors),
        from_file=True,  # the model store, which vouches for its files by a MAC, resets it
    )


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes (catches flipped bits in weights)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _read_header(data: bytes) -> tuple[dict, dict]:
    """(tensor table, scoreviz header) from the safetensors preamble, without loading tensors."""
    if len(data) < 8:
        raise ModelFileError(f"{_NOT_OURS} It is empty or far too short.")
    n = int.from_bytes(data[:8], "little")
    if n > min(len(data) - 8, _MAX_HEADER_BYTES):
        raise ModelFileError(f"{_NOT_OURS} Its header is missing or cut off (truncated file?).")
    try:
        outer = _json(data[8 : 8 + n])
        meta = outer.pop("__metadata__")
        header = _json(meta[META_KEY].encode("utf-8"))
    except ModelFileError:
        raise
    except (UnicodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelFileError(_NOT_OURS) from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(_NOT_OURS)
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError("This model file has no valid format version; it may be damaged.")
    if version > VERSION:
        raise ModelFileError(
            f"This model file was written by a newer scoreviz (format version {version}); this "
            f"app reads version {VERSION}. Update scoreviz to open it."
        )
    if version != VERSION:
        raise ModelFileError(f"Unsupported model file format version {version}.")
    return outer, header


def _json(raw: bytes):
    """json.loads after checking the nesting depth (json.loads recurses once per level)."""
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise ModelFileError(f"{_NOT_OURS} Its header is nested too deeply.")
    return json.loads(raw.decode("utf-8"))


def json_depth(raw: bytes) -> int:
    """Deepest bracket nesting of a JSON text, brackets inside strings ignored; no recursion.

    Strings are cut out by one regex, the remaining brackets counted +1 / -1 (numpy cumsum).
    """
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    steps = np.frombuffer(brackets, dtype=np.uint8)
    return int(np.cumsum(np.where((steps == 91) | (steps == 123), 1, -1)).max(initial=0))


def _check_fields(d, types: dict, what: str, optional: dict | None = None) -> None:
    if not isinstance(d, dict):
        raise ModelFileError(f"This model file has no valid {what}; it may be damaged.")
    optional = optional or {}
    missing, extra = set(types) - set(d), set(d) - set(types) - set(optional)
    if missing or extra:
        detail = f"missing {sorted(missing)}" if missing else f"unknown {sorted(extra)}"
        raise ModelFileError(f"This model file's {what} are not valid ({detail}).")
    for k, allowed in {**types, **{k: v for k, v in optional.items() if k in d}}.items():
        v = d[k]
        if isinstance(v, bool) != (bool in allowed) or not isinstance(v, allowed):
            raise ModelFileError(f"This model file's {what} are not valid ({k!r} = {_short(v)}).")
        if isinstance(v, str) and len(v) > MAX_STRING:
            raise ModelFileError(f"This model file's {what} are not valid ({k!r} is too long).")
        if k in LIMITS and v is not None and not 0 <= v <= LIMITS[k]:
            raise ModelFileError(
                f"This model file's {k!r} = {v} is outside what the Train page allows "
                f"(at most {LIMITS[k]:,})."
            )


def _short(v) -> str:
    """repr of a value from the file, cut to a length a message can show."""
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _read_config(d) -> TrainConfig:
    _check_fields(d, _TRAIN_TYPES, "training settings", _TRAIN_OPTIONAL)
    _check_fields(d["model"], _MODEL_TYPES, "model settings", _MODEL_OPTIONAL)
    dist = d["distribution"]
    if dist not in DISTRIBUTIONS and not CUSTOM_KEY.fullmatch(dist):
        raise ModelFileError(
            f"This model file's distribution {_short(dist)} is neither a built-in one nor "
            "'upload:', 'drawn:' or 'typed:' followed by 16 hex digits."
        )
    if not 0 < d["lr"] <= MAX_LR or not 0 < d["model"]["dae_sigma"] <= MAX_DAE_SIGMA:
        raise ModelFileError("This model file's learning rate or DAE noise level is out of range.")
    try:
        return TrainConfig.from_dict(d)
    except (ScorevizError, TypeError, ValueError) as exc:
        raise ModelFileError(f"This model file has invalid settings: {exc}") from exc


def _check_layout(model: TrainedModel, config: TrainConfig, table: dict, data_bytes: int) -> None:
    """The preamble's tensor table must hold exactly `model`'s weights and the training points
    `config` implies, and they must fill the `data_bytes` after the preamble (float32)."""
    expected = {f"net.{k}": tuple(v.shape) for k, v in model.net.state_dict().items()}
    if config.n_train is not None:
        expected["train_points"] = (config.n_train, 2)
    if "train_points" in table and config.n_train is None:
        raise ModelFileError("This model file has training points but no training-set size.")
    if config.n_train is not None and _shape(table.get("train_points")) != (config.n_train, 2):
        raise ModelFileError(
            f"This model file should hold its {config.n_train} training points, but does not."
        )
    missing, extra = set(expected) - set(table), set(table) - set(expected)
    if missing or extra:
        detail = f"missing {sorted(missing)[:4]}" if missing else f"unexpected {sorted(extra)[:4]}"
        raise ModelFileError(f"This model file's weights do not fit its settings ({detail}).")
    for k, shape in expected.items():
        if _shape(table[k]) != shape:
            raise ModelFileError(
                f"This model file's weights do not fit its settings ({k[4:]!r} has shape "
                f"{_short(_shape(table[k]))}, expected {shape})."
            )
        if table[k].get("dtype") != "F32":
            raise ModelFileError(f"This model file's weight {k!r} is not a float32 tensor.")
    if 4 * sum(math.prod(s) for s in expected.values()) != data_bytes:
        raise ModelFileError(
            "This model file is damaged or truncated: its size does not match its weights."
        )


def _shape(entry) -> tuple | None:
    shape = entry.get("shape") if isinstance(entry, dict) else None
    ok = isinstance(shape, list) and all(isinstance(n, int) for n in shape)
    return tuple(shape) if ok else None


def _read_tensors(data: bytes) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load(data)
    except Exception as exc:  # safetensors raises its own (Rust) error types
        raise ModelFileError(
            "This model file is damaged or truncated: its weights cannot be read."
        ) from exc


def _load_weights(model: TrainedModel, tensors: dict[str, torch.Tensor]) -> None:
    expected = model.net.state_dict()
    weights = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
    missing, extra = set(expected) - set(weights), set(weights) - set(expected)
    if missing or extra:
        detail = f"missing {sorted(missing)}" if missing else f"unexpected {sorted(extra)}"
        raise ModelFileError(f"This model file's weights do not fit its settings ({detail}).")
    for k, v in weights.items():
        if v.shape != expected[k].shape:
            raise ModelFileError(
                f"This model file's weights do not fit its settings ({k!r} has shape "
                f"{tuple(v.shape)}, expected {tuple(expected[k].shape)})."
            )
        if not v.is_floating_point() or not torch.isfinite(v).all():
            raise ModelFileError(f"This model file's weight {k!r} is not a finite float tensor.")
    model.net.load_state_dict({k: v.to(torch.float32) for k, v in weights.items()})
    model.net.eval()


def _read_points(config: TrainConfig, tensors: dict[str, torch.Tensor]) -> torch.Tensor | None:
    pts = tensors.get("train_points")
    if config.n_train is None:
        if pts is not None:
            raise ModelFileError("This model file has training points but no training-set size.")
        return None
    if pts is None or tuple(pts.shape) != (config.n_train, 2):
        raise ModelFileError(
            f"This model file should hold its {config.n_train} training points, but does not."
        )
    if not pts.is_floating_point() or not torch.isfinite(pts).all():
        raise ModelFileError("This model file's training points are not finite numbers.")
    return pts.to(torch.float32)


def _read_history(d) -> pd.DataFrame:
    cols = ("step", "loss", "elapsed")
    if not isinstance(d, dict) or set(d) != set(cols):
        raise ModelFileError("This model file's loss history is missing or damaged.")
    if not all(isinstance(d[c], list) for c in cols) or len({len(d[c]) for c in cols}) != 1:
        raise ModelFileError("This model file's loss history is damaged.")
    if len(d["step"]) > LIMITS["steps"]:
        raise ModelFileError("This model file's loss history is longer than any training run.")
    for c in cols:
        for v in d[c]:
            _number(v, "loss history")
    if not all(isinstance(v, int) for v in d["step"]):
        raise ModelFileError("This model file's loss history has steps that are not whole numbers.")
    return pd.DataFrame(
        {
            "step": pd.Series(d["step"], dtype="int64"),
            "loss": pd.Series(d["loss"], dtype="float64"),
            "elapsed": pd.Series(d["elapsed"], dtype="float64"),
        }
    )


def _number(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, _NUM) or not math.isfinite(v):
        raise ModelFileError(f"This model file's {what} is not a valid number.")
    return float(v)


def _flag(v) -> bool:
    if not isinstance(v, bool):
        raise ModelFileError("This model file's 'stopped' flag is not valid.")
    return v
