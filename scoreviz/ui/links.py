"""Shareable, reload-proof state: the sidebar's and the page's settings live in the URL.

The address bar always holds a link that reopens the view on screen: after every run (and
after every fragment rerun that calls `sync`) the shared settings and the current page's
settings are written to `st.query_params`; on a session's first run they are read back into
session state before any widget is drawn. So F5 restores the view, and a lecturer can paste the
link to the class. An invalid value falls back to the widget's default with a notice, never an
exception.

    ?data=two_moons&process=ve&seed=3&t=0.25                 (Score field, one t)
    ?sampler=annealed_langevin&steps=100&particles=500&model=9f3a0c41d2e7

Models travel by id (`TrainConfig.model_id`, which hashes every setting): `model` is the active
one, `models` the session's others. On a new session (a reload, or a link opened elsewhere) each
id is looked up in the server's store of finished models (`state.shared_models`, plus the
on-disk `model_store` when one is configured), so nothing trained on this server is lost to F5.
Models of uploaded data stay out of links: the data is private to its session.

Plain data for the parameters, one table (`GLOBAL`, `PAGE_PARAMS`): a new setting is one entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from scoreviz.text import escape

NOTICE_KEY = "_links_notice"
READ_KEY = "_links_read"
PAGE_KEY = "_page_file"  # the script of the page this run shows (set by app.py)


@dataclass(frozen=True)
class Param:
    """One URL parameter: its name, the session-state key it fills ("{process}" is replaced by
    the process key: per-process widgets) and its text form.

    parse(text, process_key) -> value, raising ValueError for text that is not a valid value;
    show(value) -> text.
    """

    name: str
    key: str
    parse: Callable[[str, str], Any]
    show: Callable[[Any], str] = str

    def session_key(self, process_key: str) -> str:
        return self.key.replace("{process}", process_key)


# ----------------------------------------------------------------------------- value kinds
def choice(options: Callable[[], Mapping | list]) -> Callable[[str, str], str]:
    """A registry key (or an option) among `options()`."""

    def parse(text: str, _process: str) -> str:
        if text not in list(options()):
            raise ValueError(text)
        return text

    return parse


def integer(lo: int, hi: int, step: int = 1) -> Callable[[str, str], int]:
    """An int in [lo, hi] on the slider's step grid."""

    def parse(text: str, _process: str) -> int:
        v = int(text)
        if not lo <= v <= hi or (v - lo) % step:
            raise ValueError(text)
        return v

    return parse


def one_of(values: tuple) -> Callable[[str, str], Any]:
    """One of a select_slider's numeric options."""

    def parse(text: str, _process: str):
        v = type(values[0])(text)
        if v not in values:
            raise ValueError(text)
        return v

    return parse


def flag(text: str, _process: str) -> bool:
    if text not in ("0", "1", "true", "false"):
        raise ValueError(text)
    return text in ("1", "true")


def show_flag(value: Any) -> str:
    return "1" if value else "0"


def real(lo: float, hi: float) -> Callable[[str, str], float]:
    def parse(text: str, _process: str) -> float:
        v = float(text)
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ValueError(text)
        return v

    return parse


def t_value(text: str, process_key: str) -> float:
    """A time t in [t_min, 1], moved to the t slider's nearest stop."""
    from scoreviz.processes import get_process
    from scoreviz.ui.widgets import nearest_option, t_options

    v = real(0.0, 1.0)(text, process_key)
    return nearest_option(t_options(get_process(process_key)), v)


def sigma_range(text: str, process_key: str) -> tuple[float, float]:
    """Two noise levels "lo~hi", each moved to the σ slider's nearest stop."""
    from scoreviz.analysis import sigma_options
    from scoreviz.processes import get_process

    options = sigma_options(get_process(process_key))
    lo, hi = (real(0.0, math.inf)(p, process_key) for p in text.split("~"))
    if not 0 < lo <= hi:
        raise ValueError(text)
    near = [min(options, key=lambda o, v=v: abs(math.log(o / v))) for v in (lo, hi)]
    return near[0], near[1]


