"""Guidance: classifier-free guidance with the learned and the exact scores, from the same seeds,
beside the tilted density p(x|c)^w p(x)^(1-w) that even exact guidance does not sample.

Projector-first: title, the formula line, the controls and the three panels come first; the
mode weights and the curve over w, the model notice and the prose follow below.
"""

import streamlit as st

from scoreviz.pipelines import W_STOPS, GuidanceSettings
from scoreviz.training import default_conditional, model_name
from scoreviz.ui import cache, charts, controls, links, prefetch
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.models import conditional_score_model, current_selection
from scoreviz.ui.training_runner import is_training
from scoreviz.ui.widgets import model_caption, train_default_button

sel = current_selection()
name, model = conditional_score_model(sel)
problem = cache.problem_of(sel, name, model)
names = sel.dist.class_names
st.title("Guidance")
st.markdown(
    "**s = s_u + w (s_c − s_u)** = ∇ log [p_t(x|c)^w p_t(x)^(1−w)]: w = 0 unconditional, "
    "w = 1 conditional, w > 1 guided. Papers that write s_c + w′(s_c − s_u) use **w′ = w − 1** "
    "(their “1 + w′” is this w)."
)


def _class_options() -> dict[str, str]:
    return {str(i): n for i, n in enumerate(names)}


@links.fragment
def guidance_page() -> None:
    if sel.dist.n_classes < 2:
        st.info(
            "This data has no labels (an upload or a drawing is one class), so there is no class "
            "to guide towards. Choose a built-in distribution in the sidebar: each has classes.",
            icon=":material/info:",
        )
        return
    options = _class_options()
    key = controls.GUIDE_CLASS.key
    if key in st.session_state and st.session_state[key] not in options:
        st.session_state[key] = "0"  # a link's (or other data's) class this data lacks
    c1, c2, c3 = st.columns([2, 4, 3], vertical_alignment="bottom")
    c = int(controls.draw(controls.GUIDE_CLASS, c1, options=options))
    w = float(controls.draw(controls.GUIDE_W, c2))
    sampler = controls.draw(controls.GUIDE_SAMPLER, c3)  # a select: one row, like the others
    settings = GuidanceSettings(c, w, sampler, seed=sel.seed)
    with friendly_errors("The guidance view"):
        samples_fig, shares_fig = cache.guidance_figures_at(problem, settings)
        charts.draw_figure(samples_fig, key="guidance")
        view = cache.guidance_view(problem, settings)
        st.caption(
            f"Exact guided samples vs the tilted density's: energy distance "
            f"{view.energy:.3g}, {view.ratio:.1f}× the two-sample floor ({view.floor:.2g}); "
            f"share of “{names[c]}”: guided {view.exact_shares[c]:.1%}, tilted "
            f"{view.tilted_shares[c]:.1%}."
        )
        left, right = st.columns(2)
        with left:
            charts.draw_figure(shares_fig, main=False, key="guidance_shares")
        with right:
            charts.draw_figure(
                cache.guidance_curve_figure(problem.exact(), c, w), main=False, key="guidance_w"
            )
        prefetch.warm_stops("guide_w", W_STOPS, w, cache.warm_guidance, problem, c, sampler)


guidance_page()

if sel.dist.n_classes >= 2:
    if model is not None:
        st.caption(f"Conditional model “{name}”: {model_caption(model)}.")
    else:
        config = default_conditional(sel.dist_key, sel.process_key, sel.seed)
        st.info(
            "The active model is not class-conditional (or there is none for this data), so the "
            "learned panel is empty: guidance needs s(x, t, c) and s(x, t) from one network. "
            + ("A model is training now; it appears here when done." if is_training() else
               "Train the default conditional model here, or switch on **Class-conditional** "
               "on the Train page."),
            icon=":material/info:",
        )  # fmt: skip
        train_default_button(
            sel, key="guidance", label="Train the conditional model", config=config
        )
        st.caption(f"It will be called “{model_name(config)}”.")

st.markdown(
    "**What to look for.** The third panel is the *tilted density* q_w ∝ p(x|c)^w p(x)^(1−w), "
    "the distribution guidance is often said to sample. At t = 0 the guided score is exactly "
    "its score, but at t > 0 it is the score of p_t(x|c)^w p_t(x)^(1−w), which is *not* q_w "
    "noised: so even the exact guided score samples something else. For 0 < w < 1 guidance is "
    "weak while the noise is large and samples leak into other classes (the tilted density has "
    "almost none there); for w > 1 the samples crowd into the class's densest parts, sharper "
    "than q_w. The chart on the right measures the gap over w (energy distance over its "
    "two-sample floor: ~1 means indistinguishable), for the stochastic DDPM sampler and the "
    "deterministic DDIM one, which differ under guidance although they agree without it."
)
