"""Evaluation tab: metrics with confidence intervals, plots, misclassified samples, raw data.

Metrics are named by ``readable.label`` (``test AUC (macro)``), their MLflow keys beside the
names, and figures written by ``readable.figure`` as the leaderboard writes them: a value to four
significant digits, an interval's bounds to ``readable.BOUND_DIGITS``.
"""

import altair as alt
import pandas as pd
import streamlit as st

from common import metric_keys
from dashboard import alt_text, data, handoff, leaderboard, ood, readable, reports
from dashboard.card_tables import (
    BOUNDED,
    describe_operating_point,
    evaluation_table,
    operating_point_table,
)
from dashboard.context import Context, missing
from dashboard.leakage import not_its_split
from dashboard.markup import code, name_list, plain
from dashboard.paired import names_as_written
from dashboard.provenance import dataset_warnings
from dashboard.reads import PREVIEW_BYTES
from dashboard.tabs.job_ui import job_controls
from runs import contract

PLOTS = (
    (contract.CONFUSION_MATRIX_PNG, "Confusion matrix"),
    (contract.ROC_CURVES_PNG, "ROC curves"),
    (contract.CALIBRATION_PNG, "Calibration"),
)
ROW_PX = 32  # a row of the interval charts: more than a label's height and separation
HUMAN = {
    "name": "Metric",
    "value": "Value",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "method": "Interval method",
    "key": "MLflow key",
}
# metrics.json's interval methods (evaluator.metrics), as a reader names them
METHODS = {"wilson": "Wilson", "delong": "DeLong", "bootstrap_percentile": "bootstrap percentile"}


def interval_charts(table: pd.DataFrame) -> list[tuple[alt.LayerChart, pd.DataFrame]]:
    """Values with their 95 % intervals: one chart for higher-is-better metrics, one for
    lower-is-better ones, each zoomed to its own data (not from 0), so intervals can be compared;
    each with its rows. Their width is the container's (two charts, not one concatenation:
    Vega-Lite sizes only a single view to its container), so a narrow window does not scroll.
    """
    frame = table.copy()
    frame["better"] = [leaderboard.direction(m) for m in frame["metric"]]
    frame["name"] = [readable.evaluated(m) for m in frame["metric"]]
    frame["shown"] = [alt_text.interval(*row) for row in frame[list(BOUNDED)].itertuples(False)]
    frame["low"] = frame["ci_low"].fillna(frame["value"])
    frame["high"] = frame["ci_high"].fillna(frame["value"])
    parts = []
    for better in ("higher is better", "lower is better"):
        part = frame[frame["better"] == better]
        if part.empty:
            continue
        lo, hi = float(part["low"].min()), float(part["high"].max())
        pad = (hi - lo) * 0.05 or 0.01
        scale = alt.Scale(domain=[lo - pad, hi + pad], zero=False, nice=False)
        # The metric alone: the axis title says which way is better, and a long label would
        # take the width of a phone.
        # Every row named: Streamlit's theme drops labels that it finds overlapping (9 rows
        # showed 5 names), so the overlap check is off and each row gets room for its name.
        axis = alt.Axis(labelLimit=180, labelOverlap=False)
        y = alt.Y("name:N", sort=list(part["name"]), title=None, axis=axis)
        rule = (
            alt.Chart(part)
            .mark_rule(strokeWidth=3, color="#1f77b4")
            .encode(
                y=y,
                x=alt.X("low:Q", scale=scale, title=f"value and 95% interval ({better})"),
                x2="high:Q",
            )
        )
        point = (
            alt.Chart(part)
            .mark_point(filled=True, size=90, color="#0b3d91")
            .encode(
                y=y,
                x=alt.X("value:Q", scale=scale),
                tooltip=[
                    alt.Tooltip("name:N", title="metric"),
                    alt.Tooltip("shown:N", title="value (95% interval)"),
                ],
            )
        )
        # The height is the rows' alone, the x axis below it: Streamlit's default autosize
        # ("fit") fits the axes into the height too, which left a one-row chart no x axis.
        chart = (rule + point).properties(
            width="container",
            height=ROW_PX * len(part),
            autosize=alt.AutoSizeParams(type="fit-x", contains="padding"),
        )
        parts.append((chart, part))
    return parts


def matrix_table(
    classes: list[str], matrix: list[list[int]], by: str = "predicted"
) -> pd.DataFrame:
    """A confusion matrix's counts, rows ``true <class>``, columns ``<by> <class>``."""
    return pd.DataFrame(
        matrix, index=[f"true {c}" for c in classes], columns=[f"{by} {c}" for c in classes]
    )


