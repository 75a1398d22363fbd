"""Visualizations tab: the model's view of the test split, from the explainer's artifacts.

A t-SNE map of the model's penultimate features (``embedding.json``) and Grad-CAM overlays of the
explained samples (``gradcam_overlays.png``). The dashboard only reads them: the explainer
computes both with the same model code as every other explanation (press Explain to refresh).
"""

import altair as alt
import pandas as pd
import streamlit as st

from common import CATEGORICAL
from dashboard import alt_text, data, reports
from dashboard.commands import cli_code
from dashboard.context import Context, missing
from dashboard.tabs.job_ui import cannot_make
from runs import contract, schemas

COLOURS = {"true": "True class", "predicted": "Predicted class", "outcome": "Outcome"}
# The outcome is shaped as well as coloured.
OUTCOMES = {"correct": (CATEGORICAL[4], "circle"), "misclassified": (CATEGORICAL[1], "cross")}
MISCLASSIFIED_COLUMNS = {
    "test image": "Test image",
    "file": "File",
    "true": "True class",
    "predicted": "Predicted class",
    "confidence": "Confidence",
}


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
    """The map coloured by ``colour`` (a column of ``embedding_frame``), shaped by outcome."""
    if colour == "outcome":
        domain, colours = list(OUTCOMES), [c for c, _ in OUTCOMES.values()]
    else:  # a class keeps its colour whether the map shows true or predicted classes
        domain = sorted(set(frame["true"]) | set(frame["predicted"]))
        colours = [CATEGORICAL[i % len(CATEGORICAL)] for i in range(len(domain))]
    shapes = alt.Scale(domain=list(OUTCOMES), range=[s for _, s in OUTCOMES.values()])
    return (
        alt.Chart(frame)
        .mark_point(filled=True, size=60, opacity=0.85)
        .encode(
            x=alt.X("x:Q", axis=None),
            y=alt.Y("y:Q", axis=None),
            color=alt.Color(
                f"{colour}:N", title=COLOURS[colour], scale=alt.Scale(domain=domain, range=colours)
            ),
            shape=alt.Shape("outcome:N", title="Outcome", scale=shapes),
            tooltip=["true", "predicted", "confidence", "test image", "file"],
        )
        .properties(height=420)
    )


def misclassified_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The map's misclassified points, most confident first, with human headers."""
    wrong = frame[frame["outcome"] == "misclassified"].sort_values("confidence", ascending=False)
    return wrong[list(MISCLASSIFIED_COLUMNS)].rename(columns=MISCLASSIFIED_COLUMNS)


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
            f"{cli_code(ctx.settings, 'explainer', ctx.run_id)}.",
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
        wrong = misclassified_table(frame)
        if not wrong.empty:
            st.markdown(f"**Misclassified images on the map ({len(wrong)})**")
            st.dataframe(wrong, hide_index=True)
    if has_cams:
        st.subheader("Class activation maps (Grad-CAM of the predicted class)")
        st.markdown(
            "Where the last convolutional block looked for the class it predicted, for each "
            "sample the explainer explained (misclassified: ✗ and in red; correct: ✓)."
        )
        words = alt_text.gradcam(reports.explanation_index(ctx.uri, ctx.run))
        st.image(data.artifact_bytes(ctx.uri, ctx.run_id, cams), width="stretch", alt=words)
