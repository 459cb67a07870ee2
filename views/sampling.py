"""Sampling: run a sampler with the learned score and with the exact score from the same seed,
animate the particles (x_t with the score field and fading trails, Tweedie's x0_hat on demand),
and compare the final samples.

Projector-first: the title, one line, the controls and the animation come first (one row of x_t
panels fits 1280x720); the model notice, row options, tables and explanations follow below.
"""

import streamlit as st

from scoreviz import analysis
from scoreviz.figures.sampling import X0_MIN_SNR, sampling_weights_figure
from scoreviz.mixture import MAX_MEMORISED
from scoreviz.pipelines import SamplingSettings, StepsSettings
from scoreviz.samplers import SAMPLERS, SamplerConfig, config_from_knobs, sampler_labels
from scoreviz.ui import cache, charts, controls, links
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.models import current_selection
from scoreviz.ui.widgets import active_model_header

N_FRAMES = 50  # 2 panels x 50 frames x 500 particles on the wire: ~1.4 MB of figure JSON
LABELS = sampler_labels()

sel = current_selection()
st.title("Sampling: from noise to data")
line = st.empty()  # one short line; which one depends on whether there is a model
main = st.container()  # controls, figure, options and tables (the fragment below)
name, model = active_model_header(sel, "sampling with the learned score")  # under `main`
problem = cache.problem_of(sel, name, model)
TRAIN = problem.train_points  # the model's fixed training set (N, 2), or None
line.caption(
    "The same starting noise and random numbers under the **learned** and the **exact** score: "
    "every difference is the model's."
    if model is not None
    else "The exact score only: no trained model for this data yet (see below the figure)."
)


def sampler_settings() -> tuple[SamplerConfig, bool, bool]:
    """The controls row: sampler, steps, particles, its knobs, then the x0_hat and trail
    switches. Returns (config, show x0_hat, show trails)."""
    kind = st.session_state.get(controls.SAMPLER.key, next(iter(LABELS)))
    knobs = SAMPLERS[kind].knobs if kind in SAMPLERS else ()
    cols = st.columns([1.8, 1.2, 1.2, *([1.4] * len(knobs)), 2.0])
    kind = controls.draw(controls.SAMPLER, cols[0])
    steps = controls.draw(controls.SAMPLER_STEPS, cols[1])
    particles = controls.draw(controls.SAMPLER_PARTICLES, cols[2])
    values = {}
    for col, k in zip(cols[3:-1], SAMPLERS[kind].knobs, strict=False):
        values[k.name] = controls.draw(controls.knob_control(k), col)
    x0 = controls.draw(controls.SAMPLER_X0, cols[-1])
    trails = controls.draw(controls.SAMPLER_TRAILS, cols[-1])
    return config_from_knobs(kind, steps, particles, N_FRAMES, sel.seed, **values), x0, trails


def figure_height(x0: bool) -> int | None:
    """The figure's default height, 20 px less beside two knobs: on a 1280-px screen with the
    sidebar open their labels take two lines, and the slider must stay inside 720 px."""
    knobs = SAMPLERS[st.session_state[controls.SAMPLER.key]].knobs
    return 380 if len(knobs) >= 2 and not x0 else None


def row_choice() -> tuple[str, ...]:
    """The rows to show (pipelines.ROWS keys), from the Show radio and the memorisation box."""
    rows = ["learned", "exact"] if model is not None else ["exact"]
    if model is not None:
        pick = controls.draw(controls.SAMPLER_SHOW)
        rows = {"Learned only": ["learned"], "Exact only": ["exact"]}.get(pick, rows)
    if TRAIN is not None:
        n = len(TRAIN)
        st.info(
            f"This model saw only **{n} training points**. The best it could possibly do is "
            f"the exact score of those {n} points: sampling with it reproduces them "
            "(memorisation). The extra panel samples with that score; crosses mark the training "
            "points; the table measures how close each sampler lands to them."
            + (
                f" Its cost grows with the points, so the optimum shown is that of "
                f"{MAX_MEMORISED:,} of them (a fixed random subset)."
                if n > MAX_MEMORISED
                else ""
            )
        )
        if controls.draw(controls.SAMPLER_MEMORISED):
            rows = [*rows, "memorised"]
    return tuple(rows)


ODE_SAMPLERS = ("pf_ode_euler", "pf_ode_heun", "ddim")


def flow_notes(config: SamplerConfig) -> None:
    """Path straightness of the PF-ODE (exact and learned) in one small line, and what an
    OT-paired model's rows mean."""
    line = cache.straightness(problem, sel.seed).text()
    coupling = None if model is None else model.config.coupling
    if problem.process_key == "linear":
        line += ". The exact row is the exact velocity of the **independent** pairing."
    st.caption(line)
    if coupling == "ot":
        stochastic = (
            ""
            if config.name in ODE_SAMPLERS
            else (
                " Its field is not p_t's score, so stochastic samplers (reverse SDE, DDPM, "
                "Langevin) do not sample the data with it: use a probability-flow ODE."
            )
        )
        st.info(
            "This model was trained with **minibatch OT pairing**: its field has no closed "
            "form, and the exact row is the independent pairing's (same endpoints, curvier "
            "paths)." + stochastic
        )


