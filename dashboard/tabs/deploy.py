"""Choose model tab: choose this run for deployment (registry alias), downloads, audit trail,
what the predictor serves, the model card and how to call the served model."""

from collections.abc import Sequence

import pandas as pd
import streamlit as st
from mlflow.exceptions import MlflowException

from common import PipelineError
from dashboard import handoff, reports
from dashboard.assessment import assess
from dashboard.card_tables import evaluation_table
from dashboard.chosen_on import ChosenOn, since_chosen, version_label
from dashboard.context import Context
from dashboard.markup import plain
from dashboard.model_card import build_model_card, nested, serving_instructions
from dashboard.predictor_lines import pickup_line, predictor_line, switch_warning
from dashboard.tabs.choose_form import DONE, render_choose, show_done
from dashboard.tabs.downloads import render_downloads
from dashboard.trail import (
    choice_tags,
    chosen_here,
    edited_choice,
    id_file_problem,
    interrupted_choice,
    is_recorded,
    public_keys_of,
    trail_store,
)
from jobs import SEALED_UNDER_OTHER_TOKEN, SelectionStore
from runs import get_client, get_run


def _served(ctx: Context) -> tuple[tuple[handoff.Served | None, handoff.Served | None],
                                   ChosenOn | None]:  # fmt: skip
    """Say what the alias names and what the predictor serves; return both (read once per
    view: the choice below compares with them), and what the alias's version records of the
    evaluation it was chosen on when it is of this run (``chosen_on``; None otherwise)."""
    s = ctx.settings
    version = handoff.aliased_version(s)
    target = None if version is None else (str(version.version), version.run_id)
    alias = f"`{s.model_name}@{s.model_alias}`"
    chosen = None
    if target is None:
        st.info(
            f"{alias} names no version: no run has been chosen, or the alias was removed (the "
            "audit trail below lists the choices made)."
        )
    else:
        here = " (this run)" if target[1] == ctx.run_id else ""
        name = ctx.run.get("run_name") if here else _run_name(ctx, target[1])
        named_as = f" {plain(name)}" if name else ""
        st.markdown(f"{alias} is version **{target[0]}**, run{named_as} `{target[1]}`{here}.")
        if here:
            label = version_label(s.model_name, target[0], s.model_alias)
            chosen = ChosenOn.of(label, version.tags or {})
            if since := since_chosen(chosen, ctx.run["tags"]):
                st.warning(since)
    line, body = predictor_line(s.predictor_url, s.pipeline_api_token)
    served = handoff.predictor_serves(s, body)
    if served is None:
        line = pickup_line(s.predictor_url, body, target and target[0], s) or line
    line = line[:1].upper() + line[1:] + "."  # not capitalize(): it lowercases the rest
    stale = bool(body and body.get("stale"))
    # A stale predictor refuses what the alias names (or the alias names nothing): an error
    # to act on, not a caption
    (st.error if stale else st.caption)(plain(line))
    named = target[0] if target else None
    warning = switch_warning(named, served and served[0], s.predictor_poll_s, stale)
    if warning:
        st.warning(plain(warning))
    return (target, served), chosen


def _run_name(ctx: Context, run_id: str) -> str | None:
    """The name of run ``run_id`` (a person knows runs by name), None when it cannot be read."""
    try:
        return get_client(ctx.uri).get_run(run_id).info.run_name
    except (MlflowException, PipelineError):  # a courtesy: the id is shown beside it
        return None


# The audit trail's views: label → (the action recorded, None: all; what none of it means),
# and how many of the latest records.
TRAIL_VIEWS = {
    "choices and downloads": (None, "model has been chosen or downloaded"),
    "choices": ("choose", "model has been chosen"),
    "downloads": ("download", "model has been downloaded"),
}
TRAIL_SIZES = (20, 100, 500, 2000)
LEGACY_DOWNLOAD = "download (chose then)"
"""The action shown for a record of a release before the model registry (it has none)."""


