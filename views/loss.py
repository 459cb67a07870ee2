"""Loss vs t: the trained model's DSM loss per noise level against its exact floor, why
lambda(t) = sigma_t^2 balances the noise levels, and the training loss history."""

import streamlit as st

from scoreviz.figures.loss import loss_figure, weighting_floor_figure
from scoreviz.figures.training import loss_curve_figure
from scoreviz.losses import WEIGHTINGS
from scoreviz.pipelines import LossSettings
from scoreviz.ui import cache, charts, controls, keys, links
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.models import active_score_model, current_selection
from scoreviz.ui.widgets import active_model_header

sel = current_selection()
st.title("Loss vs t: read a loss against its floor")
st.caption("Only the excess of the DSM loss above its exact floor $L^*(t)$ can be learned.")
name, model = active_score_model(sel)  # announced below the figure
problem = cache.problem_of(sel, name, model)

# The exact floor curves evaluate tr Cov[x0 | x_t] for every QMC point (1,024 per t, at ~100 t)
# against every component: ~10^5 x K pairs, ~1 minute on the 2-core box at K = 2,000 (an upload
# merged to MAX_COMPONENTS), ~1 s at the largest built-in (376). Above FLOOR_MAX_COMPONENTS the
# curves are computed only on request; the binned view then uses the exact score's own loss on
# the same samples as its floor (a Monte Carlo estimate of it; the excess is a paired difference).
FLOOR_MAX_COMPONENTS = 400
K = sel.dist.n_components
floors_key = keys.loss_floors(sel.dist_key)
exact_floors = K <= FLOOR_MAX_COMPONENTS or st.session_state.get(floors_key, False)


def ask_exact_floors(where: str) -> None:
    """Explain why the exact floor curves are not drawn yet, with a button that draws them."""
    st.info(
        f"This distribution has {K:,} components: its exact floor curves take about "
        f"{K / 2000:.1f} min to compute here, so they are drawn on request. {where}"
    )
    if st.button("Compute the exact floor curves", key=f"floors_btn_{where[:12]}"):
        st.session_state[floors_key] = True
        st.rerun()


@links.fragment
def loss_view() -> None:
    trained = "sigma2" if model is None else model.config.weighting
    other = "one" if trained != "one" else "sigma2"
    c1, c2, c3 = st.columns([3, 1, 1])
    first = "the model was trained with the first" if model is not None else "exact score"
    spec = controls.LOSS_WEIGHTINGS
    ws = controls.draw(spec, c1, label=f"{spec.label} ({first})", default=[trained, other])
    n_bins = controls.draw(controls.LOSS_BINS, c2)
    per_bin = controls.draw(controls.LOSS_PER_BIN, c3)
    if not ws:
        st.info("Pick at least one weighting.")
        return
    with friendly_errors("The loss-vs-t view"):
        settings = LossSettings(tuple(ws), n_bins, per_bin, sel.seed, exact_floors)
        view = cache.loss_view(problem, settings)
        charts.draw_figure(loss_figure(view, settings.weightings), key="loss_main")
    who = "the model's" if model is not None else "the exact score's"
    st.caption(
        f"Top: {who} loss on fresh samples, per t bin (± one standard error), and the exact "
        "floor; open circles: the exact score's own loss on the same samples, which sits on the "
        "floor. Bottom: the excess over the floor, beside the same quantity computed directly "
        "against the exact score. The true excess is never negative, but each point is a "
        "Monte Carlo estimate: the shaded band is ±2 standard errors of it (from the spread of "
        "the per-sample losses), so points below 0 inside their band are noise, not a model "
        "beating the floor. More samples per bin narrow the band. Only the excess can be "
        "learned; a loss curve that flattens on its floor is done."
    )
    if not exact_floors:
        ask_exact_floors(
            "Meanwhile the floor line is the exact score's loss on the same samples (Monte "
            "Carlo), and the excess is the model's loss minus it."
        )


loss_view()
active_model_header(sel, "the model's loss per t")

st.markdown(
    "The training loss at time $t$ is\n"
    "$L(t) = \\lambda(t)\\,\\mathbb{E}\\lVert s_\\theta(x_t, t) + \\varepsilon/\\sigma_t\\rVert^2$."
    " Even the exact score cannot reach 0: the target $-\\varepsilon/\\sigma_t$ is noisy, and"
    " what cannot be predicted from $x_t$ is exactly known for a Gaussian mixture:"
)
st.latex(
    r"L^*(t) = \lambda(t)\,\frac{\alpha_t^2}{\sigma_t^4}\,"
    r"\mathbb{E}\,\mathrm{tr}\,\mathrm{Cov}[x_0 \mid x_t], \qquad "
    r"L(t) - L^*(t) = \lambda(t)\,\mathbb{E}\lVert s_\theta(x_t,t) - \nabla\log p_t(x_t)\rVert^2 ."
)
st.subheader("Why λ(t) = σ_t² balances the noise levels")
if not exact_floors:
    ask_exact_floors("The comparison of the weightings below needs them.")
else:
    with friendly_errors("The weighting comparison"):
        floors = cache.weighting_floors(problem.exact())
        charts.draw_figure(
            weighting_floor_figure(floors, WEIGHTINGS), main=False, key="loss_weightings_fig"
        )
st.caption(
    "The exact floor of each weighting against σ_t (both axes log). With λ = 1 the target "
    "$-\\varepsilon/\\sigma_t$ has size $1/\\sigma_t$, so the unavoidable part alone grows like "
    "$2/\\sigma_t^2$: thousands at σ = 0.01. The average loss, and its gradients, are then "
    "dominated by the few smallest noise levels, where nothing more can be learned. With "
    "λ = σ² the loss is the ε-prediction error $\\lVert\\hat\\varepsilon - \\varepsilon\\rVert^2$, "
    "bounded by $\\mathbb{E}\\lVert\\varepsilon\\rVert^2 = 2$ at every t: all noise levels count "
    "alike. λ = σ⁴/α² is the x₀-MSE $\\lVert\\hat x_0 - x_0\\rVert^2$ (Tweedie: "
    "$\\hat x_0 - x_0 = \\tfrac{\\sigma^2}{\\alpha}(s + \\varepsilon/\\sigma)$). Min-SNR-5 "
    "(Hang et al. 2023) weights that x₀-MSE by min(SNR, 5): "
    "$\\lambda = \\tfrac{\\sigma^4}{\\alpha^2}\\min(\\mathrm{SNR}, 5) = "
    "\\min(\\sigma^2, 5\\sigma^4/\\alpha^2)$, the ε-MSE at high noise (SNR ≤ 5) and 5× the x₀-MSE "
    "at low noise."
)

if model is not None:
    st.subheader("Training history")
    with friendly_errors("The training history"):
        w = model.config.weighting
        floor = None
        if exact_floors:
            floor = cache.mean_loss_floor(
                problem.exact(), w, model.model.dae_t, model.config.time_sampling
            )
        charts.draw_figure(
            loss_curve_figure(model.history, floor=floor, title=None), main=False, key="loss_hist"
        )
    st.caption(
        f"Training loss per step under {WEIGHTINGS[model.config.weighting]}, and its exact "
        "floor averaged over the training times: the expected loss can approach it, never pass "
        "it (a single noisy batch can dip below it)."
    )
