"""Visualizations tab: the model's view of the test split, from the explainer's artifacts.

A t-SNE map of the model's penultimate features (``embedding.json``) and Grad-CAM overlays of the
explained samples (``gradcam_overlays.png``). The dashboard only reads them: the explainer
computes both with the same model code as every other explanation (press Explain to refresh).
"""

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import alt_text, data, reports
from dashboard.context import Context, missing
from dashboard.tabs.job_ui import cannot_make
from runs import contract, schemas

COLOURS = {"true": "True class", "predicted": "Predicted class", "outcome": "Outcome"}


def embedding_frame(embedding: schemas.Embedding) -> pd.DataFrame:
    """One row per point: x, y, true, predicted, outcome, confidence, test image, file."""
    return pd.DataFrame(
        {
            "x": [p.x for p in embedding.points],
            "y": [p.y for p in embedding.points],
            "true": [p.true_label for p in embedding.points],
            "predicted": [p.predicted_label for p in embedding.points],
            "outcome": ["correct" if p.correct else "misclassified" for p in embedding.points],
            "confidence": [round(p.confidence, 3) for p in embedding.points],
            "test image": [p.test_index for p in embedding.points],
            "file": [p.file or "–" for p in embedding.points],
        }
    )


def embedding_chart(frame: pd.DataFrame, colour: str) -> alt.Chart:
    """The map coloured by ``colour`` (a column of ``embedding_frame``)."""
    return (
        alt.Chart(frame)
        .mark_circle(size=45, opacity=0.8)
        .encode(
            x=alt.X("x:Q", axis=None),
            y=alt.Y("y:Q", axis=None),
            color=alt.Color(f"{colour}:N", title=COLOURS[colour]),
            shape=alt.Shape("outcome:N", title="Outcome"),
            tooltip=["true", "predicted", "confidence", "test image", "file"],
        )
        .properties(height=420)
    )


def render_visualizations(ctx: Context) -> None:
    embedding = reports.embedding(ctx.uri, ctx.run)
    cams = reports.explanation_path(ctx.run, contract.GRADCAM_PNG)
    has_cams = reports.has_explanation(ctx.run) and cams in data.artifact_paths(ctx.uri, ctx.run_id)
    if embedding is None and not has_cams:
        if reason := cannot_make(ctx, "explain"):
            st.info(reason)
            return
        missing(
            "feature map or activation maps",
            "they come with every explanation: press Explain on the Explanations tab or run "
            f"`python -m explainer --run-id {ctx.run_id}`.",
        )
        return
    if embedding is not None:
        st.subheader("Feature embedding")
        st.caption(
            f"{embedding.method} of {len(embedding.points)} of the {embedding.n_test} test "
            "images (sampled per class). Points close together look alike to the model; "
            "misclassified images inside another class's cluster show what it confuses."
        )
        colour = st.radio(
            "Colour by", list(COLOURS), format_func=COLOURS.get, horizontal=True, key="tsne_colour"
        )
        frame = embedding_frame(embedding)
        words = alt_text.embedding(frame, embedding.method, COLOURS[colour])
        st.altair_chart(embedding_chart(frame, colour), width="stretch", alt=words)
    if has_cams:
        st.subheader("Class activation maps (Grad-CAM of the predicted class)")
        st.caption(
            "Where the last convolutional block looked for the class it predicted, for each "
            "sample the explainer explained (misclassified in red)."
        )
        words = alt_text.gradcam(reports.explanation_index(ctx.uri, ctx.run))
        st.image(data.artifact_bytes(ctx.uri, ctx.run_id, cams), width="stretch", alt=words)
