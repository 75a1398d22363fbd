"""The form of the Choose model tab: who chooses, why, and the confirmations, each run's own;
and what the page says after a choice (``dashboard.tabs.deploy`` lays out the rest)."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import streamlit as st

from common import PipelineError
from dashboard import choose, data, handoff, reports
from dashboard.assessment import Assessment
from dashboard.context import Context
from dashboard.leakage import leakage_caveat
from dashboard.markup import code, plain
from dashboard.provenance import dataset_warnings
from dashboard.trail import trail_store
from jobs import STORE_ERRORS, SelectionStore, store_unavailable

log = logging.getLogger(__name__)

DONE = "choose_done"  # session key: the Done of the last press, shown after the page reruns
NAME = "choose_by"  # session key of "Your name": the person stays the same from run to run
NAME_LABEL, REASON_LABEL = "Your name (required)", "Why this model? (required)"
TYPED = " (typed)"
"""Marks a ``selected_by`` that was typed into the page, not named by an authenticating proxy."""


TURN = "choose_turn_"  # + run id, session key: how many times the run's form was emptied


@dataclass(frozen=True)
class Keys:
    """The session keys of one run's form. Keyed by the run: Streamlit keeps a widget's value
    by its key, so one key for every run carried a reason and ticked confirmations from the
    run seen before to the next one opened (one click chose it, unevaluated, for that reason).
    And by the form's turn: emptied after a choice, the form's widgets get new keys."""

    run_id: str
    reason: str
    unevaluated: str
    leakage: str
    interface: str

    @classmethod
    def of(cls, run_id: str) -> "Keys":
        turn = st.session_state.get(TURN + run_id, 0)
        suffix = f"_{turn}" if turn else ""
        whats = ("reason", "unevaluated", "leakage", "interface")
        return cls(run_id, *(f"choose_{what}_{run_id}{suffix}" for what in whats))

    def clear(self) -> None:
        """Empty the form (after a choice: a second press must not choose again). By new keys:
        deleting a drawn widget's key leaves the browser showing, and sending back, its old
        value (Streamlit 1.67), so the next press chose again with the old reason and ticks."""
        for key in (self.reason, self.unevaluated, self.leakage, self.interface):
            st.session_state.pop(key, None)
        st.session_state[TURN + self.run_id] = st.session_state.get(TURN + self.run_id, 0) + 1


@dataclass(frozen=True)
class Done:
    """What a press chose, kept for the page's rerun (``DONE``)."""

    message: str
    run_id: str
    model: str
    alias: str
    version: str


def proxy_user(headers: Mapping[str, str], header: str) -> tuple[str | None, str | None]:
    """``(user, None)`` named by the authenticating proxy in the request header ``header``
    (``DASHBOARD_USER_HEADER``), or ``(None, why not)``: no such header, or more than one (a
    client's own beside the proxy's: which is the proxy's is unknown)."""
    values = headers.get_all(header) if hasattr(headers, "get_all") else [headers.get(header)]
    values = [v.strip() for v in values if v and v.strip()]
    if len(values) == 1:
        return values[0], None
    found = "none" if not values else f"{len(values)} of them"
    return None, (
        f"DASHBOARD_USER_HEADER names the request header {header!r} in which the authenticating "
        f"proxy names the user, but this request has {found}: choosing and downloading are off "
        "until the dashboard is reached through that proxy"
    )


def typed_user(name: str) -> str | None:
    """The ``selected_by`` of a name typed into the page: marked as typed (nobody was
    authenticated); None when nothing was typed."""
    name = " ".join(name.split())
    return name + TYPED if name else None


def person(ctx: Context) -> tuple[str | None, str | None]:
    """``(who, None)`` chooses or downloads: the proxy's user when ``DASHBOARD_USER_HEADER`` is
    set, else the "Your name" typed (marked typed; None when empty); ``(None, why)`` when the
    proxy's header is missing (nobody may be recorded)."""
    header = ctx.settings.dashboard_user_header
    if header:
        return proxy_user(st.context.headers, header)
    return typed_user(st.session_state.get(NAME) or ""), None


