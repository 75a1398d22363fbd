"""Explanations tab: faithfulness, channel importance, the explained samples and their panels.

What is shown comes from the explanation's ``index.json`` (its samples and every file with a
description), not from words in file names. Panels are two per row (each can be enlarged with
the image's full-screen button); channels are always in the order R, G, B.
"""

import altair as alt
import pandas as pd
import streamlit as st

from common import CATEGORICAL
from dashboard import alt_text, artifacts, data, readable, reports
from dashboard.card_tables import faithfulness_scope, faithfulness_table, score_text
from dashboard.context import Context, missing
from dashboard.markup import code, plain
from dashboard.tabs.job_ui import job_controls
from runs import contract, schemas

CHANNEL_ORDER = ("R", "G", "B", "grey")
SAMPLE_COLUMNS = {
    "rank": "#",
    "test_index": "Test image",
    "true_label": "True class",
    "predicted_label": "Predicted class",
    "confidence": "Confidence",
    "outcome": "Outcome",
    "file": "File",
}
FAITH_COLUMNS = {
    "method": "Method",
    "auc": "Deletion AUC (lower is better)",
    "random_auc": "Random-order AUC",
    "score": "Score (higher is better; 95 % CI)",
    "beats_random_fraction": "Share of samples beating random",
}
# Plots drawn here from the JSON they were made of, or shown on the Visualizations tab.
DRAWN = (contract.CHANNEL_IMPORTANCE_PNG, contract.GRADCAM_PNG)