def _trail(ctx: Context, store: SelectionStore, named: handoff.Served | None) -> None:
    st.subheader("Audit trail")
    choices = store.recent(50, action="choose")  # downloads do not hide the last choice
    if warning := _trail_warning(ctx, store, choices, named):
        st.warning(plain(warning))  # an alias moved outside the dashboard: run_id.txt lags too
    elif problem := id_file_problem(ctx.settings.run_id_file, named):
        st.warning(plain(problem))
    left, right = st.columns(2)
    action, none = TRAIL_VIEWS[left.selectbox("Records", list(TRAIL_VIEWS), key="trail_action")]
    limit = right.selectbox("Latest", TRAIL_SIZES, key="trail_limit")
    recent = store.recent(limit, action=action)
    if not recent:
        st.caption(f"No {none} yet.")
        return
    problems = store.problems(recent)
    failed = {key: why for key, why in problems.items() if why != SEALED_UNDER_OTHER_TOKEN}
    if failed:
        st.error(seal_warning(recent, failed))
    if rotated := len(problems) - len(failed):
        st.info(
            f"{rotated} of these records were sealed under a former token or signing key that "
            "PIPELINE_PREVIOUS_TOKENS names by its fingerprint only (the token was rotated "
            "since): they cannot be checked (marked ?); name the former token itself there to "
            "check them."
        )
    rows = [
        {
            "sealed": _sealed(r, problems),
            "selected_at": r["selected_at"],
            "action": r.get("action") or LEGACY_DOWNLOAD,
            "run_id": r["run_id"],
            "version": r.get("version") or "",
            "alias": r.get("alias") or "",
            "by": r.get("selected_by") or "",
            "reason": r.get("reason") or "",
            "confirmed": confirmed_risks(r),
        }
        for r in recent
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if any(not r.get("action") for r in recent):
        st.caption(
            f"{LEGACY_DOWNLOAD}: a record of a release before the model registry, whose download "
            "wrote run_id.txt, which was how a model was chosen then; nothing was registered or "
            "served by it. To deploy its run, choose it here (a model of an older format is "
            "refused: train it again first, python -m trainer --from-run RUN_ID)."
        )
    if len(rows) == limit:
        st.caption(
            f"The latest {limit} records, newest first; the whole trail is the store's "
            "`selections` collection, which is never pruned (docs/operations.md)."
        )


def seal_warning(records: list[dict], problems: dict[str, str]) -> str:
    """What the trail says above its records when some fail their seal's check
    (``SelectionStore.problems``): which, why, and what to do."""
    lines = [
        "- "  # the store's fields, whoever wrote them: literal text
        + plain(
            f"{r['selected_at']}, {r.get('action', 'download')} of run {r['run_id']}: "
            f"{problems[r['selection_id']]}"
        )
        for r in records
        if r["selection_id"] in problems
    ]
    return (
        f"{len(lines)} of these records fail their seal's check: they were edited or added in "
        "the trail's store (MongoDB, or the embedded store's file) by someone who could write "
        "to it, or written without this deployment's token (each line says which). Compare the "
        "store with a backup, find out who has write access, and keep these records as they "
        "are for the investigation.\n\n" + "\n".join(lines)
    )


def _sealed(record: dict, problems: dict[str, str]) -> str:
    """The table's seal column, the mark with its words (a mark alone says nothing to a screen
    reader or a newcomer): checked, fails (the error above says why), sealed under another
    token, stored before records were sealed."""
    if record["selection_id"] in problems:
        other = problems[record["selection_id"]] == SEALED_UNDER_OTHER_TOKEN
        return "? other token" if other else "✗ failed check"
    return "✓ intact" if record.get("seal") else "– before seals"


def unrecorded_move(
    recent: list[dict],
    named: handoff.Served | None,
    model: str,
    alias: str,
    tags: dict[str, str] | None = None,
    recorded: bool = False,
    created_ms: int | None = None,
    key: str | Sequence[str] | None = None,
) -> str | None:
    """What to say when the alias names another version than the last choice recorded for it
    (moved in MLflow's UI or client, which skips the audit trail; or, by the version's ``tags``,
    a choice that ended before its record, unless ``recorded``: ``trail.interrupted_choice``,
    with the version's ``created_ms`` and the token ``key`` that signs choices);
    None when they agree
    or nothing was chosen here for that model and alias."""
    last = _last_choice(recent, model, alias)
    if last is None or named is None or str(last.get("version")) == named[0]:
        return None
    if interrupted := interrupted_choice(tags or {}, named[0], named[1], alias, last, recorded,
                                         created_ms, key):  # fmt: skip
        return interrupted
    return (
        f"The alias {alias!r} names version {named[0]} (run {named[1]}), but the last choice "
        f"recorded here is version {last.get('version')} (run {last['run_id']}, "
        f"{last.get('selected_at')}): the alias was moved outside the dashboard, so nobody is "
        "recorded as having chosen it, nor why. Choose it here to record a reason, or choose "
        "the intended run."
    )


def _trail_warning(
    ctx: Context, store, choices: list[dict], named: handoff.Served | None
) -> str | None:
    """What the trail says before its records when the alias and the last recorded choice of it
    disagree: moved outside the dashboard, or by a choice that ended before its record (told by
    the version's tags, ``unrecorded_move``); or, when they agree, the version's tags edited in
    MLflow since (``edited_choice``). None when all agree, or nothing was chosen here."""
    s = ctx.settings
    last = _last_choice(choices, s.model_name, s.model_alias)
    if named is None or last is None:
        return None
    try:
        version = get_client(ctx.uri).get_model_version(s.model_name, named[0])
    except MlflowException:  # the plain warning (or none), and the rest of the tab
        version = None
    if str(last.get("version")) == named[0]:
        if version is None:
            return None
        return edited_choice(last, version.tags, s.signing_keys(), public_keys_of(s))
    if version is None:
        return unrecorded_move(choices, named, s.model_name, s.model_alias)
    tags = choice_tags(version.tags, version.creation_timestamp)
    recorded = chosen_here(tags) and is_recorded(store, s.model_name, named[0], tags)
    return unrecorded_move(choices, named, s.model_name, s.model_alias, tags, recorded,
                           version.creation_timestamp, s.signing_keys())  # fmt: skip


def _last_choice(recent: list[dict], model: str, alias: str) -> dict | None:
    """The newest record in ``recent`` of a choice that moved ``model``'s ``alias``."""
    return next(
        (
            r
            for r in recent
            if r.get("action") == "choose"
            and r.get("registered_model") == model
            and r.get("alias") == alias
        ),
        None,
    )


def confirmed_risks(record: dict) -> str:
    """What the person confirmed when choosing (an audit reader's first question): a run
    without an evaluation, an interface change, caveats of its figures; empty for none."""
    if record.get("action", "download") != "choose":
        return ""
    risks = []
    if record.get("evaluated") is False:
        risks.append("unevaluated")
    if record.get("interface_change"):
        risks.append(f"interface change: {record['interface_change']}")
    risks += record.get("evaluation_caveats") or []
    return "; ".join(risks)


def model_card_for(ctx: Context, chosen: ChosenOn | None = None) -> str:
    """The run's model card; ``chosen``: what the version of it that the alias names records of
    the evaluation it was chosen on (the card says whether its figures are those)."""
    report = reports.evaluation_report(ctx.uri, ctx.run)
    return build_model_card(
        ctx.run,
        reports.dataset_stats(ctx.uri, ctx.run),
        evaluation_table(ctx.run["metrics"], report),
        reports.faithfulness(ctx.uri, ctx.run),
        reports.preprocessing(ctx.uri, ctx.run),
        report and report.operating_points and report.operating_points.threshold,
        report,
        chosen,
        ctx.settings,
    )


def render_deploy(ctx: Context) -> None:
    st.subheader("Choose this model")
    slot = st.empty()  # what the last press did, said once the alias has been read again
    now, chosen = _served(ctx)
    if done := st.session_state.pop(DONE, None):
        show_done(slot, done, now[0], ctx)
    client = get_client(ctx.uri)
    found = assess(client, get_run(client, ctx.run_id))
    store = trail_store(ctx.settings)  # opened once for the choice, downloads and trail
    render_choose(ctx, found, now, store)
    st.subheader("Download")
    render_downloads(ctx, found, store)
    _trail(ctx, store, now[0])
    if found.problem:
        st.caption("No model card nor serving instructions: this run cannot be deployed.")
        return
    st.subheader("Model card")
    card = model_card_for(ctx, chosen)
    st.download_button(
        "Download model card (Markdown)",
        card,
        file_name=f"model_card_{ctx.run_id[:8]}.md",
        mime="text/markdown",
        key="model_card_download",
    )
    with st.container(border=True):
        st.markdown(nested(card, under=3))  # its title an h4 under this h3; the file keeps h1
    st.subheader("Serve it")
    s = ctx.settings
    pp = reports.preprocessing(ctx.uri, ctx.run)
    st.markdown(serving_instructions(s.model_name, s.model_alias, s.predictor_url, pp))
