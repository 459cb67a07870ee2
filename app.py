"""scoreviz entry point: `streamlit run app.py`.

Page config, the shared sidebar (distribution, process, seed, active model — persisted across
pages), and navigation over the views in teaching order. Pages live in views/ and stay thin (not
in pages/: that folder name switches Streamlit into its legacy multipage mode, where a deep link
runs the page file alone, without this script).
Every run first collects a finished background training job (scoreviz.ui.training_runner), so
a model trained while the user looked at another page appears in the sidebar.
A session is tracked so that it is shut down (state and upload freed) soon after its tab
closes (scoreviz.ui.sessions).
"""

from pathlib import Path

import streamlit as st

from scoreviz.ui import keys, links, pages, present, scenes
from scoreviz.ui.errors import friendly_errors  # importing scoreviz sets the thread policy
from scoreviz.ui.sessions import track_session
from scoreviz.ui.sidebar import sidebar
from scoreviz.ui.training_runner import collect_finished

# A local image: a ":material/...:" page icon makes the browser fetch the favicon from a font CDN
# (fails in a lecture hall without internet). Material icons in st.Page use the bundled font.
ICON = str(Path(__file__).resolve().parent / "assets" / "icon.png")
st.set_page_config(page_title="scoreviz", page_icon=ICON, layout="wide")

PAGES = [
    st.Page(p.file, title=p.title, icon=p.icon, default=p is pages.HOME) for p in pages.PAGES
]  # the registry: scoreviz.ui.pages

nav = st.navigation(PAGES)
page = pages.by_title(nav.title)
st.session_state[keys.PAGE] = page.file
scenes.open_from_link()  # a session's first run: a scene named by the link, then
links.read_url(page.file)  # the link's settings (over the scene's), before any widget
links.recall(page.file, st.session_state)  # the page's settings from its last visit
if present.is_on():
    st.set_page_config(**present.page_config())
track_session()  # closed once gone for server.disconnectedSessionTTL
collect_finished()
sidebar()
present.apply_page_style()
present.bar(page.file, scenes.picker)  # presentation mode's page links, Scenes, Leave and keys
links.show_notice()
scenes.run_pending(page.file)  # an opened scene: its trainings, then its page
scenes.card(page.file)
# Last line of defence: an error no page caught is a short st.error, never Streamlit's error box
# (which offers "Ask Google / Ask ChatGPT" links even when redacted). st.rerun/st.stop raise
# BaseExceptions, which pass through.
with friendly_errors("This page"):
    nav.run()
links.sync(page.file)  # the address bar reopens this view (fragments call links.sync_current)
