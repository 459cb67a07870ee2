"""Scenes in the app: a scene's settings checked against its page's URL parameters, and applied.

The file format and its structural checks are `scoreviz.scenes` (core). Here `load_scenes` adds
the one check that needs the app's tables: every setting is a URL parameter of the scene's page
(`scoreviz.ui.links`) with a value that page accepts. A scene that fails either check is left
out and listed, with its message, on the Scenes menu (`broken`). Then `open_scene` applies a scene,
`run_pending` trains what it needs and opens its page, `picker` lists the scenes in the sidebar
and `card` shows the open scene's sentences and formula.
"""

from __future__ import annotations

import functools
import logging

import streamlit as st

from scoreviz.scenes import Scene, ScenesError
from scoreviz.scenes import broken_scenes as broken_scene_files
from scoreviz.scenes import load_scenes as load_scene_files
from scoreviz.text import escape
from scoreviz.training import model_name
from scoreviz.ui import keys, links, pages
from scoreviz.ui.training_runner import is_training, start_training

__all__ = ["Scene", "ScenesError", "broken", "load_scenes"]
log = logging.getLogger("scoreviz")


def load_scenes() -> dict[str, Scene]:
    """Every usable scene (`scoreviz.scenes.load_scenes`), each setting checked against its
    page; a scene that fails is left out (see `broken`), the others stay."""
    return _checked()[0]


def broken() -> dict[str, str]:
    """File name -> why that scene is disabled (the file's own checks, then its page's)."""
    return _checked()[1]


@functools.cache
def _checked() -> tuple[dict[str, Scene], dict[str, str]]:
    good, bad = {}, broken_scene_files()
    for name, scene in load_scene_files().items():
        try:
            check_settings(scene)
        except ScenesError as exc:
            log.warning("%s This scene is disabled.", exc)
            bad[scene.source or name] = str(exc)
            continue
        good[name] = scene
    return good, bad


def check_settings(scene: Scene) -> None:
    """ScenesError unless every setting is one of the page's URL parameters, with a valid value."""
    where = f"Scene {scene.source or scene.name}"
    if scene.page not in {p.file for p in pages.PAGES}:
        raise ScenesError(f"{where}: page '{scene.page}' is not one of the app's pages")
    settings = scene.settings_dict
    known = {p.name for p in (*links.GLOBAL, *links.page_params(scene.page))}
    if set(settings) - known:
        raise ScenesError(f"{where}: settings {sorted(set(settings) - known)} are not on that page")
    bad = links.apply(settings, scene.page, {})
    if bad:
        raise ScenesError(f"{where}: invalid settings {bad}")


# ----------------------------------------------------------------------------- in the app
def open_scene(name: str) -> None:
    """Apply scene `name`: its settings now (call it from a widget callback or before the
    widgets are drawn), its trainings and its page on this run (`run_pending`)."""
    scene = load_scenes()[name]
    ss = st.session_state
    links.apply(scene.settings_dict, scene.page, ss)
    ss[keys.SCENE] = name
    ss[keys.SCENE_QUEUE] = list(scene.train)
    ss[keys.SCENE_GOTO] = scene.page


def open_from_link() -> None:
    """On a session's first run, the scene its link names (`?scene=<name>`), opened before
    `links.read_url` reads the link's other values (which override the scene's)."""
    if links.first_run():
        name = st.query_params.get("scene")
        if name in load_scenes():
            open_scene(name)


def run_pending(page_file: str) -> None:
    """Start the open scene's next training (the shared cache makes a known one instant) and
    switch to its page. Both may end this run (st.rerun / st.switch_page); the state they
    need stays in the session, so the next run carries on."""
    ss = st.session_state
    queue = ss.get(keys.SCENE_QUEUE) or []
    if queue and not is_training():
        config = queue.pop(0)
        # reruns at once if the server already has it
        start_training(config, model_name(config))
    goto = ss.pop(keys.SCENE_GOTO, None)
    if goto and goto != page_file:
        st.switch_page(goto)


def picker() -> None:
    """The sidebar's list of scenes: one button each (a callback applies it)."""
    with st.popover("Scenes", icon=":material/slideshow:", width="stretch"):
        st.caption("One click: data, settings, a trained model and the page of a lecture idea.")
        for name, scene in load_scenes().items():
            st.button(
                scene.title, key=f"scene_{name}", on_click=open_scene, args=(name,),
                width="stretch",
            )  # fmt: skip
        for message in broken().values():  # a bad file disables its scene, nothing else
            st.caption(f":warning: Disabled: {escape(message, limit=300)}")


def card(page_file: str) -> None:
    """The open scene's title, sentences and formula, on its own page (shown in presentation
    mode too: the container's key exempts it from the hidden prose)."""
    name = st.session_state.get(keys.SCENE)
    scene = load_scenes().get(name) if name else None
    if scene is None or scene.page != page_file:
        return
    with st.container(border=True, key="scene_card"):
        left, right = st.columns([12, 1])
        left.markdown(f"**Scene: {scene.title}**  \n{scene.summary}")
        right.button(
            "", icon=":material/close:", key="scene_close", help="Close the scene's card",
            on_click=st.session_state.__setitem__, args=(keys.SCENE, None),
        )  # fmt: skip
        st.latex(scene.formula)
