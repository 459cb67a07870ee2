"""The shared sidebar, drawn on every page by app.py: distribution, noise process, seed (kept
across pages), presentation mode, the scene picker, the active model and a running training.

Widget-bound keys (`keys.DISTRIBUTION`, `keys.ACTIVE_MODEL`) cannot be assigned after their
widget was drawn in a run; pages call `keys.request_distribution` / `models.set_active_model`,
which park the value (`keys.set_widget`) and it is applied here, before the widget, on the next
run.
"""

from __future__ import annotations

import re

import streamlit as st

from scoreviz.distributions import distribution_labels
from scoreviz.processes import process_labels
from scoreviz.text import code_span
from scoreviz.ui import keys, present, scenes
from scoreviz.ui.models import SKETCH_KINDS, Selection, current_selection, session_sketch
from scoreviz.ui.training_runner import sidebar_status


def _dist_options() -> dict[str, str]:
    opts = dict(distribution_labels())
    up = st.session_state.get(keys.UPLOAD)
    if up is not None:
        opts["upload"] = f"Uploaded: {up.name} ({up.n_points} points)"
    for kind in SKETCH_KINDS:  # drawn and typed data (the Train page's canvas and text box)
        own = session_sketch(kind)
        if own is not None:
            opts[kind] = own.option
    return opts


def sidebar() -> Selection:
    """Render the shared sidebar (distribution, process, seed, presentation mode, scenes, active
    model, a running training's progress); return the choice."""
    keys.init_state()
    ss = st.session_state
    keys.apply_pending(keys.DISTRIBUTION, keys.ACTIVE_MODEL)
    with st.sidebar:
        scenes.card(ss.get(keys.PAGE, ""), in_sidebar=True)  # outside presentation mode
        st.markdown("### Shared settings")
        opts = _dist_options()
        if ss[keys.DISTRIBUTION] not in opts:
            ss[keys.DISTRIBUTION] = keys.DEFAULT_DISTRIBUTION
        st.selectbox("Distribution", list(opts), format_func=opts.get, key=keys.DISTRIBUTION)
        procs = process_labels()
        st.selectbox("Noise process", list(procs), format_func=procs.get, key=keys.PROCESS)
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key=keys.SEED)
        present.toggle()
        scenes.picker()
        names = list(ss[keys.MODELS])
        if names:
            if ss[keys.ACTIVE_MODEL] not in names:
                ss[keys.ACTIVE_MODEL] = names[-1]
            st.selectbox(
                "Active model",
                names,
                key=keys.ACTIVE_MODEL,
                format_func=sidebar_name,
                help="Its full name: " + code_span(ss[keys.ACTIVE_MODEL]),  # tooltips are markdown
            )
            quality = getattr(ss[keys.MODELS][ss[keys.ACTIVE_MODEL]], "quality", None)
            if quality is not None:
                st.caption(quality.summary())
        else:
            st.caption("No trained model yet: open **Train** (or press the button on Home).")
        sidebar_status()
    return current_selection()


def sidebar_name(name: str, limit: int = 36) -> str:
    """A model's name as the narrow sidebar shows it (the full one is in its help): without id
    hashes, "seed N" (the seed is in the sidebar) and parentheses, process keys shortened, at
    most `limit` characters, own data by its source ("typed:<hash>" -> "typed").
    "default · Eight Gaussians (ring) · vp_linear · seed 0" -> "default · Eight Gaussians · VP"."""
    short = {"vp_linear": "VP", "vp_cosine": "VP cos", "sub_vp": "sub-VP", "ve": "VE"}
    parts = [re.sub(r"\s*\([^)]*\)", "", p).strip() for p in name.split(" · ")]
    parts = [short.get(p, re.sub(r"^(upload|drawn|typed):[0-9a-f]{16}$", r"\1", p)) for p in parts]
    kept = [p for p in parts if p and not re.fullmatch(r"seed \d+|[0-9a-f]{4,12}", p)]
    out = " · ".join(kept) or name
    return out if len(out) <= limit else out[: limit - 1] + "…"
