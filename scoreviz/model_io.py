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
what is wrong. A model trained on uploaded data ("upload:<sha>") imports like any other; the app
decides what it can show without the data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import pandas as pd
import safetensors.torch
import torch

from scoreviz.errors import ModelFileError, ScorevizError
from scoreviz.models import ModelConfig, TrainedModel
from scoreviz.processes import get_process
from scoreviz.training import TrainConfig, TrainResult

FORMAT = "scoreviz-model"
VERSION = 1
META_KEY = "scoreviz"
MAX_FILE_BYTES = 64 * 2**20  # a default model is ~60 kB; refuse anything absurdly large
_MAX_HEADER_BYTES = 32 * 2**20

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


def export_model(result: TrainResult) -> bytes:
    """The whole TrainResult as safetensors bytes (weights, settings, loss history)."""
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
    return safetensors.torch.save(tensors, metadata={META_KEY: json.dumps(header)})


def import_model(data: bytes) -> TrainResult:
    """Rebuild a TrainResult from `export_model` bytes; ModelFileError if anything is off."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ModelFileError("A model file must be given as bytes.")
    data = bytes(data)
    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError(f"This file is too large to be a scoreviz model ({len(data)} bytes).")
    header = _read_header(data)
    config = _read_config(header.get("config"))
    if header.get("model_id") != config.model_id:
        raise ModelFileError(
            "This model file is damaged or was edited: its model id does not match its settings."
        )
    tensors = _read_tensors(data)
    if header.get("checksum") != _checksum(tensors):
        raise ModelFileError("This model file is damaged: its weights fail the integrity check.")
    model = _read_model(config, tensors)
    return TrainResult(
        config=config,
        model=model,
        history=_read_history(header.get("history")),
        model_id=config.model_id,
        elapsed=_number(header.get("elapsed"), "elapsed"),
        stopped=_flag(header.get("stopped")),
        train_points=_read_points(config, tensors),
    )


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes (catches flipped bits in weights)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _read_header(data: bytes) -> dict:
    """The scoreviz JSON header, read from the safetensors preamble without loading tensors."""
    if len(data) < 8:
        raise ModelFileError(f"{_NOT_OURS} It is empty or far too short.")
    n = int.from_bytes(data[:8], "little")
    if n > min(len(data) - 8, _MAX_HEADER_BYTES):
        raise ModelFileError(f"{_NOT_OURS} Its header is missing or cut off (truncated file?).")
    try:
        outer = json.loads(data[8 : 8 + n].decode("utf-8"))
        meta = outer["__metadata__"]
        header = json.loads(meta[META_KEY])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
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
    return header


def _check_fields(d, types: dict, what: str) -> None:
    if not isinstance(d, dict):
        raise ModelFileError(f"This model file has no valid {what}; it may be damaged.")
    missing, extra = set(types) - set(d), set(d) - set(types)
    if missing or extra:
        detail = f"missing {sorted(missing)}" if missing else f"unknown {sorted(extra)}"
        raise ModelFileError(f"This model file's {what} are not valid ({detail}).")
    for k, allowed in types.items():
        if isinstance(d[k], bool) or not isinstance(d[k], allowed):
            raise ModelFileError(f"This model file's {what} are not valid ({k!r} = {d[k]!r}).")


def _read_config(d) -> TrainConfig:
    _check_fields(d, _TRAIN_TYPES, "training settings")
    _check_fields(d["model"], _MODEL_TYPES, "model settings")
    try:
        return TrainConfig(**{**d, "model": ModelConfig(**d["model"])})
    except (ScorevizError, TypeError, ValueError) as exc:
        raise ModelFileError(f"This model file has invalid settings: {exc}") from exc


def _read_tensors(data: bytes) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load(data)
    except Exception as exc:  # safetensors raises its own (Rust) error types
        raise ModelFileError(
            "This model file is damaged or truncated: its weights cannot be read."
        ) from exc


def _read_model(config: TrainConfig, tensors: dict[str, torch.Tensor]) -> TrainedModel:
    model = TrainedModel(config.model, get_process(config.process))
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
    return model


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
