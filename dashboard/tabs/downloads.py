"""The Choose model tab's downloads: this run's model, or the experiment's top K by a metric,
each recorded in the audit trail (a download chooses nothing)."""

import functools
from collections.abc import Callable

import pandas as pd
import streamlit as st

from common import metric_keys
from dashboard import data, leaderboard, ranking, readable, selection
from dashboard.assessment import Assessment
from dashboard.context import Context
from dashboard.leakage import LEAK
from dashboard.markup import name_list, plain
from dashboard.tabs.choose_form import person
from jobs import SelectionStore


def rank_by(rows: list[dict]) -> list[str]:
    """The metrics of the runs ``rows`` that the top K can rank by: those the leaderboard ranks
    (``leaderboard.ranked``: no interval bounds, bookkeeping such as ``lr``, nor the
    out-of-distribution check's figures, better neither way)."""
    return sorted(k for k in {k for r in rows for k in r["metrics"]} if leaderboard.ranked(k))


def render_downloads(ctx: Context, found: Assessment, store: SelectionStore) -> None:
    """This run's download and the experiment's top K, recorded in the audit trail ``store``
    as by whom ``choose_form.person`` names (the server's account when nobody is named)."""
    st.caption(
        f"Downloads go to `{ctx.settings.artifacts_dir.resolve()}/<run_id>/`. A download does "
        "not choose: the alias and `run_id.txt` stay as they are."
    )
    by, problem = person(ctx)  # as the Choose form names who chooses
    if problem:  # behind the proxy, a request it did not name: nobody to record
        st.error(plain(problem) + ".")
        return
    st.caption(
        f"The audit trail records downloads as by **{plain(by)}**."
        if by
        else "The audit trail "
        "records downloads as by the server's account: write your name above to be recorded."
    )
    left, right = st.columns(2)
    with left:
        st.markdown("**This run**")
        if not found.has_model:
            st.caption("This run has no model to download.")
        elif st.button("Download model", key="download_model"):
            with st.spinner("Downloading the model and artifacts…"):
                got = selection.download_model(ctx.run_id, ctx.settings, store, by)
            st.success(f"Saved to `{got.artifacts_path}`.")
    with right:
        st.markdown("**Top K of the experiment**")
        metrics = rank_by(ctx.page_rows)
        if not metrics:
            st.caption("No run on this page has metrics to rank by.")
            return
        default = next(
            (
                m
                for m in (metric_keys.eval_key("roc_auc_macro"), "best_val_auc", "val_auc")
                if m in metrics
            ),
            metrics[0],
        )
        metric = st.selectbox(
            "Rank by",
            metrics,
            index=metrics.index(default),
            key="topk_metric",
            format_func=readable.option,  # "test AUC (macro) · eval_roc_auc_macro"
        )
        cols = st.columns(2)
        k = int(cols[0].number_input("K", 1, 20, 3, key="topk_k"))
        # Keyed by the metric: Streamlit keeps a widget's value by its key whatever its
        # default, so one key kept "higher" for eval_ece and downloaded the worst-calibrated.
        higher = cols[1].toggle(
            "Higher is better",
            value=not metric_keys.lower_is_better(metric),
            key=f"topk_higher_{metric}",
        )
        # Ranked among the runs on this run's classes: other class sets do not rank against it.
        classes = ctx.run["params"].get("class_names")
        if classes:
            st.caption(f"Among the runs trained on this run's classes: {name_list(classes)}.")
        if metric.startswith(metric_keys.EVAL_PREFIX):
            st.caption(
                "Test figures made with --tta or on another data folder are not ranked, nor "
                "runs evaluated on other test data than the best of them (figures of different "
                "test sets do not rank against each other), nor runs whose test split shares "
                "images with their training data where others' does not."
            )
        ranked = data.top_runs(ctx.uri, ctx.experiment_id, metric, k, higher, classes)
        if ranked.run_ids:  # what the press downloads, from the same ranking
            n = len(ranked.run_ids)
            these = "this run" if n == 1 else f"these {n} runs, best first"
            st.caption(f"Download top {k} fetches {these}:")
            runs = [data.run(ctx.uri, run_id) for run_id in ranked.run_ids]  # K at most, cached
            frame = pd.DataFrame(ranked_rows(runs, metric))
            st.dataframe(frame, hide_index=True, column_config=headers(metric))
        if st.button(f"Download top {k}", key="download_topk"):
            with st.spinner(f"Downloading the {k} best runs by {readable.label(metric)}…"):
                got, ranked = ranking.download_top(
                    ctx.settings, ctx.experiment_id, metric, k, higher, store, classes, by, ranked
                )
            st.success(f"Downloaded {len(got)} runs; nothing was chosen.")
            if ranked.other_data:
                st.info(
                    f"{ranked.other_data} run(s) evaluated on other test data than the best run "
                    f"were not ranked: their {metric} does not compare with these. Evaluate them "
                    "on the same data folder to rank them; where they were, one of the two "
                    "evaluations was made before its test files changed or by a release before "
                    "2026-12-06 (which identified test data otherwise): evaluate the older one "
                    "again (the Evaluation tab shows when each was made)."
                )
            if ranked.leaked:
                st.info(
                    f"{ranked.leaked} run(s) were not ranked: their test split shares images or "
                    "patients with their training data (the trainer's leakage check), so their "
                    f"{metric} is optimistic beside these runs'."
                )
            if ranked.unknown:
                st.info(
                    f"{ranked.unknown} run(s) were not ranked: whether their test split shares "
                    "images with their training data is unknown (the trainer did not check, or "
                    "its tag cannot be read); the Metrics tab shows what dataset_stats.json found."
                )
            if ranked.constant:
                st.info(
                    f"{ranked.constant} run(s) were not ranked: their argmax names one class for "
                    f"every test image, so their {metric} is a constant's (the class's share of "
                    "the test images); rank by AUC to compare them."
                )
            runs = [data.run(ctx.uri, d.run_id) for d in got]  # K at most, once per press
            basis = functools.partial(ranking.row_basis, ctx.uri)
            frame = pd.DataFrame(top_k_rows(got, runs, metric, basis))
            st.dataframe(frame, hide_index=True, column_config=headers(metric))


