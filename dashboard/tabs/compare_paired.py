"""Compare's "Is the difference real?": each compared run against the open one on the same test
images. The most probable class's AUC and accuracy (``dashboard.paired``); for two-class runs the
served decision, each run at its own threshold, as sensitivity and specificity
(``dashboard.paired_decision``); and for a run without an evaluation, how to make one.

Figures are named by ``readable.evaluated`` and written by ``readable.figure`` (a difference with
its sign), as every tab writes them."""

import pandas as pd
import streamlit as st

from common import NotFound
from dashboard import data, leaderboard, paired, paired_decision, readable, reports
from dashboard.commands import cli_code
from dashboard.context import Context
from dashboard.leakage import SplitOverlap
from dashboard.markup import plain
from runs import contract, schemas

# What the paired figures' names add: the accuracy paired is the argmax's (as eval_accuracy),
# not that of the decision a two-class model is served by at its threshold.
PAIRED_NOTES = {"accuracy": " (most probable class)"}
EVALUATION_TAB = "Evaluation"  # its name in dashboard.page.TABS (the key of its st.tabs)


def signed(value: float | None, digits: int = 4) -> str:
    """``+0.0123``, ``-0.5``, ``0``: ``readable.figure`` with the sign of a difference."""
    text = readable.figure(value, digits)
    return f"+{text}" if value is not None and value > 0 and text != "0" else text


def interval(low: float | None, high: float | None) -> str:
    """``-1 to -0.307``: a difference's 95 % interval, bounds to ``readable.BOUND_DIGITS``."""
    if low is None or high is None:
        return "–"
    return f"{signed(low, readable.BOUND_DIGITS)} to {signed(high, readable.BOUND_DIGITS)}"


def column(run: dict) -> str:
    """How the tables name a run: ``name (id6)``."""
    return f"{run['run_name']} ({run['run_id'][:6]})"


def _predictions(ctx: Context, run: dict) -> pd.DataFrame | None:
    if not reports.has_evaluation(run):
        return None
    path = reports.evaluation_path(run, contract.PREDICTIONS_CSV)
    try:
        raw = data.artifact_bytes(ctx.uri, run["run_id"], path)
    except NotFound:
        return None
    return paired.read_predictions(raw)


@st.cache_data(ttl=3600, show_spinner="Bootstrapping the paired differences…")
def _differences(this: pd.DataFrame, other: pd.DataFrame) -> list[paired.Difference]:
    return paired.paired_differences(this, other)


def _open_to_evaluate(run_id: str, this_id: str) -> None:
    """Button callback (before the widgets are drawn): ``run_id`` open on its Evaluation tab,
    compared with the run open now (``this_id``), so that Compare pairs them once evaluated."""
    if run_id != this_id:
        others = [i for i in st.session_state.get("compare_ids", []) if i != run_id]
        st.session_state.compare_ids = [this_id, *others]
        st.session_state.run_id = run_id
    st.session_state.tab = EVALUATION_TAB


def evaluate_step(ctx: Context, run: dict) -> str:
    """What ``run`` (the open run or a compared one) lacks to be paired, and the next step,
    worded as the Evaluation tab words it (``job_ui.job_controls``, ``context.missing``)."""
    this = run["run_id"] == ctx.run_id
    who = "This run" if this else plain(column(run))
    if reports.has_evaluation(run):  # published, but not its predictions: an older evaluator
        lacks = f"{who}'s evaluation lists no predictions per image"
    else:
        lacks = f"{who} has no evaluation yet"
    if not leaderboard.can_deploy(run):
        return (
            f"{lacks}, and none can be made: {plain(leaderboard.why_not_deployable(run))} (the "
            "evaluator needs a finished run of `python -m trainer`)."
        )
    command = cli_code(ctx.settings, "evaluator", run["run_id"])
    if not ctx.services_see_this_server:
        how = f"run {command}"
    else:
        press = "Run again" if reports.has_evaluation(run) else "Evaluate this run"
        where = "on the Evaluation tab" if this else "on its Evaluation tab (the button below)"
        how = f"press {press} {where} or run {command}"
    return f"{lacks} — {how}; Compare then pairs the runs' test predictions image by image."