def channel_frame(importance: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Method, channel, share; channels in ``CHANNEL_ORDER`` whatever the file's key order."""
    rank = {c: i for i, c in enumerate(CHANNEL_ORDER)}
    rows = [
        (contract.ATTRIBUTION_TITLES.get(m, m), c, share)
        for m, shares in importance.items()
        for c, share in sorted(shares.items(), key=lambda kv: rank.get(kv[0], len(rank)))
    ]
    return pd.DataFrame(rows, columns=["method", "channel", "share"])


def sample_table(index: schemas.ExplanationIndex) -> pd.DataFrame:
    """The explained samples with human headers; ``–`` where a value is missing."""
    frame = pd.DataFrame([s.model_dump() for s in index.samples])
    frame["outcome"] = ["✗ misclassified" if m else "✓ correct" for m in frame["misclassified"]]
    frame["confidence"] = frame["confidence"].map(lambda c: f"{c:.1%}")
    keep = [c for c in SAMPLE_COLUMNS if c in frame.columns]
    frame = frame[keep].rename(columns=SAMPLE_COLUMNS)
    return frame.astype(str).replace({"None": "–", "nan": "–"})


def data_note(data: dict) -> str | None:
    """What to say when the explanation is not of the run's own test split (``index.json``'s
    ``data``: explained with another ``data_dir``, or its folder's test split changed since the
    run was trained); None when it is, or the explanation does not say (made before)."""
    if data.get("data_changed"):
        changed = plain(str(data["data_changed"]))
        return f"These explanations are not of the test split the run was trained beside: {changed}"
    if data.get("own_data") is False:
        return (
            f"These explanations are of test images of {plain(str(data.get('source')))} "
            f"({data.get('n_test')} images), not of the run's own data folder: their samples, "
            "faithfulness and channel shares describe the model on those images."
        )
    return None


def panel_captions(index: schemas.ExplanationIndex | None) -> dict[str, str]:
    """Panel file (relative to the explanation folder) → ``✓ true A, predicted A (93%)``."""
    if index is None:
        return {}
    out = {}
    for s in index.samples:
        name = f"{contract.PANELS_DIR}/sample_{s.rank:02d}_test{s.test_index}.png"
        mark = "✗" if s.misclassified else "✓"
        out[name] = (
            f"{mark} true {s.true_label}, predicted {s.predicted_label} "
            f"({s.confidence:.0%}) · test image {s.test_index}"
        )
    return out


def render_explanations(ctx: Context) -> None:
    index = reports.explanation_index(ctx.uri, ctx.run)
    exists = reports.has_explanation(ctx.run) or index is not None
    how = job_controls(ctx, "explain", reports.explained_at(index), exists)
    folder = reports.explanation_path(ctx.run) + "/"
    paths = (
        sorted(p for p in data.artifact_paths(ctx.uri, ctx.run_id) if p.startswith(folder))
        if exists
        else []
    )
    if not paths:
        if how:  # otherwise the page already says why none can be made
            missing("explanations", how)
        return
    if index is not None and (note := data_note(index.data)):
        st.warning(note)
    _faithfulness(ctx)
    _channels(ctx)
    if index is not None and index.samples:
        st.subheader("Explained samples")
        st.markdown(
            "Chosen across classes (one of each where the sample has room), and up to half of "
            "them the most confidently misclassified."
        )
        point = index.operating_point
        if point:
            st.markdown(
                "Predicted class: the one the run's threshold decides "
                f"(P({plain(point['positive_class'])}) ≥ {readable.figure(point['threshold'])}, "
                "chosen on validation data), as the predictor "
                "serves it; each explanation is of that class, and the confidence is its "
                "probability."
            )
        st.dataframe(sample_table(index), hide_index=True, width="stretch")
    _images(ctx, paths, folder, index)
    raw = [p for p in paths if artifacts.kind(p) == "npz"]
    if raw and st.toggle("Show raw attribution arrays", key="explain_raw"):
        for path in raw:
            st.markdown(code(path))
            st.dataframe(
                artifacts.array_summary(data.artifact_npz(ctx.uri, ctx.run_id, path)),
                hide_index=True,
            )
        if index is not None:
            st.json(index.model_dump(mode="json"), expanded=False)


def _faithfulness(ctx: Context) -> None:
    faithfulness = reports.faithfulness(ctx.uri, ctx.run)
    scores = faithfulness_table(faithfulness, ctx.run["metrics"])
    if scores.empty:
        return
    st.subheader("Faithfulness")
    st.caption(
        "Deletion AUC: how fast the prediction drops as the pixels an explanation ranks first "
        "are removed (lower is better); score = random-order AUC − AUC (higher is better), "
        f"with its 95 % bootstrap interval over the {faithfulness_scope(faithfulness)}: an "
        "interval reaching below 0 does not show that the map beats random."
    )
    scores["method"] = scores["method"].map(lambda m: contract.ATTRIBUTION_TITLES.get(m, m))
    scores["score"] = [score_text(row) for row in scores.to_dict("records")]
    for column in ("auc", "random_auc", "beats_random_fraction"):
        scores[column] = [alt_text.number(v) for v in scores[column]]
    st.dataframe(scores[list(FAITH_COLUMNS)].rename(columns=FAITH_COLUMNS), hide_index=True)


def _channels(ctx: Context) -> None:
    importance = reports.channel_importance(ctx.uri, ctx.run)
    if not importance:
        return
    frame = channel_frame(importance)
    st.subheader("Channel importance")
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("channel:N", sort=list(CHANNEL_ORDER), axis=alt.Axis(labelAngle=0)),
            y=alt.Y("share:Q", title="share of |attribution|"),
            color=alt.Color("method:N", title="method", scale=alt.Scale(range=list(CATEGORICAL))),
            xOffset="method:N",
            tooltip=["method", "channel", alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(height=240, width=420)
    )
    words = alt_text.counts(
        frame, "method", "channel", "share", "Share of |attribution| per channel", shares=True
    )
    st.altair_chart(chart, width="content", alt=words)


def _spoken(caption: str) -> str:
    """The caption with its ✓/✗ in words, as a screen reader should say it."""
    return caption.replace("✓", "correct:", 1).replace("✗", "misclassified:", 1)


def _images(
    ctx: Context, paths: list[str], folder: str, index: schemas.ExplanationIndex | None
) -> None:
    described = index.files if index is not None else {}
    captions = panel_captions(index)
    images = [p for p in paths if artifacts.kind(p) == "image"]
    panels = [p for p in images if p[len(folder) :].startswith(contract.PANELS_DIR + "/")]
    others = [p for p in images if p not in panels and p[len(folder) :] not in DRAWN]
    if panels:
        st.subheader("Per-sample panels")
        st.caption("Each: the image, then one overlay per method. Hover a panel and use its "
                   "full-screen button to enlarge it.")  # fmt: skip
        cols = st.columns(2)
        for i, path in enumerate(panels[:16]):
            name = path[len(folder) :]
            caption = captions.get(name, described.get(name, name))
            cols[i % 2].image(
                data.artifact_bytes(ctx.uri, ctx.run_id, path),
                caption=plain(caption),  # Streamlit renders a caption's Markdown too
                width="stretch",
                alt=f"The image, then one overlay per method: {_spoken(caption)}",
            )
    for path in others:
        name = path[len(folder) :]
        title = described.get(name, name).split(":")[0]
        st.subheader(plain(title[:1].upper() + title[1:]))
        left, _ = st.columns([2, 1])
        words = described.get(name, title)
        left.image(data.artifact_bytes(ctx.uri, ctx.run_id, path), width="stretch", alt=words)
