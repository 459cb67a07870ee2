"""scoreviz entry point: `streamlit run app.py`.

Page config, the shared sidebar (distribution, process, seed, active model — persisted across
pages), and navigation over the views in teaching order. Pages live in pages/ and stay thin.
Every run first collects a finished background training job (scoreviz.ui.training_runner), so
a model trained while the user looked at another page appears in the sidebar.
"""

import os

# OpenMP threads that spin while waiting make torch 10-50x slower whenever the other core of a
# 2-core laptop is busy (another session, a training job). Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402

from scoreviz.ui.state import sidebar  # noqa: E402
from scoreviz.ui.training_runner import collect_finished, sidebar_status  # noqa: E402

st.set_page_config(page_title="scoreviz", page_icon="🌀", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/forward.py", title="Data & forward process", icon="🌫️"),
    st.Page("pages/train.py", title="Train", icon="🏋️"),
    st.Page("pages/score_field.py", title="Score field", icon="🧭"),
    st.Page("pages/dae.py", title="DAE reconstructions", icon="🧹"),
    st.Page("pages/loss.py", title="Loss vs t", icon="📉"),
    st.Page("pages/sampling.py", title="Sampling", icon="🎞️"),
]

nav = st.navigation(PAGES)
collect_finished()
sidebar()
with st.sidebar:
    sidebar_status()
nav.run()