def notes(view, config: SamplerConfig) -> None:
    """Below the figure: dropped particles, how to read it, the report table, mode weights."""
    flow_notes(config)
    for row in view.rows:
        if row.frames.n_dropped:
            st.warning(f"{row.label}: {row.frames.n_dropped} of {row.frames.n_total} "
                       "particles left the finite numbers and are not drawn.")  # fmt: skip
    with st.expander("How to read the figure"):
        st.caption(
            "Press ▶ Play or drag the slider (t runs from 1 down to t_min; plain Langevin "
            "counts steps at its one t). Light arrows: the score at the current t (direction "
            "exact, length normalised per frame). Dots with a fading tail: the last 10 frames of "
            "8 highlighted particles, the same starting noise in every panel. Learned and exact "
            "share their axes, which follow the particles (under VE they shrink as the samples "
            "contract). Grey dots: exact samples of the data. The figure draws 500 particles "
            "per panel; the table uses all of them. x̂₀ (Tweedie) appears once α_t/σ_t ≥ "
            f"{X0_MIN_SNR}: near t = 1, α_t ≈ 0 and x̂₀ = (x_t + σ_t² s)/α_t multiplies any score "
            "error by σ_t²/α_t, while the exact x̂₀ is just the data mean."
        )
    with st.expander("Final samples against the exact distribution"):
        reports = {row.label: row.report for row in view.rows}
        st.dataframe(analysis.report_table(reports), width="stretch")
        weights_fig = sampling_weights_figure(view)
        k = sel.dist.n_components
        if weights_fig is not None:
            charts.draw_figure(weights_fig, main=False)
        elif k > 25:
            st.caption(f"Mode weights are shown for mixtures of ≤ 25 components (this has {k}).")
        st.caption(
            "Energy distance: 0 for identical distributions; compare it with its noise floor, "
            "the distance between two exact samples of the same size. Log-likelihood: mean "
            f"exact log p(x) of the samples under the clean mixture (seed {sel.seed}, "
            f"{config.n_particles} particles). Within-mode variance: each sample goes to its "
            "nearest component; the pooled variance around those groups' means, divided by "
            "that of fresh exact samples (1 = modes as wide as the data's).\n\n"
            "**Sampler error vs model error.** The exact-score row is not the data: it still "
            "carries the sampler's own discretisation error (e.g. annealed Langevin at its "
            "defaults leaves the modes ~1.1–1.7× too wide in variance, DDPM at 200 steps "
            "~0.85×). So read the exact row against the data (fresh exact samples) as the "
            "**sampler's** error, and the learned row against the exact row (same sampler, same "
            "starting noise) as the **model's** error."
        )


def steps_chart(config: SamplerConfig) -> None:
    """On demand (a toggle, so the slider never waits for it): the chosen sampler at 1 to 200
    steps with the learned and the exact score, against fresh exact samples."""
    if not controls.draw(controls.SAMPLER_STEPS_CHART):
        return
    settings = StepsSettings(config)  # learned (with a model) and exact, whatever the rows
    with friendly_errors("The steps chart"), st.spinner("Sampling at 1 to 200 steps…"):
        charts.draw_figure(cache.steps_figure(problem, settings), main=False, key="steps")
    st.caption(
        "The **exact** score's curve is the sampler's own discretisation error: the score is "
        "perfect, so whatever it loses is the steps'. The **gap** between the learned and the "
        "exact curve at the same number of steps is the model's. Nats lost = mean log p₀ of "
        "fresh exact samples − that of the sampler's (below 0: samples piled on the modes, "
        "sharper than the data); W2 against as many fresh exact samples, beside two exact "
        f"samples' own W2 (dashed). {settings.n_particles} particles per run, seed {config.seed}."
    )


@links.fragment
def sampling_view() -> None:
    controls, figure, below = st.container(), st.container(), st.container()
    with controls:
        config, x0, trails = sampler_settings()
    with below:
        rows = row_choice()
    with friendly_errors("Sampling"):
        with figure, st.spinner("Sampling…"):
            settings = SamplingSettings(config, rows)
            view = cache.sampling_view(problem, settings)
            fig = cache.sampling_figure(problem, settings, x0, trails, figure_height(x0))
            final = view.rows[0].final if view.rows else None  # the first panel's samples
            charts.draw_figure(fig, key="sampling", samples=final)
        with below:
            notes(view, config)
            steps_chart(config)


with main:
    sampling_view()
