"""Data & forward process: samples, noised samples over the exact p_t, schedule, animation."""

import streamlit as st

from scoreviz.figures.forward import (
    forward_animation_figure,
)
from scoreviz.forward import KL_THRESHOLD
from scoreviz.pipelines import ForwardSettings
from scoreviz.stops import t_stops
from scoreviz.text import escape
from scoreviz.ui import cache, charts, controls, links, prefetch
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.exports import export_menu
from scoreviz.ui.models import current_selection
from scoreviz.ui.widgets import schedule_metrics

N_POINTS = 600
GRID = 120  # exact p_t on 120 x 120 points
GRID_DATA = 80  # exact p_0 beside it (drawn smoothly)
PRIOR_PAIRS = 2**22  # the prior check's Monte Carlo: points x components, at most 8,192 points

sel = current_selection()
proc = sel.process
problem = cache.problem_of(sel)
st.title("Data & forward process")
st.caption(
    f"{escape(sel.dist_label)} noised by {proc.label}: "
    r"$x_t = \alpha_t x_0 + \sigma_t \varepsilon$, $\varepsilon \sim \mathcal N(0, I)$, over "
    "the exact density $p_t$."
)


@links.fragment
def noised_view() -> None:
    t = controls.draw(controls.FORWARD_T, process=proc)
    with friendly_errors("The noised samples"):
        settings = ForwardSettings(t, N_POINTS, GRID, GRID_DATA, sel.seed)
        # built once per server; the main chart goes out before the next figure is built
        charts.draw_figure(cache.forward_pair(problem, settings), key="forward_pair")
        schedule_metrics(proc, t)
        schedule = cache.forward_schedule(problem, settings.t)
        charts.draw_figure(schedule, main=False, key="forward_schedule")
        # the next t stop, built while the browser draws this one
        prefetch.warm_stops("forward_t", t_stops(proc), t, cache.warm_forward, problem,
                            N_POINTS, GRID, GRID_DATA, sel.seed)  # fmt: skip
        if pm is not None:
            st.caption(
                f"Prior check: α₁ = {pm.alpha_1:.3g}, KL(p₁ ‖ N(0, {pm.sigma_1:.3g}²I)) ≈ "
                f"{pm.kl:.2g} nats (Monte Carlo with the exact log p₁). Samplers start from "
                "that prior, so it must match p₁."
            )


pm = None
with friendly_errors("The prior check"):
    pm = cache.prior_check(problem, PRIOR_PAIRS)

noised_view()

if pm is not None and pm.mismatched:
    st.warning(
        f"This schedule does not reach noise at t = 1: α₁ = {pm.alpha_1:.3g}, σ₁ = "
        f"{pm.sigma_1:.3g}, and KL(p₁ ‖ prior) ≈ {pm.kl:.3f} nats (> {KL_THRESHOLD}). "
        "Samplers start from the prior N(0, σ₁²I), which is not p₁, so their samples "
        "start off and may end off. Use a larger σ_max / β_max.",
        icon=":material/warning:",
    )
st.markdown(
    f"**{escape(sel.dist_label)}** noised by **{proc.label}**: "
    r"$x_t = \alpha_t x_0 + \sigma_t \varepsilon$, $\varepsilon \sim \mathcal N(0, I)$. "
    "The background is the *exact* density $p_t$ of $x_t$ (a Gaussian mixture at every t)."
)

st.subheader("Forward diffusion, animated")
st.caption(
    "The same particles from t = 0 (data) to t = 1: press Play, or drag the frame slider. "
    "Each particle moves along α_t x₀ + σ_t ε with its own fixed ε."
)
with friendly_errors("The animation"):
    fig = forward_animation_figure(cache.animation(problem, 26, 600, sel.seed))
    charts.draw_figure(fig, main=False, key="forward_anim")
    export_menu(fig, "forward_animation", animated=True, key="forward_anim")