def headers(metric: str) -> dict:
    """The top K tables' headers for a person: ``run ID``, ``metric``'s ``readable.label`` (the
    leaderboard's names), each MLflow key in its column's help."""
    return {
        "run_id": st.column_config.TextColumn("run ID", help="MLflow key: run_id"),
        metric: st.column_config.TextColumn(readable.label(metric), help=f"MLflow key: {metric}"),
    }


def ranked_rows(runs: list[dict], metric: str) -> list[dict]:
    """What "Download top K" will fetch, best first (``runs``: the ranked runs' summaries):
    each run's name, id and ``metric`` with its interval."""
    return [
        {
            "run": run["run_name"],
            "run_id": run["run_id"],
            metric: leaderboard.format_value(run["metrics"], metric),
        }
        for run in runs
    ]


def top_k_rows(
    got: list[selection.Download],
    runs: list[dict],
    metric: str,
    basis: Callable[[dict], leaderboard.Basis] = leaderboard.basis_of,
) -> list[dict]:
    """The table of a top-K download (``runs``: the summaries of ``got``'s runs, in order):
    each run's name, ``metric`` with its interval, what its evaluation was measured on when a
    test figure is not plain (``leaderboard.Basis.caveat_of``: tta, other data, a constant
    argmax; ``basis``: ``ranking.row_basis`` reads an evaluation older than the tags) or what its
    test split shares with its training data (runs of one data set with the same copies rank
    among themselves, but their figures are optimistic), and where it went."""
    rows = []
    for d, run in zip(got, runs, strict=True):
        caveats = []
        if metric.startswith(metric_keys.EVAL_PREFIX):
            found = basis(run)
            caveats = [found.caveat_of(metric)] if found.caveat_of(metric) else []
            if found.overlap:
                caveats.append(f"{LEAK} {found.overlap.why}")
        rows.append(
            {
                "run": run["run_name"],
                "run_id": d.run_id,
                metric: leaderboard.format_value(d.metrics, metric),
                "caveat": "; ".join(caveats),
                "path": str(d.artifacts_path),
            }
        )
    return rows
