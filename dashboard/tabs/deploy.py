"""Deploy tab: download the chosen model(s), run_id.txt, recent selections, model card, serving."""

import pandas as pd
import streamlit as st

from dashboard import reports, selection
from dashboard.context import Context
from dashboard.model_card import build_model_card, evaluation_table, serving_instructions
from jobs import SelectionStore, get_database


def _store(ctx: Context) -> SelectionStore:
    return SelectionStore(get_database(ctx.settings))


def _download(ctx: Context) -> None:
    st.caption(
        f"Downloads go to `{ctx.settings.artifacts_dir.resolve()}/<run_id>/`; the chosen run id "
        f"is written to `{ctx.settings.run_id_file.resolve()}` (setting `RUN_ID_FILE`), where the "
        "downstream services read it."
    )
    left, right = st.columns(2)
    with left:
        st.markdown("**This run**")
        if st.button("Download model", key="download_model", type="primary"):
            with st.spinner("Downloading the model and artifacts…"):
                chosen = selection.select_run(ctx.run_id, ctx.settings, _store(ctx))
            st.success(
                f"Saved to `{chosen.artifacts_path}`; `{chosen.run_id_file}` now names "
                f"{chosen.run_id}."
            )
    with right:
        st.markdown("**Top K of the experiment**")
        metrics = sorted({k for r in ctx.page_rows for k in r["metrics"]})
        if not metrics:
            st.caption("No run on this page has metrics to rank by.")
            return
        default = next(
            (m for m in ("eval_roc_auc_macro", "best_val_auc", "val_auc") if m in metrics),
            metrics[0],
        )
        metric = st.selectbox("Rank by", metrics, index=metrics.index(default), key="topk_metric")
        cols = st.columns(2)
        k = int(cols[0].number_input("K", 1, 20, 3, key="topk_k"))
        higher = cols[1].toggle("Higher is better", value="loss" not in metric, key="topk_higher")
        if st.button(f"Download top {k}", key="download_topk"):
            with st.spinner(f"Downloading the {k} best runs by {metric}…"):
                chosen = selection.select_top(
                    ctx.settings, ctx.experiment_id, metric, k, higher, _store(ctx)
                )
            st.success(
                f"Downloaded {len(chosen)} runs; `{chosen[0].run_id_file}` names the best, "
                f"{chosen[0].run_id}."
            )
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "run_id": c.run_id,
                            metric: c.metrics.get(metric),
                            "path": str(c.artifacts_path),
                        }
                        for c in chosen
                    ]
                ),
                hide_index=True,
            )


def _recent(ctx: Context) -> None:
    st.subheader("Recent selections")
    recent = _store(ctx).recent(10)
    if not recent:
        st.caption("No model has been selected yet.")
        return
    rows = [
        {
            "selected_at": r["selected_at"],
            "run_id": r["run_id"],
            "by": r.get("selected_by"),
            **{k: v for k, v in sorted(r.get("metrics", {}).items())[:4]},
        }
        for r in recent
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def model_card_for(ctx: Context) -> str:
    report = reports.evaluation_report(ctx.uri, ctx.run)
    return build_model_card(
        ctx.run,
        reports.dataset_stats(ctx.uri, ctx.run),
        evaluation_table(ctx.run["metrics"], report),
        reports.faithfulness(ctx.uri, ctx.run),
        reports.preprocessing(ctx.uri, ctx.run),
    )


def render_deploy(ctx: Context) -> None:
    st.subheader("Choose this model")
    _download(ctx)
    _recent(ctx)
    st.subheader("Model card")
    card = model_card_for(ctx)
    st.download_button(
        "Download model card (Markdown)",
        card,
        file_name=f"model_card_{ctx.run_id[:8]}.md",
        mime="text/markdown",
        key="model_card_download",
    )
    with st.container(border=True):
        st.markdown(card)
    st.subheader("Serve it")
    st.markdown(serving_instructions(ctx.run_id, reports.preprocessing(ctx.uri, ctx.run)))