def _who(ctx: Context) -> str | None:
    """Who chooses: the proxy's user when ``DASHBOARD_USER_HEADER`` is set, else the "Your
    name" field (never the server account: every choice would read ``root``). None, said on the
    page, when the proxy's header is missing; the typed name may still be empty."""
    header = ctx.settings.dashboard_user_header
    if header:
        user, problem = person(ctx)
        if problem:
            st.error(plain(problem) + ".")
            return None
        named_by = f"named by the proxy's {code(header)} header"
        st.markdown(f"You choose as **{plain(user)}** ({named_by}).")
        return user
    typed = st.text_input(
        NAME_LABEL,
        key=NAME,
        max_chars=choose.NAME_MAX_CHARS,
        placeholder="Type your name",
        autocomplete="name",
    )
    st.markdown(
        "Kept with the choice as typed, marked “(typed)”: this dashboard does not sign people in "
        "(behind an authenticating proxy, DASHBOARD_USER_HEADER names its user instead)."
    )
    return typed_user(typed) or ""


def _shown_warnings(ctx: Context, found: Assessment, change: str | None) -> None:
    """What the person must know before choosing: no evaluation, caveats, data, interface."""
    if not found.evaluated:
        st.warning(
            "This run has not been evaluated: nothing is known about its accuracy on test data. "
            "Evaluate it first (Evaluation tab), or confirm below."
        )
    report = reports.evaluation_report(ctx.uri, ctx.run)  # cached, as the Evaluation tab's
    for caveat in handoff.caveats_of(reports.evaluation_path(ctx.run), report)[1]:
        st.warning(f"About its test figures: {plain(caveat)}.")
    for warning in dataset_warnings(reports.dataset_stats(ctx.uri, ctx.run), found.evaluated):
        st.warning(f"About its data: {plain(warning)}")  # as the Metrics and Evaluation tabs say
    if change:
        st.warning(f"{plain(change)}. {handoff.CLIENTS_BREAK}.")


def _missing(who: str, reason: str, confirmed: bool, clean: bool, ready: bool) -> list[str]:
    """What the form still lacks, one sentence each (the missing confirmations in one)."""
    found = [
        (who, "Write your name: the audit trail records who chose."),
        (reason.strip(), "Write why you choose this model; the reason is kept with the choice."),
    ]
    ticks = [
        run
        for given, run in (
            (confirmed, "without an evaluation"),
            (clean, "whose data may leak across splits"),
            (ready, "that changes what clients get"),
        )
        if not given
    ]
    missing = [say for given, say in found if not given]
    if ticks:
        missing.append(f"Tick the confirmation to choose a run {'; a run '.join(ticks)}.")
    return missing


