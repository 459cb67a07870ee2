"""Scenes in the app: a scene's settings checked against its page's URL parameters, and applied.

The file format and its structural checks are `scoreviz.scenes` (core). Here `load_scenes` adds
the one check that needs the app's tables: every setting is a URL parameter of the scene's page
(`scoreviz.ui.links`) with a value that page accepts. Then `open_scene` applies a scene,
`run_pending` trains what it needs and opens its page, `picker` lists the scenes in the sidebar
and `card` shows the open scene's sentences and formula.
"""

from __future__ import annotations

import functools

from scoreviz.scenes import Scene, ScenesError
from scoreviz.scenes import load_scenes as load_scene_files

__all__ = ["ACTIVE_KEY", "QUEUE_KEY", "Scene", "ScenesError", "load_scenes"]

ACTIVE_KEY = "scene"  # session key: the name of the scene whose card is shown
QUEUE_KEY = "_scene_trainings"  # session key: TrainConfigs still to train, in order


@functools.cache
def load_scenes() -> dict[str, Scene]:
    """Every scene (`scoreviz.scenes.load_scenes`), each setting checked against its page."""
    scenes = load_scene_files()
    for scene in scenes.values():
        check_settings(scene)
    return scenes


def check_settings(scene: Scene) -> None:
    """ScenesError unless every setting is one of the page's URL parameters, with a valid value."""
    from scoreviz.ui import links, pages

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

    from scoreviz.training import model_name
    from scoreviz.ui.training_runner import is_training, start_training

    ss = st.session_state
    queue = ss.get(QUEUE_KEY) or []
    if queue and not is_training():
        config = queue.pop(0)
        # reruns at once if the server already has it
        start_training(config, model_name(config))  # the name F5 gives it back
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
