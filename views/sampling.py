"""Sampling: run a sampler with the learned score and with the exact score from the same seed,
animate the particles (x_t, Tweedie's x0_hat, the score field), and compare the final samples."""

import streamlit as st

from scoreviz import analysis
from scoreviz.figures.sampling import sampling_figure, sampling_weights_figure
from scoreviz.mixture import MAX_MEMORISED
from scoreviz.pipelines import SamplingSettings
from scoreviz.samplers import SAMPLERS, SamplerConfig, config_from_knobs, sampler_labels
from scoreviz.ui import cache, compute
from scoreviz.ui.errors import friendly_errors
from scoreviz.ui.state import current_selection
from scoreviz.ui.widgets import active_model_header, knob_sliders

N_FRAMES = 50  # two rows x 50 frames x 1000 particles stays < 5 MB of figure JSON
LABELS = sampler_labels()

sel = current_selection()
st.title("Sampling: from noise to data")
st.markdown(
    "A sampler only ever asks for the score $s(x_t, t)$. Run it with the **learned** score and "
    "with the **exact** one, from the same starting noise and the same random numbers: every "
    "difference below is the model's. Beside each $x_t$ is its denoised preview "
    "$\\hat x_0 = (x_t + \\sigma_t^2 s)/\\alpha_t$ (Tweedie)."
)
name, model = active_model_header(sel, "sampling with the learned score")


def sampler_settings() -> SamplerConfig:
    c1, c2, c3 = st.columns([2, 1, 1])
    kind = c1.selectbox("Sampler", list(LABELS), format_func=LABELS.get, key="sampler")
    steps = c2.slider("Steps", 1, 500, 200, key="sampler_steps")
    particles = c3.slider("Particles", 1, 2000, 1000, key="sampler_particles")
    knobs = knob_sliders(SAMPLERS[kind].knobs)
    return config_from_knobs(kind, steps, particles, N_FRAMES, sel.seed, **knobs)


problem = cache.problem_of(sel, name, model)
TRAIN = problem.train_points  # the model's fixed training set (N, 2), or None


def row_choice() -> tuple[str, ...]:
    """The rows to show (pipelines.ROWS keys), from the Show radio and the memorisation box."""
    rows = ["learned", "exact"] if model is not None else ["exact"]
    if model is not None:
        pick = st.radio(
            "Show",
            ["Learned and exact", "Learned only", "Exact only"],
            horizontal=True,
            key="sampler_show",
        )
        rows = {"Learned only": ["learned"], "Exact only": ["exact"]}.get(pick, rows)
    if TRAIN is not None:
        n = len(TRAIN)
        st.info(
            f"This model saw only **{n} training points**. The best it could possibly do is "
            f"the exact score of those {n} points: sampling with it reproduces them "
            "(memorisation). The extra row samples with that score; crosses mark the training "
            "points; the table measures how close each sampler lands to them."
            + (
                f" Its cost grows with the points, so the optimum shown is that of "
                f"{MAX_MEMORISED:,} of them (a fixed random subset)."
                if n > MAX_MEMORISED
                else ""
            )
        )
        if st.checkbox("Add the memorising optimum", value=True, key="sampler_memorised"):
            rows = [*rows, "memorised"]
    return tuple(rows)


@st.fragment
def sampling_view() -> None:
    config = sampler_settings()
    rows = row_choice()
    with friendly_errors("Sampling"):
        with st.spinner("Sampling…"):
            view = compute.sampling_view(problem, SamplingSettings(config, rows))
        for row in view.rows:
            if row.frames.n_dropped:
                st.warning(f"{row.label}: {row.frames.n_dropped} of {row.frames.n_total} "
                           "particles left the finite numbers and are not drawn.")  # fmt: skip
        st.plotly_chart(sampling_figure(view), width="stretch")
        st.caption(
            "Press ▶ Play or drag the slider (t runs from 1 down to t_min). Light arrows: the "
            "score at the current t on a 15×15 grid (direction exact, length normalised per "
            "frame). Coloured lines: the paths of 8 highlighted particles, the same starting "
            "noise in every row. Grey dots on the right: exact samples of the data. Near t = 1, "
            "α_t ≈ 0 and x̂₀ divides by it, so small score errors look large there."
        )
        st.markdown("**Final samples against the exact distribution**")
        reports = {row.label: row.report for row in view.rows}
        st.dataframe(analysis.report_table(reports), width="stretch")
        k = sel.dist.n_components
        weights_fig = sampling_weights_figure(view)
        if weights_fig is not None:
            st.plotly_chart(weights_fig, width="stretch")
        elif k > 25:
            st.caption(f"Mode weights are shown for mixtures of ≤ 25 components (this has {k}).")
    st.caption(
        "Energy distance: 0 for identical distributions; compare it with its noise floor, the "
        "distance between two exact samples of the same size. Log-likelihood: mean exact "
        f"log p(x) of the samples under the clean mixture (seed {sel.seed}, "
        f"{config.n_particles} particles). Within-mode variance: each sample goes to its "
        "nearest component; the pooled variance around those groups' means, divided by that of "
        "fresh exact samples (1 = modes as wide as the data's).\n\n"
        "**Sampler error vs model error.** The exact-score row is not the data: it still carries "
        "the sampler's own discretisation error (e.g. annealed Langevin at its defaults leaves "
        "the modes ~1.1–1.7× too wide in variance, DDPM at 200 steps ~0.85×). So read the exact "
        "row against the data (fresh exact samples) as the **sampler's** error, and the learned "
        "row against the exact row (same sampler, same starting noise) as the **model's** error."
    )


sampling_view()
