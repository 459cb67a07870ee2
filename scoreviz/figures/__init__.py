"""Pure figure builders: numpy/torch in, `plotly.graph_objects.Figure` out. No Streamlit here."""
