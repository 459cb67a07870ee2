"""The session's data and models: the sidebar's Selection, the models kept in this session, the
server's store of finished models, and which model a page compares with the exact answer.

    sel = current_selection()                  # data, process, seed, active model
    name, model = active_score_model(sel)      # the score model trained on sel's data, or None
    add_model(name, result)                    # keep it (at most MAX_MODELS), make it active

Per session: `keys.MODELS`, `keys.ACTIVE_MODEL`, `keys.UPLOAD`, and the drawn / typed data in use
(`keys.DRAWING`, `keys.WORD`: their code and word; the points and mixture come from the
server-wide `sketch_data`, content-addressed, so a link rebuilds them). Shared across sessions
(st.cache_resource, bounded): finished TrainResults keyed by model id, so identical
configurations train once per server (`shared_models`), and a link's model ids come back from
there, or from the on-disk store shared by replicas (`find_model`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import streamlit as st

from scoreviz import model_store, sketch
from scoreviz.distributions import distribution_labels, get_distribution
from scoreviz.errors import DataError
from scoreviz.jobs.shared import SharedModels
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess, get_process
from scoreviz.text import escape
from scoreviz.training import model_name
from scoreviz.ui import keys

MAX_MODELS = 5  # per session: bounds memory per user
MAX_SHARED_MODELS = 32  # per server
MAX_SKETCHES = 64  # drawn / typed datasets kept per server (each ~50 kB)
SKETCH_KINDS = {"drawn": keys.DRAWING, "typed": keys.WORD}  # DISTRIBUTION value -> source key


@dataclass(frozen=True)
class UploadedData:
    """An uploaded point cloud used as the empirical distribution (this session only)."""

    name: str  # file name, for display
    sha: str  # hash of the content and the smoothing: part of model ids trained on it
    dist: GaussianMixture
    n_points: int
    note: str  # what was done to the data (dropped rows, standardised, ...)
    points: Any = None  # (N, 2) the standardised points (numpy), for the smoothing view
    bandwidth: float = 0.0  # the smoothing width h of `dist`
    auto_bandwidth: float = 0.0  # the width chosen from the data (select_bandwidth)
    raw_sha: str = ""  # hash of the file's bytes alone


@dataclass(frozen=True, eq=False)
class SketchData:
    """Drawn or typed data (`scoreviz.sketch.Sketch`) with its smoothing width and mixture."""

    sketch: sketch.Sketch
    bandwidth: float
    dist: GaussianMixture

    @property
    def option(self) -> str:
        """How the sidebar's select box names it."""
        return f"{self.sketch.label} ({self.sketch.n_points:,} points)"


@st.cache_resource(max_entries=MAX_SKETCHES, show_spinner=False)
def sketch_data(kind: str, source: str) -> SketchData:
    """The data of a drawing's code ("drawn") or a word ("typed"), built once per server
    (content-addressed: the same source is the same data for everyone); DataError if unusable."""
    sk = sketch.from_word(source) if kind == "typed" else sketch.from_code(source)
    h, dist = sketch.to_distribution(sk)
    return SketchData(sk, h, dist)


def session_sketch(kind: str) -> SketchData | None:
    """The session's drawn ("drawn") or typed ("typed") data in use, or None."""
    source = st.session_state.get(SKETCH_KINDS[kind])
    if not source:
        return None
    try:
        return sketch_data(kind, source)
    except DataError:
        return None


@dataclass(frozen=True)
class Selection:
    """What the shared sidebar selects; every page starts from this."""

    dist_key: str  # "eight_gaussians", ..., or "upload:<sha>", "drawn:<sha>", "typed:<sha>"
    dist_label: str
    dist: GaussianMixture
    process_key: str
    process: NoiseProcess
    seed: int
    model: Any  # the active TrainResult, or None

    @property
    def model_name(self) -> str | None:
        return st.session_state.get(keys.ACTIVE_MODEL)


def current_selection() -> Selection:
    """The Selection from session state, without drawing widgets."""
    keys.init_state()
    ss = st.session_state
    own = session_sketch(ss[keys.DISTRIBUTION]) if ss[keys.DISTRIBUTION] in SKETCH_KINDS else None
    if ss[keys.DISTRIBUTION] == "upload" and ss[keys.UPLOAD] is not None:
        up = ss[keys.UPLOAD]
        dist_key, dist_label, dist = f"upload:{up.sha}", f"Uploaded: {up.name}", up.dist
    elif own is not None:
        dist_key, dist_label, dist = own.sketch.key, own.sketch.label, own.dist
    else:
        dist_key = ss[keys.DISTRIBUTION]
        if dist_key not in distribution_labels():  # own data no longer there (the sidebar resets)
            dist_key = keys.DEFAULT_DISTRIBUTION
        dist_label, dist = distribution_labels()[dist_key], get_distribution(dist_key)
    active = ss[keys.ACTIVE_MODEL]
    return Selection(
        dist_key=dist_key,
        dist_label=dist_label,
        dist=dist,
        process_key=ss[keys.PROCESS],
        process=get_process(ss[keys.PROCESS]),
        seed=int(ss[keys.SEED]),
        model=ss[keys.MODELS].get(active) if active else None,
    )


