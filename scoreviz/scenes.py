"""Scenes: one-click lecture presets, written as data (assets/scenes/*.toml), validated on load.

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
    [train]                                    # optional: a model with the default settings;
    n_train = 20                               # keys: TrainConfig / ModelConfig fields
                                               # ([[train]] tables: several, trained in turn)

Every file is checked when loaded (`load_scenes`): unknown keys, a page outside the registry,
settings the page would refuse, or a training config `TrainConfig` refuses make a ScenesError
that names the file and the problem. `?scene=<name>` (the file name without its number prefix
and ".toml") opens a scene from a link.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from scoreviz.errors import ConfigError, ScorevizError

SCENES_DIR = Path(__file__).resolve().parents[2] / "assets" / "scenes"
KEYS = {"title", "page", "summary", "formula", "settings", "train"}
ACTIVE_KEY = "scene"  # session key: the name of the scene whose card is shown
QUEUE_KEY = "_scene_trainings"  # session key: TrainConfigs still to train, in order


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

    @property
    def settings_dict(self) -> dict[str, str]:
        return dict(self.settings)


def scene_name(path: Path) -> str:
    """ "3_langevin_weights.toml" -> "langevin_weights" (the number only orders the list)."""
    return re.sub(r"^\d+_", "", path.stem)


@functools.cache
def load_scenes(directory: Path = SCENES_DIR) -> dict[str, Scene]:
    """Every scene in `directory`, by name, in file-name order; raises ScenesError."""
    out = {}
    for path in sorted(directory.glob("*.toml")):
        scene = load_scene(path)
        out[scene.name] = scene
    return out


def load_scene(path: Path) -> Scene:
    """One scene file, checked (ScenesError names the file and the problem)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ScenesError(f"Scene {path.name}: not a readable TOML file ({e}).") from e
    try:
        return _validated(scene_name(path), raw)
    except (ConfigError, ValueError, TypeError) as e:
        raise ScenesError(f"Scene {path.name}: {e}") from e


def _validated(name: str, raw: dict) -> Scene:
    from scoreviz.ui import links, pages

    unknown = set(raw) - KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; valid: {sorted(KEYS)}")
    for key in ("title", "page", "summary", "formula"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ValueError(f"'{key}' must be a non-empty string")
    if raw["page"] not in {p.file for p in pages.PAGES}:
        raise ValueError(f"page '{raw['page']}' is not one of the app's pages")
    settings = {str(k): str(v) for k, v in raw.get("settings", {}).items()}
    known = {p.name for p in (*links.GLOBAL, *links.page_params(raw["page"]))}
    if set(settings) - known:
        raise ValueError(f"settings {sorted(set(settings) - known)} are not on that page")
    state: dict = {}
    bad = links.apply(settings, raw["page"], state)
    if bad:
        raise ValueError(f"invalid settings {bad}")
    train = raw.get("train", [])
    tables = [train] if isinstance(train, dict) else list(train)
    configs = tuple(_train_config(t, state) for t in tables)
    text = " ".join(raw["summary"].split())
    return Scene(name, raw["title"].strip(), raw["page"], text, raw["formula"].strip(),
                 tuple(settings.items()), configs)  # fmt: skip


def _train_config(table: dict, state: dict):
    """A TrainConfig: the defaults, the scene's data/process/seed, then the table's fields."""
    from scoreviz.models import ModelConfig
    from scoreviz.training import TrainConfig

    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"model", "parent"}
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


def training_name(config) -> str:
    """A display name for a scene's model: what it is and its data, like the Train page's."""
    m = config.model
    what = f"DAE σ={m.dae_sigma:g}" if m.kind == "dae" else "default"
    data = "" if config.n_train is None else f" · N={config.n_train}"
    return f"{what} · {config.distribution} · {config.process}{data} · scene"


# ----------------------------------------------------------------------------- in the app
GOTO_KEY = "_scene_goto"  # session key: the page a just-opened scene still has to switch to


def open_scene(name: str) -> None:
    """Apply scene `name`: its settings now (call it from a widget callback or before the
    widgets are drawn), its trainings and its page on this run (`run_pending`)."""
    import streamlit as st

    from scoreviz.ui import links

    scene = load_scenes()[name]
    ss = st.session_state
    links.apply(scene.settings_dict, scene.page, ss)
    ss[ACTIVE_KEY] = name
    ss[QUEUE_KEY] = list(scene.train)
    ss[GOTO_KEY] = scene.page


def run_pending(page_file: str) -> None:
    """Start the open scene's next training (the shared cache makes a known one instant) and
    switch to its page. Both may end this run (st.rerun / st.switch_page); the state they
    need stays in the session, so the next run carries on."""
    import streamlit as st

    from scoreviz.ui.training_runner import is_training, start_training

    ss = st.session_state
    queue = ss.get(QUEUE_KEY) or []
    if queue and not is_training():
        config = queue.pop(0)
        start_training(config, training_name(config))  # reruns at once if already trained
    goto = ss.pop(GOTO_KEY, None)
    if goto and goto != page_file:
        st.switch_page(goto)


def picker() -> None:
    """The sidebar's list of scenes: one button each (a callback applies it)."""
    import streamlit as st

    with st.popover("Scenes", icon=":material/slideshow:", width="stretch"):
        st.caption("One click: data, settings, a trained model and the page of a lecture idea.")
        for name, scene in load_scenes().items():
            st.button(
                scene.title, key=f"scene_{name}", on_click=open_scene, args=(name,),
                width="stretch",
            )  # fmt: skip


def card(page_file: str) -> None:
    """The open scene's title, sentences and formula, on its own page (shown in presentation
    mode too: the container's key exempts it from the hidden prose)."""
    import streamlit as st

    name = st.session_state.get(ACTIVE_KEY)
    scene = load_scenes().get(name) if name else None
    if scene is None or scene.page != page_file:
        return
    with st.container(border=True, key="scene_card"):
        left, right = st.columns([12, 1])
        left.markdown(f"**Scene: {scene.title}**  \n{scene.summary}")
        right.button(
            "", icon=":material/close:", key="scene_close", help="Close the scene's card",
            on_click=st.session_state.__setitem__, args=(ACTIVE_KEY, None),
        )  # fmt: skip
        st.latex(scene.formula)