def render_choose(ctx: Context, found: Assessment, now: tuple, store: SelectionStore) -> None:
    """The form: warnings, who, why, confirmations, and the button that chooses."""
    if found.problem:
        st.warning(f"This run cannot be chosen for deployment: {plain(found.problem)}.")
        return
    change = handoff.interface_change(ctx.settings, ctx.run_id, now).text
    _shown_warnings(ctx, found, change)
    report = reports.evaluation_report(ctx.uri, ctx.run)  # of another folder: not its leak's
    leakage = leakage_caveat(reports.dataset_stats(ctx.uri, ctx.run), ctx.run["tags"], report)
    who = _who(ctx)
    if who is None:
        return
    keys = Keys.of(ctx.run_id)
    reason = st.text_area(REASON_LABEL, key=keys.reason, max_chars=choose.REASON_MAX_CHARS)
    confirmed = found.evaluated or st.checkbox(
        "I choose it without an evaluation", key=keys.unevaluated
    )
    clean = not leakage or st.checkbox(
        "I choose it although its test figures may be optimistic (possible leakage)"
        if found.evaluated
        else "I choose it although its test split shares images or patients with its training "
        "data (possible leakage)",
        key=keys.leakage,
    )
    ready = not change or st.checkbox(
        "The clients of the served model are ready for this change", key=keys.interface
    )
    if not st.button("Choose this model", key="choose_model", type="primary"):
        return
    if missing := _missing(who, reason, confirmed, clean, ready):
        st.warning(" ".join(missing))  # every one at once, not one per press
        return
    try:
        with st.spinner("Registering the model and moving the alias…"):
            done = choose.choose_run(
                ctx.run_id, reason, ctx.settings, store, allow_unevaluated=True, selected_by=who,
                allow_interface_change=bool(change),  # what was shown: not a blanket yes
                allow_leakage=bool(leakage),
            )  # fmt: skip
    except STORE_ERRORS as exc:  # before the alias moved (a failed record after it says so)
        st.error(
            f"Nothing was chosen by this press: {plain(store_unavailable(ctx.settings, exc))} "
            "Press Choose again once it is free; the form keeps what you wrote."
        )
        return
    keys.clear()  # the rerun draws an empty form, under new keys
    st.session_state[DONE] = Done(
        f"Run {done.run_id} {'was already' if done.already else 'is'} "
        f"{done.registered_model} version {done.version} (alias {done.alias})"
        f"{'; its tags now give this reason and evaluation' if done.already else ''}; "
        f"`{done.run_id_file}` names it. The predictor serves it within "
        f"{ctx.settings.predictor_poll_s:.0f} s. (Chosen at {datetime.now(UTC):%H:%M:%S} UTC: "
        "a choice someone makes later shows here once the page reloads, or press Refresh.)",
        done.run_id, done.registered_model, done.alias, done.version,
    )  # fmt: skip
    data.chosen.clear()  # the leaderboard's mark too, and what the version was chosen on
    data.chosen_on.clear()
    st.rerun()  # the alias, predictor and audit lines above now show the choice


def replaced_by(done: Done, named: handoff.Served | None, choices: list[dict] | None) -> str | None:
    """What to say instead of success when the alias, read again after the choice, names
    another version than the one chosen (another session chose since, or the alias was moved
    or removed); None when it names the chosen version. ``choices``: the audit trail's recent
    choices, newest first, to say who replaced it (None: the trail could not be read)."""
    if named is not None and named[0] == done.version:
        return None
    yours = (
        f"Run {done.run_id} became {done.model} version {done.version}, but the alias "
        f"{done.alias!r} no longer names it"
    )
    if named is None:
        return f"{yours}: it names no version now (removed since). Clients get no new version."
    later = next(
        (
            r
            for r in choices or []
            if r.get("registered_model") == done.model
            and r.get("alias") == done.alias
            and str(r.get("version")) == named[0]
        ),
        None,
    )
    by = (
        f", chosen by {later.get('selected_by') or 'someone not recorded'} at "
        f"{later.get('selected_at')} for {later.get('reason')!r}"
        if later
        else " (the audit trail, which would say who chose it, cannot be read now)"
        if choices is None
        else ", moved outside the dashboard (no choice of it is recorded)"
    )
    return (
        f"{yours}: a later choice replaced yours. It names version {named[0]} (run {named[1]})"
        f"{by}. Your choice is in the audit trail; choose again if yours should be served."
    )


def show_done(slot, done: Done, named: handoff.Served | None, ctx: Context) -> None:
    """The message of the last press in ``slot`` (an ``st.empty`` above the alias line). The
    audit trail is read only to say who replaced the choice; when it cannot be read, the
    message says so rather than the whole tab failing (the form below still works)."""
    if replaced_by(done, named, []) is None:
        slot.success(done.message)
        return
    try:
        choices = trail_store(ctx.settings).recent(50, action="choose")
    except (*STORE_ERRORS, PipelineError) as exc:  # opening it (trail_store), or reading it
        choices = None
        log.warning("audit trail unreadable after a choice: %s", exc)
    slot.warning(plain(replaced_by(done, named, choices)))  # quotes another person's reason