# ----------------------------------------------------------------------------- this session's
def session_models() -> dict[str, Any]:
    """This session's models, display name -> TrainResult, oldest first."""
    return st.session_state.get(keys.MODELS, {})


def add_model(name: str, result: Any, activate: bool = True) -> None:
    """Keep a trained model in this session (oldest dropped beyond MAX_MODELS)."""
    keys.init_state()
    models: OrderedDict = st.session_state[keys.MODELS]
    models.pop(name, None)
    models[name] = result
    while len(models) > MAX_MODELS:
        dropped, _ = models.popitem(last=False)
        if st.session_state.get(keys.ACTIVE_MODEL) == dropped:
            set_active_model(None)
    if activate:
        set_active_model(name)


def set_active_model(name: str | None) -> bool:
    """Make `name` the active model; False means "applied on the next run" (then st.rerun())."""
    return keys.set_widget(keys.ACTIVE_MODEL, name)


# ----------------------------------------------------------------------------- compared
def matching_models(sel: Selection, kind: str) -> dict[str, Any]:
    """This session's models of `kind` ("score" | "dae") trained on the sidebar's data+process."""
    return {
        name: res
        for name, res in session_models().items()
        if res.config.model.kind == kind
        and res.config.distribution == sel.dist_key
        and res.config.process == sel.process_key
    }


def active_score_model(sel: Selection):
    """(name, TrainResult) of the model to compare with, or (None, None).

    The active model if it is a score model for the sidebar's distribution and process, else the
    newest such model of this session.
    """
    ok = matching_models(sel, "score")
    name = sel.model_name
    if name in ok:
        return name, ok[name]
    if ok:
        name = list(ok)[-1]
        return name, ok[name]
    return None, None


def conditional_score_model(sel: Selection):
    """(name, TrainResult) of a class-conditional model for the sidebar's data and process: the
    active model if it is one, else this session's newest; (None, None) without one."""
    ok = {n: r for n, r in matching_models(sel, "score").items() if r.config.conditional}
    if sel.model_name in ok:
        return sel.model_name, ok[sel.model_name]
    if ok:
        name = list(ok)[-1]
        return name, ok[name]
    return None, None


def field_model(sel: Selection):
    """(name, model) the Score field compares: the active model when it was trained on the
    sidebar's data and process (a classical DAE too), else `active_score_model`."""
    res = sel.model
    if res is not None and (res.config.distribution, res.config.process) == (
        sel.dist_key,
        sel.process_key,
    ):
        return sel.model_name, res
    return active_score_model(sel)


def mismatch_note(sel: Selection) -> str | None:
    """Why the active model is not shown (trained on other data or process), or None.

    Markdown with the user's text escaped (no code spans: a backtick in a name escaped them)."""
    res = sel.model
    if res is None:
        return None
    cfg = res.config
    if cfg.distribution == sel.dist_key and cfg.process == sel.process_key:
        return None
    return (
        f"The active model “{escape(sel.model_name)}” was trained on {escape(cfg.distribution)} "
        f"with the {escape(cfg.process)} process, but the sidebar shows {escape(sel.dist_key)} / "
        f"{escape(sel.process_key)}. "
        "Select those in the sidebar to compare it with the exact answer."
    )


# ----------------------------------------------------------------------------- the server's
@st.cache_resource(max_entries=1)
def shared_models() -> SharedModels:
    """The one server-wide store of finished models (identical configs train once)."""
    return SharedModels(MAX_SHARED_MODELS)


def find_model(model_id: str):
    """A finished TrainResult of this id from the server's store (or the on-disk store), else
    None. Ids are 12 hex digits; anything else is refused before any lookup."""
    if not (len(model_id) <= 64 and model_id.isalnum()):
        return None
    result = shared_models().get(model_id)
    if result is None:
        result = _from_disk(model_id)
        if result is not None:
            shared_models().put(model_id, result)
    return result


def _from_disk(model_id: str):
    """The model from the on-disk store shared by replicas ($SCOREVIZ_MODEL_STORE), if any."""
    store = model_store.from_env()
    try:
        return None if store is None else store.get(model_id)
    except ValueError:  # not a model id (the store takes 12 hex digits only)
        return None


def restore_models(ids: list[str], active: str) -> list[str]:
    """The models of these ids (the `active` one activated) from the server's stores into this
    session, in order; returns the ids that were not found."""
    missing = []
    for model_id in dict.fromkeys(ids):
        result = find_model(model_id)
        if result is None:
            missing.append(model_id)
            continue
        add_model(model_name(result.config), result, activate=model_id == active)
    return missing