def _offer_evaluation(ctx: Context, run: dict) -> None:
    """Say how ``run`` gets the evaluation Compare needs; a button to its Evaluation tab where
    that tab can start one."""
    st.info(evaluate_step(ctx, run))
    if leaderboard.can_deploy(run) and ctx.services_see_this_server:
        this = run["run_id"] == ctx.run_id
        st.button(
            "Open the Evaluation tab" if this else f"Open {plain(run['run_name'])} to evaluate it",
            key=f"compare_evaluate_{run['run_id']}",
            on_click=_open_to_evaluate,
            args=(run["run_id"], ctx.run_id),
        )


def render_paired(ctx: Context, runs: list[dict]) -> None:
    """Whether each compared run's test figures really differ from this run's."""
    st.subheader("Is the difference real?")
    this = _predictions(ctx, ctx.run)
    if this is None:  # nothing to pair with: this run's evaluation comes first
        _offer_evaluation(ctx, ctx.run)
        return
    mine = reports.evaluation_report(ctx.uri, ctx.run)
    rows, served, notes, waiting, classes = [], [], [], [], None
    for run in runs[1:]:
        other = _predictions(ctx, run)
        if other is None:
            waiting.append(run)
            continue
        report = reports.evaluation_report(ctx.uri, run)
        evaluated = [mine, report]
        why = paired.why_not_paired(this, other) or paired.why_other_data(*evaluated)
        if why:
            notes.append(f"{plain(column(run))} is not compared image by image: {plain(why)}.")
            continue
        classes = paired.classes_of(this)
        tta = [getattr(r, "tta", None) for r in evaluated]
        # the runs' own test splits, evaluated, that share images with their training data
        pair = zip((ctx.run, run), evaluated, strict=True)
        leaked = tuple(leaderboard.basis_of(r, found).overlap for r, found in pair)
        if (tta[0] or "none") != (tta[1] or "none"):
            notes.append(
                f"{plain(column(run))} was evaluated with test-time augmentation "
                f"{tta[1] or 'none'!r}, this run with {tta[0] or 'none'!r}: the differences "
                "include that."
            )
        names = (column(ctx.run), column(run))
        for diff in _differences(this, other):
            rows.append(
                {
                    "Run": plain(names[1]),
                    "Metric": readable.evaluated(diff.metric) + PAIRED_NOTES.get(diff.metric, ""),
                    "Difference": signed(diff.value),
                    "95% interval": interval(diff.ci_low, diff.ci_high),
                    "Verdict": plain(verdict(diff, *names, tta, leaked)),
                }
            )
        if len(classes) == 2:
            points = tuple(paired_decision.threshold_of(r) for r in evaluated)
            chose = tuple(
                bool((r.get("params") or {}).get("decision_threshold")) for r in (ctx.run, run)
            )
            if why := paired_decision.why_not_served(names, points, chose):
                notes.append(
                    "Sensitivity and specificity at each run's own decision threshold are not "
                    f"shown for {plain(names[1])}: {plain(why)}."
                )
            else:
                served += _served_rows(names, this, other, points, tta, leaked)
    if rows:  # said only above a comparison made
        _argmax_table(ctx, rows, len(this))
    if served:
        _served_table(served)
    elif classes is not None and len(classes) != 2:
        st.info(
            "Sensitivity and specificity at each run's own decision threshold (the served "
            f"decision) apply to two-class runs: these runs predict {len(classes)} classes and "
            "are served by the most probable class, whose accuracy is compared above."
        )
    for note in notes:
        st.info(note)
    for run in waiting:
        _offer_evaluation(ctx, run)


def _argmax_table(ctx: Context, rows: list[dict], images: int) -> None:
    st.caption(
        f"Other run − {plain(ctx.run['run_name'])} on the same {images} test images, with "
        "paired bootstrap 95 % intervals. Accuracy here is of the most probable class "
        "(argmax, as eval_accuracy), not of the decision a two-class model is served with at "
        "its own threshold (eval_thr_*), which is paired below as sensitivity and specificity. "
        "For accuracy the McNemar mid-p test on the images the runs get differently decides the "
        "verdict (mid-p, as Fagerland et al. 2013 recommend: the exact McNemar test is "
        "conservative when few images differ and misses real differences); when few differ, the "
        "bootstrap interval is too narrow and may exclude 0 while the test finds no clear "
        "difference. Where the verdict says no clear difference, this test set cannot tell the "
        "two models apart, however the ★ falls."
    )
    # st.table: its cells wrap, so a long verdict is read whole (a dataframe cut it off)
    st.table(pd.DataFrame(rows), hide_index=True, alt="Paired differences from this run")


