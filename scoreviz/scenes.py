"""Scenes: one-click lecture presets, written as data (assets/scenes/*.toml), validated on load.

This module is the file format (no Streamlit: `scripts/warm.py` reads the scenes' trainings from
it); `scoreviz.ui.scenes` also checks each scene's settings against the page's URL parameters
and applies scenes in the app.

A scene is a link with a story: it sets the sidebar and the page's settings (the same parameters
a shareable link carries, `scoreviz.ui.links`), trains what it needs through the server's shared
model cache (identical trainings run once per server), opens its page and shows two or three
sentences with the formula the view illustrates. A lecturer adds a scene by adding a file:

    title = "Denoising is the score (Tweedie)"
    page = "views/dae.py"                      # a page of the registry (scoreviz.ui.pages)
    summary = "Two or three sentences."
    formula = '\\mathbb{E}[x_0 | x_t] = ...'   # LaTeX, shown with st.latex
    [settings]                                 # URL parameters (links.GLOBAL + the page's)
    data = "eight_gaussians"
    sigmas = "0.1~1"
    drawing = "1GP4..."  /  word = "Hello"     # drawn / typed data (with data = "drawn"/"typed")
    [train]                                    # optional: a model with the default settings;
    n_train = 20                               # keys: TrainConfig / ModelConfig fields
                                               # ([[train]] tables: several, trained in turn)

Every file is checked when loaded (`load_scene`): unknown keys, a page outside the registry,
settings the page would refuse, a noise level σ or a time t the page's slider would move (σ
outside the process' range or off its stops by more than `STOP_TOLERANCE`: the text could no
longer quote it), or a training config `TrainConfig` refuses make a ScenesError that names the
file and the problem. Files are checked one by one: `load_scenes` returns the good ones,
`broken_scenes` the others with their message (shown on the Scenes menu and by
`scripts/warm.py`), so a typo in one file disables that scene, not every page.
`?scene=<name>` (the file name without its number prefix and ".toml") opens a scene from a link.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from scoreviz import sketch
from scoreviz.errors import ScorevizError
from scoreviz.mixture import GaussianMixture
from scoreviz.models import ModelConfig
from scoreviz.processes import get_process
from scoreviz.stops import T_STEP, nearest, sigma_stops, t_stops
from scoreviz.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SCENES_DIR = ROOT / "assets" / "scenes"
KEYS = {"title", "page", "summary", "formula", "settings", "train"}
log = logging.getLogger("scoreviz")


class ScenesError(ScorevizError):
    """A scene file that cannot be used (the message names the file and what is wrong)."""


@dataclass(frozen=True)
class Scene:
    """One validated scene (see the module docstring for the file format)."""

    name: str
    title: str
    page: str
    summary: str
    formula: str
    settings: tuple[tuple[str, str], ...]  # (URL parameter, text) pairs
    train: tuple[Any, ...]  # TrainConfigs (distribution, process, seed from the settings)
    source: str = ""  # the file's name, for messages
    dist: GaussianMixture | None = None  # drawn or typed data (train with dist=), else None

    @property
    def settings_dict(self) -> dict[str, str]:
        return dict(self.settings)


def scene_name(path: Path) -> str:
    """ "3_langevin_weights.toml" -> "langevin_weights" (the number only orders the list)."""
    return re.sub(r"^\d+_", "", path.stem)


def _file_order(path: Path) -> tuple[int, str]:
    number = re.match(r"^(\d+)_", path.name)
    return (int(number.group(1)) if number else 10**9, path.name)


def load_scenes(directory: Path | None = None) -> dict[str, Scene]:
    """Every good scene in `directory` (default SCENES_DIR), by name, in the order of the files'
    numbers (10_ after 9_), then names."""
    return dict(_scan(directory or SCENES_DIR)[0])


def broken_scenes(directory: Path | None = None) -> dict[str, str]:
    """File name -> what is wrong, for every scene file that cannot be used (disabled)."""
    return dict(_scan(directory or SCENES_DIR)[1])


@functools.cache
def _scan(directory: Path) -> tuple[dict[str, Scene], dict[str, str]]:
    """(good scenes by name, broken files' messages by file name); each broken file logged."""
    good, broken = {}, {}
    for path in sorted(directory.glob("*.toml"), key=_file_order):
        try:
            scene = load_scene(path)
        except ScenesError as exc:
            log.warning("%s This scene is disabled.", exc)
            broken[path.name] = str(exc)
            continue
        good[scene.name] = scene
    return good, broken


def load_scene(path: Path) -> Scene:
    """One scene file, checked (ScenesError names the file and the problem)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ScenesError(f"Scene {path.name}: not a readable TOML file ({e}).") from e
    try:
        return dataclasses.replace(_validated(scene_name(path), raw), source=path.name)
    except (ScorevizError, ValueError, TypeError, AttributeError, KeyError) as e:  # a bad key too
        raise ScenesError(f"Scene {path.name}: {e}") from e


def _validated(name: str, raw: dict) -> Scene:
    unknown = set(raw) - KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; valid: {sorted(KEYS)}")
    for key in ("title", "page", "summary", "formula"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ValueError(f"'{key}' must be a non-empty string")
    if not (ROOT / raw["page"]).is_file() or not raw["page"].startswith("views/"):
        raise ValueError(f"page '{raw['page']}' is not one of the app's pages")
    settings = {str(k): str(v) for k, v in raw.get("settings", {}).items()}
    own = _own_data(settings)
    state = {
        "distribution": own.key if own else settings.get("data", "eight_gaussians"),
        "process": settings.get("process", "vp_linear"),
        "seed": int(settings.get("seed", 0)),
    }
    train = raw.get("train", [])
    tables = [train] if isinstance(train, dict) else list(train)
    configs = tuple(_train_config(t, state) for t in tables)
    check_levels(settings, state["process"])
    text = " ".join(raw["summary"].split())
    dist = sketch.to_distribution(own)[1] if own else None
    return Scene(name, raw["title"].strip(), raw["page"], text, raw["formula"].strip(),
                 tuple(settings.items()), configs, dist=dist)  # fmt: skip


def _own_data(settings: dict[str, str]) -> sketch.Sketch | None:
    """The scene's drawn or typed data ("data" = "drawn" with "drawing", or "typed" with
    "word"), else None (DataError, a ScorevizError, for a damaged drawing or a refused word)."""
    kind = settings.get("data")
    if kind == "drawn":
        return sketch.from_code(settings.get("drawing", ""))
    if kind == "typed":
        return sketch.from_word(settings.get("word", ""))
    return None


def scene_data(data_key: str) -> GaussianMixture | None:
    """The mixture of the drawn or typed data a good scene trains on under `data_key` (what
    `scripts/warm.py` passes as dist=), else None."""
    for scene in load_scenes().values():
        if scene.dist is not None and scene.train and scene.train[0].distribution == data_key:
            return scene.dist
    return None


STOP_TOLERANCE = 0.02  # relative distance of a scene's sigma to the slider stop it lands on


def check_levels(settings: dict[str, str], process_key: str) -> None:
    """ValueError unless the scene's "sigmas" ("lo~hi") lie on the DAE slider's stops of the
    process and its "t" on the t sliders' stops (`scoreviz.stops`): the app would otherwise move
    (clamp) them, and the scene's text would describe a picture the page does not show."""
    process = get_process(process_key)
    if "sigmas" in settings:
        options = sigma_stops(process)
        for text in settings["sigmas"].split("~"):
            sigma = float(text)
            near = nearest(options, sigma, log=True) if sigma > 0 else 0.0
            if not (sigma > 0 and abs(near / sigma - 1) <= STOP_TOLERANCE):
                raise ValueError(
                    f"sigma = {text} is not a noise level of {process_key} that the page offers "
                    f"(it would show {near:.3g}; the range is {options[0]:.3g} to "
                    f"{options[-1]:.3g})"
                )
    if "t" in settings:
        t = float(settings["t"])
        if not (process.t_min <= t <= 1.0 and abs(nearest(t_stops(process), t) - t) < 1e-6):
            raise ValueError(
                f"t = {settings['t']} is not a stop of the t slider ({process.t_min:g}, "
                f"then {T_STEP} to 1 in steps of {T_STEP})"
            )


def _train_config(table: dict, state: dict):
    """A TrainConfig: the defaults, the scene's data/process/seed, then the table's fields."""
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    not_settable = {"model", "parent", "parent_digest"}  # a scene trains from scratch
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)} - not_settable
    unknown = set(table) - model_fields - train_fields - {"distribution", "process", "seed"}
    if unknown:
        raise ValueError(f"train keys {sorted(unknown)} are not TrainConfig/ModelConfig fields")
    model = ModelConfig(**{k: v for k, v in table.items() if k in model_fields})
    return TrainConfig(
        distribution=state.get("distribution", "eight_gaussians"),
        process=state.get("process", "vp_linear"),
        seed=int(state.get("seed", 0)),
        model=model,
        **{k: v for k, v in table.items() if k in train_fields},
    )
