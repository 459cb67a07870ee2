"""Train: settings form -> background training with live loss and Stop; models; data you draw,
type or upload; export."""

import pandas as pd
import streamlit as st
from streamlit_drawable_canvas import st_canvas  # registered at import: only in a running app

from scoreviz.couplings import COUPLINGS
from scoreviz.data_io import is_custom_key
from scoreviz.errors import ConfigError
from scoreviz.figures.training import loss_curve_figure
from scoreviz.losses import WEIGHTING_HELP, WEIGHTINGS
from scoreviz.models import ACTIVATIONS, KINDS, PARAMETERIZATIONS, ModelConfig
from scoreviz.problem import Problem
from scoreviz.quality import N_SEEDS
from scoreviz.text import escape
from scoreviz.training import (
    LABEL_DROPOUT,
    MAX_N_TRAIN,
    TIME_SAMPLINGS,
    TrainConfig,
    conditional,
    continuation,
)
from scoreviz.ui import cache, controls, keys
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.models import MAX_MODELS, current_selection, session_models
from scoreviz.ui.sketch import draw_block, word_block
from scoreviz.ui.training_runner import is_training, live_status, show_notice, start_training
from scoreviz.ui.transfer import model_transfer_block, upload_block
from scoreviz.ui.widgets import model_caption

D, DM = TrainConfig(), ModelConfig()
MAX_TOTAL_STEPS = 20_000  # a model file holds at most this many history rows (model_io.LIMITS)
LRS = sorted({1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0, 100.0, 1e6, D.lr})
WIDTHS = sorted({16, 32, 64, 128, 256, DM.width})
BATCHES = sorted({64, 128, 256, 512, 1024, 2048, D.batch_size})
EMAS = {"off": None, "0.99": 0.99, "0.995": 0.995, "0.999": 0.999}

sel = current_selection()
st.title("Train a score model")
st.markdown(
    f"Data: **{escape(sel.dist_label)}**, process: **{sel.process.label}**, seed {sel.seed} "
    "(change them in the sidebar). Training runs in the background: the other pages keep "
    "working, and **Stop** keeps the model as it is."
)


def _times_label(key: str | None) -> str:
    """The Train form's label of a time sampling; None is the process's default."""
    return TIME_SAMPLINGS.get(key, "the process's default (log σ_t; mixed on sub-VP)")


def _weighting_label(key: str | None) -> str:
    """The Train form's label of a loss weighting; None is the output's natural loss."""
    return WEIGHTINGS.get(key, "the output's own (ε-MSE; v-MSE for the velocity)")


def _form() -> TrainConfig | None:
    """The settings form; returns the config on submit (None otherwise)."""
    with st.form("train_form"):
        c1, c2, c3 = st.columns(3)
        with c1:
            st.markdown("**Model**")
            kind = st.radio("Kind", list(KINDS), format_func=KINDS.get, key="tf_kind")
            dae_sigma = st.number_input(
                "DAE noise level σ (DAE only)", 0.01, 5.0, DM.dae_sigma, 0.05, key="tf_dae_sigma"
            )
            param = st.selectbox(
                "Network output (score model)",
                list(PARAMETERIZATIONS),
                format_func=PARAMETERIZATIONS.get,
                key="tf_param",
            )
            cond = controls.draw(controls.TRAIN_CONDITIONAL)
        with c2:
            st.markdown("**Network**")
            width = st.select_slider("Width", WIDTHS, value=DM.width, key="tf_width")
            depth = st.slider("Hidden layers", 1, 6, DM.depth, key="tf_depth")
            act = st.selectbox("Activation", list(ACTIVATIONS), key="tf_act")
            weighting = st.selectbox(
                "Loss weighting λ(t)",
                [None, *WEIGHTINGS],
                format_func=_weighting_label,
                key="tf_w",
                help=" ".join(WEIGHTING_HELP.values()),
            )
            times = st.selectbox(
                "Training times t",
                [None, *TIME_SAMPLINGS],
                format_func=_times_label,
                key="tf_times",
                help="Uniform t gives the small noise levels, where thin shapes (letters, "
                "spirals) are drawn, only a few % of the samples; uniform log σ gives σ < 0.1 "
                "about half of them, mixed a quarter (sub-VP's log σ reaches 10⁻⁴, so there "
                "uniform log σ would starve the high noise).",
            )
            features = st.toggle(
                "Sinusoidal input features",
                value=DM.x_freqs > 0,
                key="tf_xfeat",
                help="sin/cos of each coordinate at 16 frequencies: how a small network draws "
                "thin shapes. Off: the raw coordinates, as a plain MLP sees them.",
            )
        with c3:
            st.markdown("**Training**")
            steps = st.number_input("Steps", 50, 20_000, D.steps, 50, key="tf_steps")
            batch = st.select_slider("Batch size", BATCHES, value=D.batch_size, key="tf_batch")
            lr = st.select_slider(
                "Learning rate", LRS, value=D.lr, format_func=lambda v: f"{v:g}", key="tf_lr"
            )
            n_train = st.number_input(
                "Training points (0 = infinite data: fresh samples every step)",
                0,
                MAX_N_TRAIN,
                0 if D.n_train is None else D.n_train,
                50,
                key="tf_n",
                help="A small fixed set (e.g. 50) shows memorisation: the network learns the "
                "score of the empirical distribution, not of the true one.",
            )
            ema = st.selectbox("EMA of weights", list(EMAS), key="tf_ema")
            coupling = st.selectbox(
                "Pairing of x₀ and ε",
                list(COUPLINGS),
                format_func=COUPLINGS.get,
                key="tf_coupling",
                help="Independent: every noise is drawn apart from its data point (the exact "
                "score's and velocity's setting). Minibatch optimal transport: within each "
                "batch of 256, noises go to the nearest data points (an exact assignment), so "
                "the learned flow's paths are straighter and the ODE needs fewer steps; its "
                "field has no closed form and is not p_t's score (sample it with an ODE).",
            )
        name = st.text_input("Model name (blank: automatic)", key="tf_name", max_chars=60)
        if not st.form_submit_button("Train", type="primary", key="train_submit"):
            return None
    model = ModelConfig(
        kind=kind,
        parameterization=param,
        width=int(width),
        depth=int(depth),
        activation=act,
        dae_sigma=float(dae_sigma),
        x_freqs=DM.x_freqs if features else 0,
    )
    config = TrainConfig(
        distribution=sel.dist_key,
        process=sel.process_key,
        model=model,
        weighting=weighting,
        time_sampling=times,
        steps=int(steps),
        batch_size=int(batch),
        lr=float(lr),
        n_train=int(n_train) or None,
        ema=EMAS[ema],
        seed=sel.seed,
        coupling=coupling,
    )
    if cond:
        config = _conditional(config)
    st.session_state[keys.TRAIN_NAME] = name.strip() or config.display_name(sel.dist_label)
    return config


