"""Small widgets shared by several pages: live schedule numbers, the "no model" notice, the
default model's Train button, a model's caption. (A page's settings are `controls`.)

if sel.model is None:
    no_model_notice("the learned score")        # st.info + link to Train, never a failure
"""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from scoreviz import training
from scoreviz.costs import PACE, minutes
from scoreviz.data_io import is_custom_key
from scoreviz.forward import schedule_at
from scoreviz.processes import NoiseProcess
from scoreviz.text import escape
from scoreviz.training import model_name
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.models import Selection, active_score_model, current_selection, mismatch_note
from scoreviz.ui.training_runner import is_training, start_training

TRAIN_PAGE = "views/train.py"


def schedule_metrics(process: NoiseProcess, t: float) -> None:
    """σ_t, α_t and SNR at t as a row of st.metric (they update with the slider)."""
    s = schedule_at(process, t)
    cols = st.columns(4)
    cols[0].metric("t", f"{t:.3g}")
    cols[1].metric("σ_t (noise)", f"{s['sigma']:.3g}")
    cols[2].metric("α_t (signal)", f"{s['alpha']:.3g}")
    snr = s["snr"]
    cols[3].metric("SNR = α²/σ²", f"{snr:.3g}", help=f"log₁₀ SNR = {_log10(snr):.2f}")


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 and np.isfinite(x) else float("nan")


def no_model_notice(what: str = "the learned quantities", sel=None) -> None:
    """The one behaviour of every page without a model for the sidebar's data and process: the
    exact answer is shown, with this notice and a button that trains the default model in place
    (the page shows it when it is done)."""
    if is_training():
        todo = "A model is training now (progress in the sidebar); it appears here when done."
    else:
        todo = "Train the default model for this data here, or choose settings on **Train**."
    st.info(
        f"No trained model yet for this data and process, so {what} cannot be shown: below is "
        f"the exact ground truth only. {todo}",
        icon=":material/info:",
    )
    left, right = st.columns([1, 1])
    with left:
        train_default_button(sel or current_selection(), key="no_model")
    with right:
        st.page_link(TRAIN_PAGE, label="Other settings: Train", icon=":material/model_training:")


def default_config(sel: Selection) -> training.TrainConfig:
    """The default TrainConfig for the sidebar's data, process and seed."""
    return training.TrainConfig(distribution=sel.dist_key, process=sel.process_key, seed=sel.seed)


def train_default_button(sel, key: str, label: str | None = None, config=None) -> None:
    """A primary button that trains the default model for the sidebar's choice (the server's
    shared cache answers at once if someone trained it already). Without a label it reads
    "Train for this data (~N s)"; the estimate is always in its help. `config`: other settings
    to train instead (the default conditional model, for Guidance)."""
    config = config or default_config(sel)
    took = f"~{minutes(PACE.seconds(config))}"  # measured on this machine (costs.Pace)
    text = label or f"Train for this data ({took})"
    tip = f"The default settings, {config.steps:,} steps: about {took} on this server."
    if st.button(
        text, type="primary", disabled=is_training(), key=f"train_default_{key}", help=tip
    ):
        with friendly_errors("Training"):
            dist = sel.dist if is_custom_key(sel.dist_key) else None
            start_training(config, model_name(config), dist=dist)  # the name F5 gives back


def model_caption(result) -> str:
    """One line describing a TrainResult (markdown, user text escaped: for captions)."""
    cfg = result.config
    m = cfg.model
    kind = (
        f"DAE at σ = {m.dae_sigma:g}" if m.kind == "dae" else f"score model ({m.parameterization})"
    )
    data = "infinite data" if cfg.n_train is None else f"{cfg.n_train} training points"
    stopped = ", stopped early" if result.stopped else ""
    text = (
        f"{kind}, {m.width}×{m.depth} {m.activation}, {len(result.history)} steps{stopped}, "
        f"{data}, trained on {escape(cfg.distribution)} / {escape(cfg.process)}"
    )
    quality = getattr(result, "quality", None)
    return f"{text}. **{quality.summary()}**" if quality is not None else text


def active_model_header(sel, needed_for: str, prefix: str = "Model"):
    """(name, TrainResult) of the model an analysis page compares with (`active_score_model`),
    announced: its caption, or the "no model" notice (after a warning when the active model
    was trained on other data or another process). (None, None) when there is none."""
    name, model = active_score_model(sel)
    if model is None:
        note = mismatch_note(sel)
        if note:
            st.warning(note)
        no_model_notice(needed_for, sel)
    else:
        st.caption(f"{prefix} “{escape(name)}”: {model_caption(model)}.")
    return name, model
