"""Home: what the app shows, the one idea (Tweedie), a one-click default model, links to views.
In presentation mode, a title slide: the title, the idea and Tweedie's formula, large."""

import streamlit as st

from scoreviz.text import escape
from scoreviz.ui import present
from scoreviz.ui.models import current_selection
from scoreviz.ui.pages import VIEWS
from scoreviz.ui.training_runner import live_status, show_notice
from scoreviz.ui.widgets import train_default_button

sel = current_selection()
TWEEDIE = (
    r"\mathbb{E}[x_0 \mid x_t] \;=\; \frac{x_t + \sigma_t^2\, \nabla_{x} \log p_t(x_t)}{\alpha_t}"
)


def title_slide() -> None:
    """Presentation mode's Home: the idea and the formula, nothing to scroll."""
    with st.container(key="title_slide"):
        st.title("See how diffusion models learn")
        st.markdown(
            "### Denoising is score estimation\n"
            "Noise the data, $x_t = \\alpha_t x_0 + \\sigma_t \\varepsilon$: the best possible "
            "denoiser and the score of $p_t$ are one object (Tweedie's formula)."
        )
        st.latex(r"\Large " + TWEEDIE)
        st.markdown(
            "Small models trained on 2D toy data, shown **beside the exact answer** at every "
            "noise level. Pages and scenes: the bar above (PageDown / PageUp: next, previous)."
        )


def full_page() -> None:
    """Home outside presentation mode."""
    st.title("scoreviz — see how diffusion models learn")
    st.markdown(
        "Small score models, trained here in seconds on 2D toy distributions, shown **beside the "
        "exact answer**. Every toy distribution is a Gaussian mixture, so the noised density "
        "$p_t$, its score $\\nabla \\log p_t$ and the optimal denoiser are known exactly at every "
        "noise level."
    )
    train_row = st.container()  # high on the page: its progress stays inside a 720-px screen

    st.subheader("The one idea: denoising is score estimation")
    st.markdown(
        "Noise the data, $x_t = \\alpha_t x_0 + \\sigma_t \\varepsilon$. The best possible "
        "denoiser and the score are one object (Tweedie's formula):"
    )
    st.latex(TWEEDIE)
    st.markdown(
        "So training a network to denoise at every noise level — the loss $\\mathbb{E}\\,"
        "\\lambda(t)\\,\\lVert s_\\theta(x_t, t) + \\varepsilon/\\sigma_t \\rVert^2$ — "
        "teaches it the score, which is all a sampler needs to turn noise into data."
    )

    with train_row:
        left, right = st.columns([1, 3], vertical_alignment="center")
        with left:
            train_default_button(sel, key="home", label="Train the default model")
        right.markdown(
            f"For the sidebar's choice (*{escape(sel.dist_label)}*, {sel.process.label}, seed "
            f"{sel.seed}); it becomes the active model on every page."
        )
        live_status(show_chart=False, key="home")
        show_notice()
    with st.container():
        st.markdown("**What each noise level teaches**")
        st.markdown(
            "| σ | the denoiser must learn |\n"
            "| --- | --- |\n"
            "| small | **local** detail: move x a little onto the nearby data |\n"
            "| medium | **global** structure: which mode / cluster x came from |\n"
            "| large | only the **mean** of the data: $\\hat x_0 \\approx \\mathbb{E}[x_0]$ |"
        )

    st.subheader("The views, in teaching order")
    cols = st.columns(3)
    for i, page in enumerate(VIEWS):
        with cols[i % 3]:
            st.page_link(page.file, label=f"**{page.title}**", icon=page.icon)
            st.caption(page.summary)


if present.is_on():
    title_slide()
else:
    full_page()
