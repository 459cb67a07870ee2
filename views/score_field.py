"""Score field: the learned score as arrows beside the exact score, their difference and error."""

import streamlit as st

from scoreviz.figures.fields import field_figures
from scoreviz.pipelines import ground_truth
from scoreviz.text import escape
from scoreviz.ui import cache
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.state import current_selection
from scoreviz.ui.widgets import model_caption, no_model_notice, t_slider

sel = current_selection()
model = sel.model
st.title("Score field")
st.markdown(
    "Arrows show where the score $\\nabla \\log p_t(x)$ points: towards more probable "
    "$x_t$. Left: what the network learned, $s_\\theta(x, t)$; right: the exact score of the "
    "mixture. Both use one arrow scale, over the exact density $p_t$."
)
if model is None:
    no_model_notice("the learned score")
truth = ground_truth(cache.problem_of(sel, sel.model_name, model))
problem, proc = truth.problem, truth.problem.process
if truth.upload_missing:
    st.warning(
        "The active model was trained on uploaded data that is not in this session; "
        "it is compared with the sidebar's distribution instead."
    )
if truth.moved:
    st.caption(
        f"Showing the active model's own setting ({escape(problem.dist_key)} / "
        f"{escape(problem.process_key)}), not the sidebar's: a model is compared with the truth "
        "it was trained for."
    )
dae_t = None if model is None else model.model.dae_t
if model is not None:
    st.caption("Active model: " + model_caption(model))
if dae_t is not None:
    st.info(
        f"This is a classical DAE: it only knows one noise level (σ = "
        f"{model.config.model.dae_sigma:g}, t ≈ {dae_t:.2f}) and draws the same field at "
        "every t. Compare it with the exact score at its own t."
    )


@st.fragment
def field_view() -> None:
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    with c1:
        t = t_slider(proc, key="field_t", default=0.1 if dae_t is None else dae_t)
    with c2:
        scaled = st.toggle(
            "Show σ_t·score",
            value=True,
            key="field_scaled",
            help="σ_t·score = −E[ε | x_t] stays of order 1 at every noise level, so arrows "
            "stay readable; the raw score grows like 1/σ_t as t → 0.",
        )
    with friendly_errors("The score field"):
        view = cache.score_field(problem, cache.tkey(t))
        field_fig, diff_fig = field_figures(view, scaled)
        st.plotly_chart(field_fig, width="stretch", key="field")
        if diff_fig is not None:
            field = view.field
            st.markdown(
                f"**Mean error** σ²‖s_θ − ∇log p_t‖² at this t: `{field.weighted_error:.3g}` "
                f"where the noisy data lands (weighted by p_t), `{field.mean_error:.3g}` over "
                "the whole square (empty corners, which training rarely sees, count too). "
                "0 would be perfect; the factor σ² makes noise levels comparable."
            )
            st.plotly_chart(diff_fig, width="stretch", key="diff")


field_view()
