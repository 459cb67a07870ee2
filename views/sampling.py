"""Sampling: run a sampler with the learned score and with the exact score from the same seed,
animate the particles (x_t, Tweedie's x0_hat, the score field), and compare the final samples."""

import streamlit as st

from scoreviz import analysis
from scoreviz.figures.sampling import SamplingPanel, mode_weights_figure, sampling_animation
from scoreviz.mixture import MAX_MEMORISED
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


# The model's fixed training set as (N, 2) numpy, or None (infinite data / no model).
TRAIN = None if model is None or model.train_points is None else model.train_points.numpy()
TRAIN_KEY = None if TRAIN is None else cache.model_key(model) + ":train"
ROW_LABELS = {"learned": "learned score", "exact": "exact score", "memorised": "memorising optimum"}


def run(row: str, config: SamplerConfig) -> tuple[SamplingPanel, dict]:
    """One row: row is "learned", "exact" (the true distribution's score) or "memorised" (the
    exact score of the model's training points)."""
    label, learned = ROW_LABELS[row], row == "learned"
    out = compute.sampling_run(
        cache.model_key(model) if learned else None,
        model if learned else None,
        sel.dist_key,
        sel.dist,
        sel.process_key,
        config,
        train_key=TRAIN_KEY,
        _train_points=TRAIN,
        memorised=row == "memorised",
    )
    fr = out["frames"]
    if fr.n_dropped:
        st.warning(f"{label}: {fr.n_dropped} of {fr.n_total} particles left the finite numbers "
                   "and are not drawn.")  # fmt: skip
    panel = SamplingPanel(label, row, fr, out["field_xy"], out["field_score"], out["ranges"])
    return panel, out["report"]


@st.fragment
def sampling_view() -> None:
    config = sampler_settings()
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
    with friendly_errors("Sampling"):
        with st.spinner("Sampling…"):
            runs = {r: run(r, config) for r in rows}
        data = cache.samples(sel.dist_key, sel.dist, 1000, sel.seed)
        fig = sampling_animation(
            [p for p, _ in runs.values()],
            data=data,
            train_points=TRAIN,
        )
        st.plotly_chart(fig, width="stretch")
        st.caption(
            "Press ▶ Play or drag the slider (t runs from 1 down to t_min). Light arrows: the "
            "score at the current t on a 15×15 grid (direction exact, length normalised per "
            "frame). Coloured lines: the paths of 8 highlighted particles, the same starting "
            "noise in every row. Grey dots on the right: exact samples of the data. Near t = 1, "
            "α_t ≈ 0 and x̂₀ divides by it, so small score errors look large there."
        )
        reports = {ROW_LABELS[r]: rep for r, (_, rep) in runs.items()}
        st.markdown("**Final samples against the exact distribution**")
        st.dataframe(analysis.report_table(reports), width="stretch")
        weights = {k: r["mode_weights"] for k, r in reports.items() if "mode_weights" in r}
        k = sel.dist.n_components
        if weights and k <= 25:
            true_w = sel.dist.weights.numpy()
            colors = {ROW_LABELS[r]: r for r in rows}
            st.plotly_chart(mode_weights_figure(true_w, weights, colors), width="stretch")
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
