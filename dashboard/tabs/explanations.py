"""Explanations tab: channel importance, SHAP, IG, Grad-CAM, per-sample panels, faithfulness."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import artifacts, data
from dashboard.context import Context, missing
from dashboard.model_card import faithfulness_table
from dashboard.tabs.job_ui import job_button
from runs import contract

# Section title -> words in a PNG's path that put it there (first match wins).
SECTIONS = (
    ("Channel importance", ("channel",)),
    ("SHAP", ("shap",)),
    ("Integrated gradients", ("integrated", "ig_", "_ig", "/ig")),
    ("Grad-CAM", ("gradcam", "grad_cam", "cam")),
    ("Per-sample panels (image, IG, Grad-CAM and SHAP overlays)", ("panel", "sample")),
    ("Deletion curves", ("deletion",)),
)


def group_images(paths: list[str]) -> dict[str, list[str]]:
    """PNG paths grouped by ``SECTIONS`` (the rest under "Other plots")."""
    groups: dict[str, list[str]] = {}
    for path in sorted(paths):
        lower = path.lower()
        title = next((t for t, words in SECTIONS if any(w in lower for w in words)), "Other plots")
        groups.setdefault(title, []).append(path)
    return groups


def current_prefix(ctx: Context) -> str:
    """``<folder>/`` of the run's current explanation (the tag's folder, else ``explanations/``)."""
    return contract.explanation_dir(ctx.run.get("tags")) + "/"


def render_explanations(ctx: Context) -> None:
    job_button(ctx, "explain", "Explain this run")
    prefix = current_prefix(ctx)
    paths = sorted(p for p in data.artifact_paths(ctx.uri, ctx.run_id) if p.startswith(prefix))
    if not paths:
        missing(
            "explanations",
            f"press Explain above or run `python -m explainer --run-id {ctx.run_id}`.",
        )
        return
    faithfulness = data.artifact_json(ctx.uri, ctx.run_id, prefix + "faithfulness.json")
    scores = faithfulness_table(
        faithfulness if isinstance(faithfulness, dict) else None, ctx.run["metrics"]
    )
    if not scores.empty:
        st.subheader("Faithfulness")
        st.caption(
            "Deletion AUC: how fast the prediction drops as the pixels an explanation ranks first "
            "are removed (lower is better); score = random-order AUC − AUC (higher is better)."
        )
        st.dataframe(scores, hide_index=True, width="stretch")
    importance = data.artifact_json(ctx.uri, ctx.run_id, prefix + "channel_importance.json")
    if isinstance(importance, dict) and importance:
        frame = pd.DataFrame(
            [
                (method, channel, float(share))
                for method, shares in importance.items()
                if isinstance(shares, dict)
                for channel, share in shares.items()
            ],
            columns=["method", "channel", "share"],
        )
        st.subheader("Channel importance")
        order = list(dict.fromkeys(frame["channel"]))
        chart = (
            alt.Chart(frame)
            .mark_bar()
            .encode(
                x=alt.X("channel:N", sort=order, axis=alt.Axis(labelAngle=0)),
                y=alt.Y("share:Q", title="share of |attribution|"),
                color="method:N",
                xOffset="method:N",
            )
        )
        st.altair_chart(chart.properties(height=240), width="stretch")
    index = data.artifact_json(ctx.uri, ctx.run_id, prefix + "index.json")
    index = index if isinstance(index, dict) else {}
    if index.get("samples"):
        st.subheader("Explained samples")
        st.dataframe(pd.DataFrame(index["samples"]), hide_index=True, width="stretch")
    described = index.get("files", {})
    images = [p for p in paths if artifacts.kind(p) == "image"]
    groups = group_images(images)
    if isinstance(importance, dict) and importance:
        groups.pop("Channel importance", None)  # drawn above from the JSON
    for title, group in groups.items():
        st.subheader(title)
        cols = st.columns(min(3, len(group)))
        for i, path in enumerate(group[:12]):
            name = path[len(prefix) :]
            cols[i % len(cols)].image(
                data.artifact_bytes(ctx.uri, ctx.run_id, path),
                caption=f"{name}: {described[name]}" if name in described else name,
            )
    raw = [p for p in paths if artifacts.kind(p) == "npz"]
    if raw and st.toggle("Show raw attribution arrays", key="explain_raw"):
        for path in raw:
            st.markdown(f"`{path}`")
            st.dataframe(
                artifacts.array_summary(data.artifact_npz(ctx.uri, ctx.run_id, path)),
                hide_index=True,
            )
        if index:
            st.json(index, expanded=False)
