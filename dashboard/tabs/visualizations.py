"""Visualizations tab: sample predictions with overlays, t-SNE of features, activation maps."""

from pathlib import Path

import altair as alt
import streamlit as st

from dashboard import data, embedding
from dashboard.context import Context
from runs import contract


@st.cache_data(ttl=3600, show_spinner="Embedding test images and running t-SNE…", max_entries=8)
def _model_views(uri: str, run_id: str, params: dict, data_dir: str):
    return embedding.model_views(uri, run_id, params, Path(data_dir))


def _overlays(ctx: Context) -> None:
    st.subheader("Sample predictions")
    paths = sorted(data.artifact_paths(ctx.uri, ctx.run_id))
    explained = contract.explanation_dir(ctx.run.get("tags"))
    evaluated = contract.evaluation_dir(ctx.run.get("tags"))
    panels = [p for p in paths if p.startswith(f"{explained}/{contract.PANELS_DIR}/")]
    wrong = [
        p
        for p in paths
        if p.startswith(f"{evaluated}/{contract.MISCLASSIFIED_DIR}/") and p.endswith(".png")
    ]
    shown = panels[:6] or wrong[:6]
    if not shown:
        st.info(
            "No sample panels yet: press Explain on the Explanations tab (overlays of IG, "
            "Grad-CAM and SHAP) or Evaluate (misclassified samples); or compute activation "
            "maps below."
        )
        return
    st.caption(
        "From the explainer's panels (image and one overlay per method)"
        if panels
        else "Misclassified samples from the evaluation"
    )
    cols = st.columns(2 if panels else 3)
    for i, path in enumerate(shown):
        cols[i % len(cols)].image(
            data.artifact_bytes(ctx.uri, ctx.run_id, path), caption=path.rsplit("/", 1)[-1]
        )


def render_visualizations(ctx: Context) -> None:
    _overlays(ctx)
    st.subheader("Feature embedding and class activation maps")
    st.caption(
        f"t-SNE of the model's penultimate features (`model.embed`) on up to "
        f"{embedding.MAX_SAMPLES} test images, and Grad-CAM at the last conv block; computed "
        "on demand on this machine, then cached."
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