def _served_rows(
    names: tuple[str, str],
    this: pd.DataFrame,
    other: pd.DataFrame,
    points: tuple[schemas.ThresholdPoint, schemas.ThresholdPoint],
    tta: list[str | None],
    leaked: tuple[SplitOverlap, SplitOverlap],
) -> list[dict]:
    positive = points[0].positive_class
    of = {"sensitivity": f"images of {positive!r}", "specificity": "other images"}
    rows = []
    for rate in paired_decision.served_rates(this, other, points):
        rates = (rate.this_rate, rate.other_rate)
        rights = (rate.both + rate.only_this, rate.both + rate.only_other)
        shown = [
            _served_rate(share, right, rate.images, p.threshold)
            for share, right, p in zip(rates, rights, points, strict=True)
        ]
        rows.append(
            {
                "Run": plain(names[1]),
                "Measure": plain(f"{rate.measure} ({rate.images} {of[rate.measure]})"),
                "This run": shown[0],
                "Other run": shown[1],
                "Difference": signed(rate.value),
                "95% interval": interval(*(rate.interval or (None, None))),
                "Verdict": plain(verdict(rate, *names, tta, leaked)),
            }
        )
    return rows


def _served_rate(share: float | None, right: int, images: int, threshold: float) -> str:
    """``1 (4/4), P ≥ 0.5``: a run's sensitivity or specificity at its own threshold."""
    if share is None:
        return "–"
    return f"{readable.figure(share)} ({right}/{images}), P ≥ {readable.figure(threshold)}"


def _served_table(rows: list[dict]) -> None:
    st.markdown("**The served decision: each run at its own threshold**")
    st.caption(
        "Each two-class run decides its positive class where that class's probability reaches "
        "the threshold chosen on its validation data (P ≥ …), as the predictor serves it. "
        "Sensitivity: the share of the positive class's test images decided positive; "
        "specificity: the share of the other images decided negative. Other run − this run, "
        "with the 95 % Newcombe interval for paired proportions; the McNemar mid-p test on the "
        "images the two decisions get differently decides the verdict."
    )
    st.table(pd.DataFrame(rows), hide_index=True, alt="Paired sensitivity and specificity")


def verdict(
    diff: paired.Difference | paired_decision.PairedRate,
    this: str,
    other: str,
    tta: list[str | None],
    leaked: tuple[SplitOverlap, SplitOverlap] = (SplitOverlap(), SplitOverlap()),
) -> str:
    """``diff.verdict`` of two evaluations of the same images, unless they were not made
    alike: ``tta`` (of ``this`` and ``other``; None: none) differs, and neither is better.

    ``leaked`` (of ``this`` and ``other``): what a run's test split shares with its training
    data (``Basis.overlap``; empty: nothing); its figures are then optimistic. Such a run is not
    called better than one without those copies: scoring higher on images it was trained on
    shows nothing. A leaked run found worse stays worse (its figures only flatter it), said with
    the caveat. Two runs sharing the very same copies (one data set, as BreastMNIST's own
    duplicates across its splits) are flattered alike: the verdict stands, with the caveat.
    """
    mine, theirs = (t or "none" for t in tta)
    if mine != theirs:
        return (
            f"not like for like: {other} was evaluated with tta {theirs!r}, {this} with "
            f"{mine!r}, and the difference includes that"
        )
    names = (this, other)
    # one data set's own copies; two runs whose leakage is unknown are not known to be alike
    alike = bool(leaked[0]) and leaked[0] == leaked[1] and not leaked[0].unknown
    better = diff.better()
    if alike:
        said = f"{diff.verdict(this, other)}; both runs' test figures are optimistic alike "
        said += f"({leaked[0].why})"
    elif better is not None and leaked[better]:
        said = (
            f"not shown better: {names[better]} scores higher, but its test figures are "
            f"optimistic ({leaked[better].why})"
        )
    else:
        said = diff.verdict(this, other)
        said += "".join(
            f"; {name}'s test figures are optimistic ({found.why})"
            for name, found in zip(names, leaked, strict=True)
            if found
        )
    if mine != "none":
        said += f" (both with tta {mine!r}, which the served models do not do)"
    return said
