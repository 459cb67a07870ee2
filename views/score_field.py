"""Score field: the learned score as arrows beside the exact score, their difference and error.

Projector-first: title, one line, the controls and the field figure come first; the model's
caption (or the no-model notice), the error figure and the prose follow below.
"""

import streamlit as st

from scoreviz.stops import t_stops
from scoreviz.ui import cache, charts, controls, links, prefetch
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.models import current_selection, field_model
from scoreviz.ui.widgets import active_model_header, model_caption

sel = current_selection()
name, model = field_model(sel)
problem = cache.problem_of(sel, name, model)
proc = problem.process
dae_t = None if model is None else model.model.dae_t
st.title("Score field")


@links.fragment
def field_view() -> None:
    c1, c2, c3, c4, c5 = st.columns([5, 2, 2, 2, 2], vertical_alignment="bottom")
    t = controls.draw(controls.FIELD_T, c1, proc, default=0.1 if dae_t is None else dae_t)
    n_arrows = controls.draw(controls.FIELD_ARROWS, c2)
    velocity = controls.draw(controls.FIELD_VELOCITY, c5)
    scaled = controls.draw(controls.FIELD_SCALED, c3, disabled=velocity)
    overlay = controls.draw(controls.FIELD_OVERLAY, c4, disabled=model is None or velocity)
    if velocity:
        velocity_view(t, n_arrows)
        return
    with friendly_errors("The score field"):
        tk, both = cache.tkey(t), overlay and model is not None
        # built once per server; the main chart goes out before the next figure is built
        charts.draw_figure(cache.field_figure(problem, tk, n_arrows, scaled, both), key="field")
        if problem.model is not None:
            field = cache.score_field(problem, tk, n_arrows).field
            st.markdown(
                f"**Mean error** σ²‖s_θ − ∇log p_t‖² at this t: `{field.weighted_error:.3g}` "
                f"where the noisy data lands (weighted by p_t), `{field.mean_error:.3g}` over "
                "the whole square (empty corners, which training rarely sees, count too). "
                "0 would be perfect; the factor σ² makes noise levels comparable."
            )
            diff_fig = cache.difference_figure(problem, tk, n_arrows, scaled)
            charts.draw_figure(diff_fig, main=False, key="diff")
        # the next t stop, built while the browser draws this one
        prefetch.warm_stops("field_t", t_stops(proc), t, cache.warm_field, problem, n_arrows,
                            scaled, both)  # fmt: skip


def velocity_view(t: float, n_arrows: int) -> None:
    """The velocity view: learned v̂ beside the exact v, and their mean squared gap under p_t."""
    with friendly_errors("The velocity field"):
        tk = cache.tkey(t)
        charts.draw_figure(cache.velocity_figure(problem, tk, n_arrows), key="velocity")
        view = cache.velocity_field(problem, tk, n_arrows)
        if view.error is not None:
            st.markdown(
                f"**Mean error** ‖v̂ − v‖² at this t, where the noisy data lands (weighted by "
                f"p_t): `{view.error:.3g}`. v = E[ε − x₀ | x_t] is the same object as the score "
                "(v = −σ_t s − (x_t + σ_t² s)/α_t): a Gaussian source makes flow matching and "
                "score matching one model read two ways."
            )
        if view.coupling == "ot":
            st.info(
                "This model was trained with **minibatch optimal-transport pairing**: it learns "
                "another field, with straighter paths and the same endpoints, which has no "
                "closed form. The exact panel is the **independent** pairing's velocity."
            )


field_view()

if model is not None and name == sel.model_name:  # the active model, for this data
    st.caption("Active model: " + model_caption(model))
else:
    active_model_header(sel, "the learned score")
if dae_t is not None:
    st.info(
        f"This is a classical DAE: it only knows one noise level (σ = "
        f"{model.config.model.dae_sigma:g}, t ≈ {dae_t:.2f}) and draws the same field at "
        "every t. Compare it with the exact score at its own t."
    )
st.markdown(
    "Arrows show where the score $\\nabla \\log p_t(x)$ points: towards more probable "
    "$x_t$. Left: what the network learned, $s_\\theta(x, t)$; right: the exact score of the "
    "mixture. Both use one arrow scale, over the exact density $p_t$. With **σ_t·score** on, "
    "the arrows show $\\sigma_t \\nabla\\log p_t = -\\mathbb{E}[\\varepsilon \\mid x_t]$, "
    "rescaled at each t; off, the raw score on one scale for every t: it grows like "
    "$1/\\sigma_t$ as $t \\to 0$, which is why networks are trained to predict the scaled one."
)