def show_number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def show_range(value: Any) -> str:
    return "~".join(f"{float(v):.6g}" for v in value)


def several(options: Callable[[], Mapping | list]) -> Callable[[str, str], list[str]]:
    """A comma-separated list of keys among `options()` (a multiselect)."""

    def parse(text: str, _process: str) -> list[str]:
        items = [s for s in text.split(",") if s]
        if not items or any(s not in list(options()) for s in items):
            raise ValueError(text)
        return list(dict.fromkeys(items))

    return parse


def show_list(value: Any) -> str:
    return ",".join(value)


# ----------------------------------------------------------------------------- the table
def _distributions():
    from scoreviz.distributions import distribution_labels

    return distribution_labels()


def _processes():
    from scoreviz.processes import process_labels

    return process_labels()


def _samplers():
    from scoreviz.samplers import SAMPLERS

    return SAMPLERS


def _weightings():
    from scoreviz.losses import WEIGHTINGS

    return WEIGHTINGS


GLOBAL: tuple[Param, ...] = (
    Param("data", "distribution", choice(_distributions)),
    Param("process", "process", choice(_processes)),
    Param("seed", "seed", integer(0, 2**31 - 1)),
    Param("present", "present", flag, show_flag),
    Param("scene", "scene", choice(lambda: _scene_names())),
)


def _scene_names() -> list[str]:
    from scoreviz.ui.scenes import load_scenes

    return list(load_scenes())


def _sampler_params() -> tuple[Param, ...]:
    """The Sampling page's settings, every sampler knob included (from the sampler registry)."""
    from scoreviz.samplers import SAMPLERS

    knobs = {k.key: k for spec in SAMPLERS.values() for k in spec.knobs}
    return (
        Param("sampler", "sampler", choice(_samplers)),
        Param("steps", "sampler_steps", integer(1, 500)),
        Param("particles", "sampler_particles", integer(1, 2000)),
        *(
            Param(k.key.removeprefix("sampler_"), k.key, real(k.lo, k.hi), show_number)
            if not all(float(v).is_integer() for v in (k.lo, k.hi, k.default, k.step))
            else Param(
                k.key.removeprefix("sampler_"), k.key, integer(int(k.lo), int(k.hi), int(k.step))
            )
            for k in knobs.values()
        ),
    )


PAGE_PARAMS: dict[str, Callable[[], tuple[Param, ...]]] = {
    "views/forward.py": lambda: (Param("t", "forward_t_{process}", t_value, show_number),),
    "views/score_field.py": lambda: (
        Param("t", "field_t_{process}", t_value, show_number),
        Param("scaled", "field_scaled", flag, show_flag),
        Param("arrows", "field_arrows", integer(7, 31, 2)),
        Param("overlay", "field_overlay", flag, show_flag),
    ),
    "views/dae.py": lambda: (
        Param("sigmas", "dae_range_{process}", sigma_range, show_range),
        Param("points", "dae_points", integer(20, 400, 20)),
    ),
    "views/loss.py": lambda: (
        Param("weightings", "loss_weightings", several(_weightings), show_list),
        Param("bins", "loss_bins", integer(20, 60, 4)),
        Param("per_bin", "loss_per_bin", one_of((128, 256, 512, 1024))),
    ),
    "views/sampling.py": _sampler_params,
}


def page_params(page_file: str) -> tuple[Param, ...]:
    return PAGE_PARAMS.get(page_file, lambda: ())()