def figures(table: pd.DataFrame) -> pd.DataFrame:
    """``table``'s figures as the leaderboard writes them (``readable.figure``: a bootstrap bound
    of 2.8e-17 reads 0; an interval's bounds to ``readable.BOUND_DIGITS``)."""
    out = table.copy()
    out["value"] = [readable.figure(v) for v in out["value"]]
    for bound in ("ci_low", "ci_high"):
        if bound in out.columns:
            out[bound] = [readable.figure(v, readable.BOUND_DIGITS) for v in out[bound]]
    return out


def _readable(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``evaluation_table`` for a person: the metric's name first, its MLflow key last."""
    shown = figures(table.drop(columns="overall"))
    shown = shown.assign(name=[readable.evaluated(m) for m in shown["metric"]])
    shown = shown.assign(key=[metric_keys.eval_key(m) for m in shown["metric"]])
    if "method" in shown.columns:
        shown["method"] = [METHODS.get(m, m) for m in shown["method"]]
    columns = ["name", *(c for c in HUMAN if c in shown.columns and c not in ("name", "key"))]
    return shown[[*columns, "key"]].rename(columns=HUMAN)


def render_evaluation(ctx: Context) -> None:
    report = reports.evaluation_report(ctx.uri, ctx.run)
    # the evaluator's tags or result; eval_* metrics alone are none: a run may log them by hand
    exists = reports.has_evaluation(ctx.run) or report is not None
    paths = data.artifact_paths(ctx.uri, ctx.run_id) if exists else set()
    when = reports.evaluated_at(ctx.uri, ctx.run, report) if exists else None
    how = job_controls(ctx, "evaluate", when, exists)
    table = evaluation_table(ctx.run["metrics"], report)
    folder = reports.evaluation_path(ctx.run)
    if not exists or (table.empty and not any(p.startswith(folder + "/") for p in paths)):
        if not exists:
            _logged_by_the_run(ctx, table)
        if how:  # otherwise the page already says why none can be made
            missing("evaluation", how)
        return
    if not table.empty:
        st.subheader("Test-set metrics (95% confidence intervals)")
        point = report and report.operating_points and report.operating_points.threshold
        if report is not None:
            rule = (
                " · predictions here are the most probable class; the served decision by the "
                "validation threshold is below"
                if point
                else ""
            )
            st.caption(
                f"{report.n_samples} test images · classes: {name_list(report.class_names)}{rule}"
            )
        for caveat in handoff.caveats_of(folder, report)[1]:  # as choosing the run lists them
            st.warning(f"About these figures: {plain(caveat)}.")
        _data_warnings(ctx, report)
        overall, per_class = table[table["overall"]], table[~table["overall"]]
        st.dataframe(_readable(overall), hide_index=True, width="stretch")
        for chart, rows in interval_charts(overall):
            st.altair_chart(chart, width="stretch", alt=alt_text.intervals(rows))
        if not per_class.empty:
            with st.expander(f"Per-class metrics ({len(per_class)})"):
                st.dataframe(_readable(per_class), hide_index=True, width="stretch")
    point = report and report.operating_points and report.operating_points.threshold
    if point:
        st.subheader("At the decision threshold chosen on validation")
        # The rule the served model decides by: body text, not a pale caption.
        st.markdown(describe_operating_point(point) + " 95% Wilson intervals.")
        names = {**HUMAN, "class": "Class", "measure": "Measure"}
        rates = figures(operating_point_table(point))  # as eval_thr_*
        st.dataframe(rates.rename(columns=names), hide_index=True)
        if point.confusion_matrix:
            st.markdown("**Confusion matrix at this threshold** (rows: true class)")
            st.dataframe(matrix_table(report.class_names, point.confusion_matrix, "decided"))
    if report is not None:
        _out_of_distribution(report, ctx.run.get("params") or {})
    # The confusion matrix holds two panels (counts, normalized): it gets a whole row.
    cols = [st.container(), *st.columns(len(PLOTS) - 1)]
    for col, (name, title) in zip(cols, PLOTS, strict=True):
        with col:
            argmax = point and name == contract.CONFUSION_MATRIX_PNG
            st.markdown(f"**{title}{' (most probable class)' if argmax else ''}**")
            path = reports.evaluation_path(ctx.run, name)
            if path in paths:
                words = alt_text.evaluation_plot(name, title, report)
                st.image(data.artifact_bytes(ctx.uri, ctx.run_id, path), alt=words)
                if name == contract.CONFUSION_MATRIX_PNG and report and report.confusion_matrix:
                    st.markdown("Its counts (rows: true class, columns: most probable class):")
                    st.dataframe(matrix_table(report.class_names, report.confusion_matrix))
            else:
                st.caption(f"This evaluation has no {title.lower()} plot.")
    _misclassified(ctx, paths)
    predictions = reports.evaluation_path(ctx.run, contract.PREDICTIONS_CSV)
    if predictions in paths and st.toggle("Show raw predictions", key="eval_raw"):
        preview = data.artifact_csv(ctx.uri, ctx.run_id, predictions, PREVIEW_BYTES)
        st.dataframe(names_as_written(preview), width="stretch")
        if report is not None:
            st.json(report.model_dump(mode="json"), expanded=False)


def _data_warnings(ctx: Context, report) -> None:
    """The run's data set's warnings, as the Metrics tab's dataset section words them; for an
    evaluation of another folder (``leakage.not_its_split``) one line instead, saying they
    concern the run's own splits, not the images evaluated here."""
    warnings = dataset_warnings(reports.dataset_stats(ctx.uri, ctx.run))
    if not warnings or not not_its_split(ctx.run.get("tags") or {}, report):
        for warning in warnings:
            st.warning(plain(warning))
        return
    kinds = ", ".join(dict.fromkeys(w.split(":")[0].lower() for w in warnings))
    test = (ctx.run.get("params") or {}).get("data_n_test")
    split = f"its own test split of {test} images" if test else "its own test split"
    st.info(
        f"The run's own data set has warnings ({plain(kinds)}) not shown here: they concern "
        f"{split} and its training data, not the {report.n_samples} images of "
        f"{code(report.data_dir)} evaluated here. The Metrics tab lists them."
    )


def _logged_by_the_run(ctx: Context, table: pd.DataFrame) -> None:
    """``eval_*`` figures the run logged itself, without an evaluation of this pipeline: shown
    as the run's own numbers, without intervals, plots or test images to back them."""
    if table.empty:
        return
    st.subheader("Test metrics the run logged itself")
    st.caption(
        "These eval_* figures were logged to MLflow by the run itself, not made by this "
        "pipeline's evaluator: which test images they were measured on, and how, is not known, "
        "and they come with no confidence intervals, plots or predictions."
    )
    for warning in dataset_warnings(reports.dataset_stats(ctx.uri, ctx.run)):
        st.warning(plain(warning))  # of the run's data set, whoever measured the figures
    shown = _readable(table[["metric", "value", "overall"]])
    st.dataframe(shown, hide_index=True, width="stretch")


def _out_of_distribution(report, params: dict) -> None:
    """How many test images the model's out-of-distribution check flags, and which; or why the
    evaluation says nothing of it."""
    st.subheader("Images unlike the training data")
    found = report.out_of_distribution
    if not found:
        st.caption(ood.absent_sentence(params))
        return
    st.markdown(plain(ood.flagged_sentence(found)) + ".")
    flagged = ood.flagged_table(found)
    if not flagged.empty:
        listed = len(flagged)
        more = f" (the {listed} most unlike)" if listed < int(found.get("flagged") or 0) else ""
        st.caption(f"Flagged test files{more}, most unlike first; an OOD score above 1 is flagged.")
        st.dataframe(flagged, hide_index=True)


def _misclassified(ctx: Context, paths: set[str]) -> None:
    st.subheader("Most confidently misclassified")
    csv = reports.evaluation_path(ctx.run, contract.MISCLASSIFIED_CSV)
    if csv in paths:
        frame = names_as_written(data.artifact_csv(ctx.uri, ctx.run_id, csv))  # not "'=x": =x
        if "decision" in frame.columns:  # evaluations made before it listed argmax mistakes
            st.caption("As the predictor decides: by the threshold chosen on validation.")
        frame = frame.rename(columns=lambda c: c.replace("_", " ").capitalize())
        st.dataframe(frame.fillna("–"), hide_index=True)
    folder = reports.evaluation_path(ctx.run, contract.MISCLASSIFIED_DIR) + "/"
    images = sorted(p for p in paths if p.startswith(folder))
    if not images and csv not in paths:
        st.caption("The evaluation logged no misclassified samples.")
        return
    cols = st.columns(min(5, max(1, len(images))))
    for i, path in enumerate(images[:10]):
        cols[i % len(cols)].image(
            data.artifact_bytes(ctx.uri, ctx.run_id, path),
            caption=plain(path.rsplit("/", 1)[-1]),
            alt=alt_text.misclassified_image(path),
        )