def _conditional(config: TrainConfig) -> TrainConfig:
    """The form's config made class-conditional on the data's classes (ConfigError, shown as a
    message, where the data has none)."""
    if sel.dist.n_classes < 2:
        raise ConfigError(
            "This data has no classes (an upload or a drawing has no labels), so a conditional "
            "model has nothing to condition on: switch Class-conditional off, or choose a "
            "built-in distribution."
        )
    return conditional(config, sel.dist.n_classes, LABEL_DROPOUT)


with friendly_errors("The training settings"):
    config = _form()
    if config is not None:
        dist = sel.dist if is_custom_key(sel.dist_key) else None
        outcome = start_training(config, st.session_state[keys.TRAIN_NAME], dist=dist)
        if outcome == "busy":
            st.warning("A model is already training in this session: stop it or wait.")

live_status(show_chart=True, key="train")
show_notice()


def _verdict_and_more(res) -> None:
    """How well the active model learned, and a button that trains it longer."""
    q = res.quality
    if q is not None:
        show = {"learned well": st.success, "close": st.info}.get(q.verdict, st.warning)
        summary = q.summary()
        show(
            f"**{summary[:1].upper()}{summary[1:]}.** Nats lost: how much less likely "
            "(exact log-density) its samples are than those of the exact score with the same "
            f"sampler and seeds (the mean over {N_SEEDS} seeds); 0 is perfect."
        )
    if res.config.model.kind != "score":
        return
    more = res.config.steps
    if len(res.history) + more > MAX_TOTAL_STEPS:
        st.caption(f"Trained for {len(res.history):,} steps: the most one model can have.")
        return
    if st.button(
        f"Train longer (+{more:,} steps)",
        key="train_more",
        help="Continues from these weights and optimiser state, at a lower learning rate "
        "(a warm restart): the shape sharpens, nothing already learned is thrown away.",
    ):
        name = f"{sel.model_name} +{more:,}"
        upload = is_custom_key(res.config.distribution)
        if upload and res.config.distribution != sel.dist_key:
            st.warning("Select the data of your own this model was trained on to train it longer.")
            return
        dist = sel.dist if upload else None
        if start_training(continuation(res, more), name, dist=dist, init=res) == "busy":
            st.warning("A model is already training in this session: stop it or wait.")
        else:
            st.rerun()  # the progress bar replaces this model's chart


# ----------------------------------------------------------------------------- models
st.subheader(f"Your models (up to {MAX_MODELS} kept; the active one is used everywhere)")
models = session_models()
if not models:
    st.caption("None yet. Press **Train** above.")
else:
    rows = [
        {
            "name": n,
            "active": "✅" if n == sel.model_name else "",
            "steps": len(r.history),
            "seconds": round(r.elapsed, 1),
            "final loss": float(r.history["loss"].tail(50).mean()),
        }
        for n, r in models.items()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
if sel.model is not None and not is_training():
    res = sel.model
    with friendly_errors("The loss curve"):
        dae_t = res.model.dae_t
        floor = None
        if not is_custom_key(res.config.distribution):
            cfg = res.config
            problem = Problem.builtin(cfg.distribution, cfg.process)
            floor = cache.mean_loss_floor(problem, cfg.weighting, dae_t, cfg.time_sampling)
        fig = loss_curve_figure(
            res.history, floor=floor, title=f"Training loss of “{escape(sel.model_name)}”"
        )
        st.plotly_chart(fig, width="stretch", key="train_loss")
        st.caption(model_caption(res))
    _verdict_and_more(res)

st.divider()
st.subheader("Draw or type your data")
draw_tab, word_tab = st.tabs(["Draw", "Type a word"])
with draw_tab:
    draw_block(st_canvas)
with word_tab:
    word_block()

st.divider()
left, right = st.columns(2, gap="large")
with left:
    upload_block()
with right:
    model_transfer_block()
