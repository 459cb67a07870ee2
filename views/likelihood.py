"""Likelihood: the model's own density log p(x), from the probability-flow ODE with the exact
divergence, beside the exact log p₀ of the mixture and their difference; the NLL of held-out
exact samples against the exact entropy, and how much of the gap is the solver's, not the model's.

Projector-first: title, one line, the controls and the three heatmaps come first; the NLL table
and the explanations follow below.
"""

import streamlit as st

from scoreviz.pipelines import LikelihoodSettings
from scoreviz.ui import cache, charts, controls, links
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.models import current_selection
from scoreviz.ui.widgets import active_model_header

sel = current_selection()
st.title("Likelihood: the model's own density")
line = st.empty()
main = st.container()
name, model = active_model_header(sel, "the model's density")  # under `main`
problem = cache.problem_of(sel, name, model)
line.caption(
    "A score model is a density too: the probability-flow ODE carries each point x to the "
    "prior, and log p(x) = log prior(x₁) + ∫ div v dt. Left: the **learned** one; middle: the "
    "**exact** log p₀; right: where they differ."
)


def nll_table(view) -> str:
    """The NLL of the held-out points per density, with where each gap comes from (markdown)."""
    t = view.truth
    n = len(t.heldout)
    truth = -float(t.heldout_log_p0.mean())
    rows = [
        "| density | NLL of the held-out points | what the gap to the exact one is |",
        "| --- | ---: | --- |",
        f"| exact log p₀ (the mixture) | {truth:.3f} nats | the entropy H = {t.entropy:.3f} ± "
        f"{t.entropy_se:.3f} nats ({t.n_entropy:,} samples): these {n} points' own mean |",
        f"| ODE of the **exact** score | {t.nll_exact_ode:.3f} nats | "
        f"{t.nll_exact_ode - truth:+.4f}: t_min {t.tmin_cost:+.4f}, prior "
        f"{t.prior_cost:+.4f}, solver {-float(t.solver_error.mean()):+.4f} |",
    ]
    if view.learned is not None:
        rows.append(
            f"| ODE of **{view.name}** | {view.learned.nll:.3f} nats | "
            f"{view.model_nats:+.3f} beyond the exact score's ODE: the model's |"
        )
    return "\n".join(rows)


def notes(view) -> None:
    t = view.truth
    err = abs(t.solver_error)
    st.markdown(nll_table(view))
    timing = f"the exact score's ODE took {t.seconds:.1f} s for {len(t.heldout)} points"
    if view.learned is not None:
        g = t.grid.size
        timing += f"; the model's {view.learned.seconds:.1f} s for {g}×{g} grid points and those"
    st.caption(
        f"**Solver error** at {t.n_steps} RK4 steps: the exact score's ODE, ended at the exact "
        f"p₁, against the exact log p at t_min: mean {err.mean():.1e}, largest {err.max():.1e} "
        f"nats over the held-out points ({timing})."
    )
    with st.expander("How it is computed, and what the ends cost"):
        st.markdown(
            "The probability-flow ODE dx/dt = v(x, t) = f(t) x − ½ g(t)² s(x, t) moves p_t to "
            "p₁ without noise, so along a path d log p_t(x_t)/dt = −div v. Integrating from "
            "each x at t_min up to t = 1 gives log p(x) = log N(x₁; 0, prior) + ∫ div v dt. "
            "The divergence 2 f(t) − ½ g(t)² tr ∂s/∂x is exact (the 2×2 Jacobian by autograd, "
            "no random trace estimate); the integral is fixed-step RK4 on times "
            "t = t_min + (1 − t_min) u², u uniform, which puts short steps near t_min where the "
            "drift is stiffest.\n\n"
            f"**t_min.** The ODE starts at t_min = {t.t_min:g} (σ = {t.sigma_min:.3g}), where "
            "the samplers stop: its density is that of x_{t_min} = α x₀ + σ z, not of x₀. On "
            f"this data that costs {t.tmin_cost:+.4f} nats on average (log p₀ − log p_{{t_min}}"
            "); it grows where the data are thinner than σ.\n\n"
            "**The prior.** The ODE ends at the prior N(0, prior_std²) the samplers start "
            f"from, not at the exact p₁: {t.prior_cost:+.1e} nats on average.\n\n"
            "**The difference panel** is learned − exact with both raised to the colour floor "
            "(the exact peak − 12 nats) first: red where the model puts too much density, blue "
            "too little; where both are negligible it is 0."
        )


@links.fragment
def likelihood_view() -> None:
    c1, c2 = st.columns(2)
    steps = controls.draw(controls.LIKELIHOOD_STEPS, c1)
    grid = controls.draw(controls.LIKELIHOOD_GRID, c2)
    with friendly_errors("The likelihood"):
        settings = LikelihoodSettings(n_grid=grid, n_steps=steps, seed=sel.seed)
        with st.spinner("Solving the ODE from every grid point…"):
            view = cache.likelihood_view(problem, settings)
            charts.draw_figure(cache.likelihood_figure(problem, settings), key="likelihood")
        notes(view)


with main:
    likelihood_view()
