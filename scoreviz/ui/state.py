"""Session state and the shared sidebar (the only Streamlit-aware state module).

Per-session (st.session_state, never module globals):
    "distribution"  registry key of the chosen built-in distribution, or "upload"
    "process"       registry key of the noise process
    "seed"          int seed for sampling / training
    "models"        dict display name -> TrainResult (at most MAX_MODELS kept)
    "active_model"  display name of the active model, or None
    "upload"        UploadedData or None (an uploaded point cloud, this session only)
    "training_job"  the session's TrainingJob (scoreviz.ui.training_runner), if any

Widget-bound keys ("distribution", "active_model") cannot be assigned after their sidebar widget
was drawn in a run; pages call `request_distribution` / `set_active_model`, which park the value
under a "_pending_*" key when needed and apply it before the widget on the next run.

Shared across sessions (st.cache_resource, bounded): finished TrainResults keyed by model id, so
identical configurations train once per server (see `shared_models`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from scoreviz.distributions import distribution_labels, get_distribution
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess, get_process, process_labels
from scoreviz.text import code_span
from scoreviz.ui import present, scenes

MAX_MODELS = 5  # per session: bounds memory per user
MAX_SHARED_MODELS = 32  # per server


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


@dataclass(frozen=True)
class Selection:
    """What the shared sidebar selects; every page starts from this."""

    dist_key: str  # "eight_gaussians", ..., or "upload:<sha>"
    dist_label: str
    dist: GaussianMixture
    process_key: str
    process: NoiseProcess
    seed: int
    model: Any  # the active TrainResult, or None

    @property
    def model_name(self) -> str | None:
        return st.session_state.get("active_model")


def init_state() -> None:
    """Defaults for every key this app uses (idempotent)."""
    ss = st.session_state
    ss.setdefault("distribution", "eight_gaussians")
    ss.setdefault("process", "vp_linear")
    ss.setdefault("seed", 0)
    ss.setdefault("models", OrderedDict())
    ss.setdefault("active_model", None)
    ss.setdefault("upload", None)
    ss.setdefault(present.KEY, False)
    ss.setdefault(scenes.ACTIVE_KEY, None)


def _dist_options() -> dict[str, str]:
    opts = dict(distribution_labels())
    up = st.session_state.get("upload")
    if up is not None:
        opts["upload"] = f"Uploaded: {up.name} ({up.n_points} points)"
    return opts


def sidebar() -> Selection:
    """Render the shared sidebar (distribution, process, seed, active model); return the choice."""
    init_state()
    ss = st.session_state
    for key in ("distribution", "active_model"):
        if f"_pending_{key}" in ss:
            ss[key] = ss.pop(f"_pending_{key}")
    with st.sidebar:
        st.markdown("### Shared settings")
        opts = _dist_options()
        if ss["distribution"] not in opts:
            ss["distribution"] = "eight_gaussians"
        st.selectbox("Distribution", list(opts), format_func=opts.get, key="distribution")
        procs = process_labels()
        st.selectbox("Noise process", list(procs), format_func=procs.get, key="process")
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="seed")
        present.toggle()
        scenes.picker()
        names = list(ss["models"])
        if names:
            if ss["active_model"] not in names:
                ss["active_model"] = names[-1]
            st.selectbox(
                "Active model",
                names,
                key="active_model",
                format_func=sidebar_name,
                help="Its full name: " + code_span(ss["active_model"]),  # tooltips are markdown
            )
            quality = getattr(ss["models"][ss["active_model"]], "quality", None)
            if quality is not None:
                st.caption(quality.summary())
        else:
            st.caption("No trained model yet: open **Train** (or press the button on Home).")
    return current_selection()


def sidebar_name(name: str, limit: int = 36) -> str:
    """A model's name as the narrow sidebar shows it (the full one is in its help): without id
    hashes, "seed N" (the seed is in the sidebar) and parentheses, process keys shortened, at
    most `limit` characters. "default · Eight Gaussians (ring) · vp_linear · seed 0" ->
    "default · Eight Gaussians · VP"."""
    import re

    short = {"vp_linear": "VP", "vp_cosine": "VP cos", "sub_vp": "sub-VP", "ve": "VE"}
    parts = [re.sub(r"\s*\([^)]*\)", "", p).strip() for p in name.split(" · ")]
    parts = [short.get(p, p) for p in parts]
    kept = [p for p in parts if p and not re.fullmatch(r"seed \d+|[0-9a-f]{4,12}", p)]
    out = " · ".join(kept) or name
    return out if len(out) <= limit else out[: limit - 1] + "…"


def current_selection() -> Selection:
    """The Selection from session state, without drawing widgets."""
    init_state()
    ss = st.session_state
    if ss["distribution"] == "upload" and ss["upload"] is not None:
        up = ss["upload"]
        dist_key, dist_label, dist = f"upload:{up.sha}", f"Uploaded: {up.name}", up.dist
    else:
        dist_key = ss["distribution"]
        dist_label, dist = distribution_labels()[dist_key], get_distribution(dist_key)
    model = ss["models"].get(ss["active_model"]) if ss["active_model"] else None
    return Selection(
        dist_key=dist_key,
        dist_label=dist_label,
        dist=dist,
        process_key=ss["process"],
        process=get_process(ss["process"]),
        seed=int(ss["seed"]),
        model=model,
    )


def add_model(name: str, result: Any, activate: bool = True) -> None:
    """Keep a trained model in this session (oldest dropped beyond MAX_MODELS)."""
    models: OrderedDict = st.session_state["models"]
    models.pop(name, None)
    models[name] = result
    while len(models) > MAX_MODELS:
        dropped, _ = models.popitem(last=False)
        if st.session_state.get("active_model") == dropped:
            set_active_model(None)
    if activate:
        set_active_model(name)


def _set_widget_value(key: str, value: Any) -> bool:
    """Set a widget-bound key now if allowed, else park it for the next run (True: set now)."""
    try:
        st.session_state[key] = value
        return True
    except StreamlitAPIException:  # the widget was already drawn in this run
        st.session_state[f"_pending_{key}"] = value
        return False


def set_active_model(name: str | None) -> bool:
    """Make `name` the active model; False means "applied on the next run" (then st.rerun())."""
    return _set_widget_value("active_model", name)


def request_distribution(key: str) -> bool:
    """Select a distribution ("upload" or a registry key); False: applied on the next run."""
    return _set_widget_value("distribution", key)


class _SharedModels:
    """Server-wide LRU of finished TrainResults keyed by model id (thread-safe, bounded)."""

    def __init__(self, max_entries: int) -> None:
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, model_id: str):
        with self._lock:
            item = self._items.get(model_id)
            if item is not None:
                self._items.move_to_end(model_id)
            return item

    def put(self, model_id: str, result: Any) -> None:
        with self._lock:
            self._items[model_id] = result
            self._items.move_to_end(model_id)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def discard(self, model_id: str) -> None:
        """Forget one model (tests that put stand-ins under real configs' ids remove them)."""
        with self._lock:
            self._items.pop(model_id, None)

    def __len__(self) -> int:
        return len(self._items)


@st.cache_resource(max_entries=1)
def shared_models() -> _SharedModels:
    """The one server-wide store of finished models (identical configs train once)."""
    return _SharedModels(MAX_SHARED_MODELS)
