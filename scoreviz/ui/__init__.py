"""The Streamlit layer: session state, shared sidebar, caching, error display. Pages import this;
the rest of `scoreviz` never imports Streamlit."""
