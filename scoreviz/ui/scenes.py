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

from scoreviz.data_io import is_custom_key
from scoreviz.scenes import Scene, ScenesError
from scoreviz.scenes import broken_scenes as broken_scene_files
from scoreviz.scenes import load_scenes as load_scene_files
from scoreviz.text import escape
from scoreviz.training import model_name
from scoreviz.ui import keys, links, pages, present
from scoreviz.ui.models import current_selection
from scoreviz.ui.training_runner import is_training, live_status, start_training

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
def open_scene(name: str, menu: str | None = None) -> None:
    """Apply scene `name`: its settings now (call it from a widget callback or before the
    widgets are drawn), its trainings and its page on this run (`run_pending`). From a Scenes
    menu (`menu`: its popover's key) it also closes that menu."""
    scene = load_scenes()[name]
    ss = st.session_state
    if menu is not None:
        ss[menu] = False  # a stateful popover's key holds whether it is open
    links.apply(scene.settings_dict, scene.page, ss)
    ss[keys.SCENE] = name
    ss[keys.SCENE_QUEUE] = list(scene.train)
    ss.pop(keys.SCENE_TRAINED, None)
    ss[keys.SCENE_GOTO] = scene.page


def open_from_link() -> None:
    """On a session's first run, the scene its link names (`?scene=<name>`), opened before
    `links.read_url` reads the link's other values (which override the scene's)."""
    if links.first_run():
        name = st.query_params.get("scene")
        if name in load_scenes():
            open_scene(name)


def run_pending(page_file: str) -> None:
    """Start the open scene's next training (the shared cache makes a known one instant), show
    its progress at the top of the page, and switch to the scene's page. Each finished training
    reruns the app (the progress fragment), which starts the next one here, so a scene on a
    fresh server shows everything it trained without a second click. st.rerun / st.switch_page
    may end this run; the state they need stays in the session, so the next run carries on."""
    ss = st.session_state
    queue = ss.get(keys.SCENE_QUEUE) or []
    if queue and not is_training():
        config = queue.pop(0)
        ss[keys.SCENE_TRAINED] = ss.get(keys.SCENE_TRAINED, 0) + 1
        # reruns at once if the server already has it; drawn or typed data: the session's
        sel = current_selection()
        dist = sel.dist if is_custom_key(config.distribution) else None
        if dist is None or sel.dist_key == config.distribution:
            start_training(config, model_name(config), dist=dist)
    goto = ss.pop(keys.SCENE_GOTO, None)
    if goto and goto != page_file:
        st.switch_page(goto)
    if is_training() and keys.SCENE_TRAINED in ss:
        total = ss[keys.SCENE_TRAINED] + len(queue)
        st.caption(
            f"Preparing the scene: training model {ss[keys.SCENE_TRAINED]} of {total} (once "
            "per server: later openings are instant)."
        )
        live_status(show_chart=False, key="scene")
    elif not queue:
        ss.pop(keys.SCENE_TRAINED, None)


def picker(where: str = "sidebar") -> None:
    """A Scenes menu (the sidebar's, or presentation mode's bar: `where` keeps them apart): one
    button per scene, whose callback applies it and closes the menu. The popover is stateful
    (on_change="rerun") so that the callback can close it."""
    menu = f"scenes_menu_{where}"
    wide = "stretch" if where == "sidebar" else "content"
    with st.popover("Scenes", icon=":material/slideshow:", width=wide, key=menu,
                    on_change="rerun"):  # fmt: skip
        st.caption("One click: data, settings, a trained model and the page of a lecture idea.")
        for name, scene in load_scenes().items():
            st.button(
                scene.title, key=f"scene_{name}" if where == "sidebar" else f"scene_{where}_{name}",
                on_click=open_scene,
                args=(name, menu), width="stretch",
            )  # fmt: skip
        for message in broken().values():  # a bad file disables its scene, nothing else
            st.caption(f":warning: Disabled: {escape(message, limit=300)}")


CARD_PX = 64  # the collapsed card's height and the gap under it, kept free above the figure


def card(page_file: str, in_sidebar: bool = False) -> None:
    """The open scene on its own page, as one collapsed row with its title; opened, its
    sentences, formula and a Close button. In presentation mode above the page (app.py; the
    container's key exempts it from the hidden prose) and the figure is made that much
    shorter; otherwise at the top of the sidebar (`sidebar`), so the page's figure and its
    controls keep their place in a 1280x720 window."""
    name = st.session_state.get(keys.SCENE)
    scene = load_scenes().get(name) if name else None
    if scene is None or scene.page != page_file or in_sidebar == present.is_on():
        return
    if not in_sidebar:
        present.reserve(CARD_PX)
    with (
        st.container(key="scene_card"),
        st.expander(f"**Scene:** {scene.title}", icon=":material/slideshow:"),
    ):
        st.markdown(f"**Scene: {scene.title}**  \n{scene.summary}")
        st.latex(scene.formula)
        st.button(
            "Close the scene", icon=":material/close:", key="scene_close",
            on_click=st.session_state.__setitem__, args=(keys.SCENE, None),
        )  # fmt: skip
