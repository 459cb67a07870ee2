"""DAE reconstructions: noisy points -> denoised, by the multi-scale model, a one-sigma DAE and
the exact E[x0 | x~]; and the reconstruction error of each against sigma."""

import streamlit as st

from scoreviz.figures.dae import dae_error_figure
from scoreviz.pipelines import DaeSettings, dae_error_points, denoiser_kinds
from scoreviz.stops import nearest, sigma_stops
from scoreviz.training import model_name
from scoreviz.ui import cache, charts, controls, keys, links, prefetch
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.models import active_score_model, add_model, current_selection, matching_models
from scoreviz.ui.widgets import active_model_header

sel = current_selection()
st.title("DAE reconstructions")
st.caption("One noise level or all of them: $\\tilde x \\to D(\\tilde x)$, exact thin, on top.")
options = sigma_stops(sel.process)
TRAINED_NOTE = keys.DAE_TRAINED


def near(value: float) -> float:
    """The σ stop nearest to `value`."""
    return nearest(options, value, log=True)


name, model = active_score_model(sel)  # announced below the figure
daes = dict(list(matching_models(sel, "dae").items())[-3:])
models = ({name: model} if model is not None else {}) | daes
problem = cache.problem_of(sel).with_models(models)


@links.fragment
def reconstruction_view() -> None:
    c1, c2, c3 = st.columns([3, 1, 2])
    lo, hi = controls.draw(controls.DAE_SIGMAS, c1, sel.process)
    n = controls.draw(controls.DAE_POINTS, c2)
    hidden = c3.multiselect("Hide denoisers", list(denoiser_kinds(problem)), key="dae_hidden")
    with friendly_errors("The reconstruction view"):
        settings = DaeSettings(cache.dae_sigmas(lo, hi), n, sel.seed)
        fig = cache.dae_figure(problem, settings, tuple(hidden))
        charts.draw_figure(fig, key="dae_main")
        # the next position of the thumb just moved, built while the browser draws this one
        memory = controls.DAE_SIGMAS.session_key(sel.process_key)
        prefetch.warm_range(memory, options, (lo, hi), cache.warm_dae, problem, n, sel.seed,
                            tuple(hidden))  # fmt: skip
    st.caption(
        "Grey: clean $x_0$; light blue: noisy $\\tilde x$; arrows $\\tilde x \\to D(\\tilde x)$, "
        "the exact one thin on top of the learned ones. "
        "**Small σ**: local detail, each point moves a little onto the nearby data. "
        "**Medium σ**: global shape, points are sent to the mode they most likely came from. "
        "**Large σ**: basically the mean, every arrow ends near $\\mathbb{E}[x_0]$. "
        "A network's $D = (\\tilde x + \\sigma^2 s_\\theta)/\\alpha$ divides by α: where α ≈ 0 "
        "(the top of a VP schedule) any error in $s_\\theta$ is blown up, and arrows that would "
        "leave a panel are cut at its frame (the panel says how many)."
    )


reconstruction_view()

active_model_header(sel, "the learned denoiser", prefix="Multi-scale model")
if not daes:
    st.caption("No classical DAE for this distribution and process yet: train one below.")
with st.expander("Train a classical DAE at one σ (a few seconds)"):
    note = st.session_state.pop(TRAINED_NOTE, None)
    if note:
        st.success(note)
    c1, c2 = st.columns(2)
    dae_sigma = c1.select_slider(
        "Its noise level σ",
        options,
        value=near(0.5),
        format_func="{:.3g}".format,
        key=f"dae_train_sigma_{sel.process_key}",
    )
    steps = c2.slider("Training steps", 200, 3000, 1000, step=100, key="dae_train_steps")
    if st.button("Train the DAE", type="primary", key="dae_train"):
        bar = st.progress(0.0, text="Training the DAE…")
        with friendly_errors("Training the DAE"):
            result = cache.train_dae(
                cache.problem_of(sel), dae_sigma, steps, sel.seed, lambda f: bar.progress(f)
            )
            label = model_name(result.config)  # as a link reopened after F5 names it
            add_model(label, result, activate=False)
            st.session_state[TRAINED_NOTE] = f"DAE at σ = {dae_sigma:.3g} trained."
        if TRAINED_NOTE in st.session_state:
            st.rerun()  # the figure above was drawn before it existed

st.markdown(
    "Corrupt clean points, $\\tilde x = \\alpha\\, x_0 + \\sigma\\,\\varepsilon$ (the sidebar's "
    "process at the $t$ with $\\sigma_t = \\sigma$), and let a denoiser $D$ reconstruct them. "
    "The best possible one is $D^*(\\tilde x) = \\mathbb{E}[x_0 \\mid \\tilde x]$, and it *is* "
    "the score: "
    "$\\nabla \\log p_\\sigma(\\tilde x) = (\\alpha D^*(\\tilde x) - \\tilde x)/\\sigma^2$. "
    "A classical DAE learns $D$ at **one** σ; a diffusion model is a DAE for **every** σ."
)

st.subheader("Reconstruction error against σ")
with friendly_errors("The reconstruction-error curve"):
    view = cache.dae_error(problem, n=dae_error_points(sel.dist), seed=sel.seed)
    charts.draw_figure(dae_error_figure(view), main=False, key="dae_error")
st.caption(
    "$\\mathbb{E}\\lVert D(\\tilde x) - x_0\\rVert^2$ on fresh points at each σ. The exact "
    "denoiser reaches the irreducible MMSE $\\mathbb{E}\\,\\mathrm{tr}\\,\\mathrm{Cov}[x_0 \\mid "
    "\\tilde x]$, which no network can beat. A classical DAE is close to it only near its own σ "
    "(dotted line): below, it over-smooths; above, it under-denoises. The multi-scale model "
    "follows the MMSE at every σ. Guides: keeping $\\tilde x/\\alpha$ costs $2\\sigma^2/\\alpha^2$ "
    "(all that is left at small σ); predicting the mean costs $\\mathrm{tr}\\,\\mathrm{Cov}[x_0]$ "
    "(the large-σ limit)."
)
