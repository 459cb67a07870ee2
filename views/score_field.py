"""Score field: the learned score as arrows beside the exact score, their difference and error."""

import streamlit as st

from scoreviz.figures.fields import score_difference_figure, score_field_figure
from scoreviz.forward import view_range
from scoreviz.processes import get_process
from scoreviz.ui import cache
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.state import current_selection
from scoreviz.ui.widgets import model_caption, model_ground_truth, no_model_notice, t_slider

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
dist_key, dist, process_key = model_ground_truth(sel)
proc = get_process(process_key)
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
        field = cache.score_field(
            cache.model_key(model), model, dist_key, dist, process_key, cache.tkey(t)
        )
        xy = view_range(proc, t)
        st.plotly_chart(score_field_figure(field, xy, scaled), width="stretch", key="field")
        if field.learned is not None:
            st.markdown(
                f"**Mean error** σ²‖s_θ − ∇log p_t‖² at this t: `{field.weighted_error:.3g}` "
                f"where the noisy data lands (weighted by p_t), `{field.mean_error:.3g}` over "
                "the whole square (empty corners, which training rarely sees, count too). "
                "0 would be perfect; the factor σ² makes noise levels comparable."
            )
            st.plotly_chart(score_difference_figure(field, xy, scaled), width="stretch", key="diff")


field_view()
