"""Visualizations tab: sample predictions with overlays, t-SNE of features, activation maps."""

from pathlib import Path

import altair as alt
import streamlit as st

from dashboard import embedding
from dashboard.context import Context


@st.cache_data(ttl=3600, show_spinner="Embedding test images and running t-SNE…", max_entries=8)
def _model_views(uri: str, run_id: str, params: dict, data_dir: str):
    return embedding.model_views(uri, run_id, params, Path(data_dir))


def render_visualizations(ctx: Context) -> None:
    st.subheader("Feature embedding and class activation maps")
    st.caption(
        f"What the Explanations tab does not show: a t-SNE of the model's penultimate features "
        f"(`model.embed`) on up to {embedding.MAX_SAMPLES} test images, and Grad-CAM overlays "
        "at the last conv block for images of every class; computed on demand on this "
        "machine, then cached."
    )
    key = f"views_{ctx.run_id}"
    if st.button("Compute embedding and activation maps", key="compute_views"):
        st.session_state[key] = True
    if not st.session_state.get(key):
        return
    frame, cams = _model_views(ctx.uri, ctx.run_id, ctx.run["params"], str(ctx.settings.data_dir))
    colour = st.radio("Colour by", ["true", "outcome"], horizontal=True, key="tsne_colour")
    chart = (
        alt.Chart(frame)
        .mark_circle(size=40, opacity=0.8)
        .encode(
            x=alt.X("x:Q", axis=None),
            y=alt.Y("y:Q", axis=None),
            color=alt.Color(f"{colour}:N", title="class" if colour == "true" else "prediction"),
            tooltip=["true", "predicted", "outcome"],
        )
        .properties(height=420)
    )
    st.altair_chart(chart, width="stretch")
    st.markdown("**Class activation maps (Grad-CAM for the predicted class)**")
    cols = st.columns(4)
    for i, (image, caption) in enumerate(cams):
        cols[i % 4].image(image, caption=caption, width="stretch")