# ----------------------------------------------------------------------------- read
def read_url(page_file: str) -> None:
    """On a session's first run: URL parameters into session state (before any widget)."""
    ss = st.session_state
    if ss.get(READ_KEY):
        return
    ss[READ_KEY] = True
    given = st.query_params.to_dict()
    if not given:
        return
    from scoreviz.ui.state import init_state

    if given.get("scene") in _scene_names():  # the scene first: the link's values override it
        from scoreviz.ui.scenes import open_scene

        open_scene(given["scene"])
    bad = apply(given, page_file, ss)
    init_state()  # after the link's values: defaults only for what it did not set
    bad += _restore_models(given)
    # a reload, a shared link, or a reconnect that landed on another replica (whose server
    # never saw this session): say what came back, so a reset view does not look like a glitch
    if set(given) - {"scene", "present"}:  # a scene's or presentation mode's link is no restore
        what = "settings and models are" if ss.get("models") else "its settings are"
        st.toast(
            f"This view was restored from its address: {what} back.", icon=":material/restore:"
        )
    if bad:
        ss[NOTICE_KEY] = (
            "This link's " + ", ".join(f"“{escape(b)}”" for b in bad) + " could not be used: "
            "the default is shown instead."
        )


def apply(given: Mapping[str, str], page_file: str, ss: Any) -> list[str]:
    """Parse `given` into `ss` (a session-state mapping); returns the names that were invalid.

    The process is parsed first: the t and σ settings are per process."""
    bad = []
    process = ss.get("process", "vp_linear")
    for p in (*GLOBAL, *page_params(page_file)):
        if p.name not in given:
            continue
        try:
            value = p.parse(str(given[p.name])[:200], process)
        except (ValueError, TypeError, KeyError):
            bad.append(p.name)
            continue
        ss[p.session_key(process)] = value
        if p.name == "process":
            process = value
    return bad


def _restore_models(given: Mapping[str, str]) -> list[str]:
    """The link's models from the server's stores into this session; the missing ids' names."""
    from scoreviz.training import model_name
    from scoreviz.ui.state import add_model

    active = given.get("model", "")
    ids = [i for i in given.get("models", "").split(",") if i] + ([active] if active else [])
    missing = []
    for model_id in dict.fromkeys(ids):
        result = find_model(model_id)
        if result is None:
            missing.append("model" if model_id == active else "models")
            continue
        add_model(model_name(result.config), result, activate=model_id == active)
    return list(dict.fromkeys(missing))


def find_model(model_id: str):
    """A finished TrainResult of this id from the server's store (or the on-disk store), else
    None. Ids are 12 hex digits; anything else is refused before any lookup."""
    from scoreviz.ui.state import shared_models

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
    from scoreviz import model_store

    store = model_store.from_env()
    try:
        return None if store is None else store.get(model_id)
    except ValueError:  # not a model id (the store takes 12 hex digits only)
        return None


# ----------------------------------------------------------------------------- write
def url_values(page_file: str, ss: Any) -> dict[str, str]:
    """The URL parameters that reproduce the current view (defaults omitted where known)."""
    out: dict[str, str] = {}
    process = ss.get("process", "vp_linear")
    for p in (*GLOBAL, *page_params(page_file)):
        key = p.session_key(process)
        if key in ss and not (p.name == "data" and ss[key] == "upload"):
            if p.name in ("present", "scene") and not ss[key]:
                continue
            out[p.name] = p.show(ss[key])
    models = ss.get("models", {})
    shareable = {n: r for n, r in models.items() if not r.config.distribution.startswith("upload")}
    active = ss.get("active_model")
    if active in shareable:
        out["model"] = shareable[active].model_id
    others = [r.model_id for n, r in shareable.items() if n != active]
    if others:
        out["models"] = ",".join(others)
    return out


def sync(page_file: str) -> None:
    """Write the view's settings to the URL (only when they changed: no needless messages)."""
    values = url_values(page_file, st.session_state)
    if st.query_params.to_dict() != values:
        st.query_params.from_dict(values)


def sync_current() -> None:
    """`sync` for the page being shown: for fragments, whose reruns skip app.py's own sync."""
    page = st.session_state.get(PAGE_KEY)
    if page is not None:
        sync(page)


def show_notice() -> None:
    """The notice about a link's invalid values, once."""
    text = st.session_state.pop(NOTICE_KEY, None)
    if text:
        st.warning(text, icon=":material/link_off:")
