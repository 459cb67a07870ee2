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
id is looked up in the server's store of finished models (`models.find_model`: the server's
store, then the on-disk `model_store` when one is configured), so nothing trained on this server
is lost to F5.
Models of uploaded data stay out of links: the data is private to its session. Drawn and typed
data travel in the link itself (`drawing`: the strokes' code, `word`: the word; `data=drawn` /
`data=typed` selects them), and their models with it: a model's data key is the sha256 of the
points (`scoreviz.sketch`), which the link rebuilds.

    ?data=typed&word=Hello&model=4c1d9a0b7e22

The parameters: the sidebar's (`GLOBAL`) and each page's, from its control specs
(`controls.page_params`): a new page setting is one `controls.Control`. A view owns its sync:
its fragments are `links.fragment`s, which write the address after every rerun.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from scoreviz import scenes, sketch
from scoreviz.distributions import distribution_labels
from scoreviz.errors import DataError
from scoreviz.processes import PROCESSES, process_labels
from scoreviz.text import escape
from scoreviz.ui import keys
from scoreviz.ui.controls import (
    Param,
    choice,
    flag,
    integer,
    page_controls,
    page_params,
    show_flag,
)
from scoreviz.ui.models import SKETCH_KINDS, restore_models


def _data_options() -> dict[str, str]:
    """The `data` parameter's values: the built-ins, and "drawn" / "typed" (the link's own)."""
    return {**distribution_labels(), **{k: k for k in SKETCH_KINDS}}


def _drawing(text: str, _process: str) -> str:
    """A drawing's code, checked (ValueError for a damaged one)."""
    try:
        sketch.decode_strokes(text)
    except DataError as exc:
        raise ValueError(str(exc)) from None
    return text


def _word(text: str, _process: str) -> str:
    """A word the text box would accept (ValueError otherwise)."""
    try:
        return sketch.check_word(text)
    except DataError as exc:
        raise ValueError(str(exc)) from None


GLOBAL: tuple[Param, ...] = (
    Param("data", keys.DISTRIBUTION, choice(_data_options)),
    Param("drawing", keys.DRAWING, _drawing, max_chars=sketch.MAX_CODE_CHARS),
    Param("word", keys.WORD, _word, max_chars=4 * sketch.WORD_MAX_CHARS),
    Param("process", keys.PROCESS, choice(process_labels)),
    Param("seed", keys.SEED, integer(0, 2**31 - 1)),
    Param("present", keys.PRESENT, flag, show_flag),
    Param("scene", keys.SCENE, choice(lambda: scenes.load_scenes())),
)


# ----------------------------------------------------------------------------- read
def first_run() -> bool:
    """Whether this run is the session's first, before `read_url` (a link is read only then)."""
    return not st.session_state.get(keys.LINKS_READ)


def read_url(page_file: str) -> None:
    """On a session's first run: URL parameters into session state (before any widget). A scene
    named by the link is opened before this (`scenes.open_from_link`): the link's own values
    override the scene's."""
    ss = st.session_state
    if not first_run():
        return
    ss[keys.LINKS_READ] = True
    given = st.query_params.to_dict()
    if not given:
        return
    bad = apply(given, page_file, ss)
    keys.init_state()  # after the link's values: defaults only for what it did not set
    bad += _restore_models(given)
    # a reload, a shared link, or a reconnect that landed on another replica (whose server
    # never saw this session): say what came back, so a reset view does not look like a glitch
    if set(given) - {"scene", "present"}:  # a scene's or presentation mode's link is no restore
        what = "settings and models are" if ss.get(keys.MODELS) else "its settings are"
        st.toast(
            f"This view was restored from its address: {what} back.", icon=":material/restore:"
        )
    if bad:
        ss[keys.LINKS_NOTICE] = (
            "This link's " + ", ".join(f"“{escape(b)}”" for b in bad) + " could not be used: "
            "the default is shown instead."
        )


def apply(given: Mapping[str, str], page_file: str, ss: Any) -> list[str]:
    """Parse `given` into `ss` (a session-state mapping); returns the names that were invalid.

    The process is parsed first: the t and σ settings are per process."""
    bad = []
    process = ss.get(keys.PROCESS, keys.DEFAULT_PROCESS)
    for p in (*GLOBAL, *page_params(page_file)):
        if p.name not in given:
            continue
        try:
            value = p.parse(str(given[p.name])[: p.max_chars], process)
        except (ValueError, TypeError, KeyError):
            bad.append(p.name)
            continue
        ss[p.session_key(process)] = value
        if p.name == "process":
            process = value
    return bad


def _restore_models(given: Mapping[str, str]) -> list[str]:
    """The link's models from the server's stores into this session; the missing ids' names
    ("model" for the active one, "models" for the others)."""
    active = given.get("model", "")
    ids = [i for i in given.get("models", "").split(",") if i] + ([active] if active else [])
    missing = restore_models(ids, active)
    return list(dict.fromkeys("model" if i == active else "models" for i in missing))


# ----------------------------------------------------------------------------- write
def url_values(page_file: str, ss: Any) -> dict[str, str]:
    """The URL parameters that reproduce the current view (defaults omitted where known)."""
    out: dict[str, str] = {}
    process = ss.get(keys.PROCESS, keys.DEFAULT_PROCESS)
    for p in (*GLOBAL, *page_params(page_file)):
        key = p.session_key(process)
        if key in ss and not (p.name == "data" and ss[key] == "upload"):
            if p.name in ("present", "scene", "drawing", "word") and not ss[key]:
                continue
            out[p.name] = p.show(ss[key])
    models = ss.get(keys.MODELS, {})
    shareable = {n: r for n, r in models.items() if not r.config.distribution.startswith("upload")}
    active = ss.get(keys.ACTIVE_MODEL)
    if active in shareable:
        out["model"] = shareable[active].model_id
    others = [r.model_id for n, r in shareable.items() if n != active]
    if others:
        out["models"] = ",".join(others)
    return out


def _widget_keys(page_file: str) -> list[str]:
    """Every session key the page's settings may use (a "{process}" key once per process)."""
    return list(
        dict.fromkeys(c.session_key(p) for c in page_controls(page_file) for p in PROCESSES)
    )


def remember(page_file: str, ss: Any) -> None:
    """Keep the page's settings beside its widgets (see `recall`)."""
    kept = ss.setdefault(keys.PAGE_SETTINGS, {})
    kept.update({k: ss[k] for k in _widget_keys(page_file) if k in ss})


def recall(page_file: str, ss: Any) -> None:
    """Before the page's widgets: the settings it had when it was last shown. Streamlit forgets a
    widget's value once a run ends without drawing it, so leaving Sampling and coming back reset
    its sampler, steps and particles to the defaults (and the link with them)."""
    kept = ss.get(keys.PAGE_SETTINGS, {})
    for k in _widget_keys(page_file):
        if k in kept and k not in ss:
            ss[k] = kept[k]


def sync(page_file: str) -> None:
    """Write the view's settings to the URL (only when they changed: no needless messages), and
    keep them for the page's next visit (`remember`)."""
    remember(page_file, st.session_state)
    values = url_values(page_file, st.session_state)
    if st.query_params.to_dict() != values:
        st.query_params.from_dict(values)


def sync_current() -> None:
    """`sync` for the page being shown: for fragments, whose reruns skip app.py's own sync."""
    page = st.session_state.get(keys.PAGE)
    if page is not None:
        sync(page)


def fragment(body: Callable) -> Callable:
    """`st.fragment(body)` that writes the view's settings to the address after every rerun of
    the fragment (a fragment's rerun skips app.py, whose own `sync` ends every full run)."""

    @st.fragment
    @functools.wraps(body)
    def synced(*args, **kwargs):
        try:
            return body(*args, **kwargs)
        finally:
            sync_current()

    return synced


def show_notice() -> None:
    """The notice about a link's invalid values, once."""
    text = st.session_state.pop(keys.LINKS_NOTICE, None)
    if text:
        st.warning(text, icon=":material/link_off:")
