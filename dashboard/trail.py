"""The audit trail against the registry: a choice that ended after its alias moved.

A choice registers (or retags) a version with its tags (reason, who, when, the evaluation and
its figures), moves the alias, writes ``run_id.txt`` and then stores its record. Ended in
between (``kill -9``, a pod evicted, the store down), the alias names a version that the trail
does not: the predictor serves it while the trail names the choice before. The version's tags
still say who chose it and why, so the next choice records it from them (``record_interrupted``)
and the Choose model tab tells it apart from an alias moved outside the dashboard
(``interrupted_choice``), which has no such tags.
"""

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from mlflow.exceptions import MlflowException
from pydantic import ValidationError

from common import ServiceUnavailable, Settings, metric_keys
from dashboard.handoff import evaluation_record
from jobs import STORE_ERRORS, SelectionStore, get_database, store_unavailable
from runs import (
    CONFIRMED_TAG,
    DIGEST_KEY,
    ED25519_TAG,
    FILES_KEY,
    SIGNATURE_TAG,
    contract,
    public_key_of,
    schemas,
    signed_choice,
    verified_choice,
)

RECOVERED = (
    "the choice ended after its alias moved and before this record was stored (interrupted); "
    "recorded from the version's tags by the next choice"
)
"""The ``recovered`` field of a record written from a version's tags."""
_AT_REGISTRATION_NOTE = (
    "; its time is the version's registration (a choice by a version before 2026-12-06 tagged none)"
)
_LOOK_BACK = 500  # choices of the model searched for the version's own record (newest first)
log = logging.getLogger(__name__)


def trail_store(settings: Settings) -> SelectionStore:
    """The audit trail, its records sealed and checked under the deployment's signing key (those
    from before a rotation under the former keys that ``PIPELINE_PREVIOUS_TOKENS`` declares)."""
    try:  # it opens (and may first create) its collection: a busy or absent store says so
        return SelectionStore(
            get_database(settings), key=settings.sealing_key,
            former=settings.previous_tokens(),
        )  # fmt: skip
    except STORE_ERRORS as exc:
        raise store_unavailable(settings, exc) from exc


AT_REGISTRATION = "selected_at_from_registration"
"""Set by ``choice_tags`` (never stored in MLflow): ``selected_at`` is the version's registration
time, for a choice made before choices tagged their time."""


def choice_tags(tags: Mapping[str, str], created_ms: int | None) -> dict[str, str]:
    """A version's ``tags``, with ``selected_at`` (and ``AT_REGISTRATION``) from its
    registration time ``created_ms`` when a choice by a version before 2026-12-06 tagged it: those
    wrote ``selected_by``, ``run_id`` and ``reason`` but no time, and registered the version
    within the choice, seconds before their record. Other tags are returned as they are."""
    found = dict(tags)
    if (found.get("selected_by") and found.get("run_id") and not found.get("selected_at")
            and created_ms):  # fmt: skip
        when = datetime.fromtimestamp(created_ms / 1000, UTC)
        found.update({"selected_at": when.isoformat(timespec="milliseconds"),
                      AT_REGISTRATION: "true"})  # fmt: skip
    return found


def chosen_here(tags: Mapping[str, str]) -> bool:
    """Whether a version's ``tags`` are a choice's (``dashboard.choose`` writes them before
    the alias moves); a version registered and aliased in MLflow's own UI has none."""
    return bool(tags.get("selected_by") and tags.get("selected_at") and tags.get("run_id"))


_SKEW_S = 120  # clocks of the chooser's machine and MLflow's may differ by this much


def _time(value) -> datetime | None:
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def tags_problem(
    tags: Mapping[str, str],
    run_id: str | None,
    created_ms: int | None = None,
    last_choice_at=None,
    key: str | Sequence[str] | None = None,
) -> str | None:
    """Why a version's choice ``tags`` cannot be a choice of that version (of run ``run_id``,
    registered at ``created_ms``, the last recorded choice of its model made at
    ``last_choice_at``), or None when they can. Anyone who can write to MLflow can set tags;
    these make no record and no "interrupted choice" when they name another run, a time in the
    future, before the version was registered or before the last recorded choice (a choice
    takes its time inside the lock that records them in turn), or, with ``key`` (the token),
    carry no valid ``choice_signature``."""
    if run_id is not None and tags.get("run_id") != run_id:
        return f"they name run {tags.get('run_id')!r}, the version is of run {run_id}"
    when = _time(tags.get("selected_at"))
    if when is None:
        return f"their selected_at {tags.get('selected_at')!r} is no time"
    if when.timestamp() > time.time() + _SKEW_S:
        return f"their selected_at {tags['selected_at']} lies in the future"
    if created_ms is not None and when.timestamp() < created_ms / 1000 - _SKEW_S:
        return f"their selected_at {tags['selected_at']} is before the version was registered"
    last = _time(last_choice_at) if last_choice_at is not None else None
    if last is not None and when.timestamp() < last.timestamp() - _SKEW_S:
        return f"their selected_at {tags['selected_at']} is before the last choice recorded"
    if key and not signed_choice(tags, key):
        return "they carry no valid choice_signature (made with this deployment's signing key)"
    return None


def signatures_in(tags: Mapping[str, str]) -> list[str]:
    """The signature tags a choice's ``tags`` carry (a record's ``signatures``)."""
    return [t for t in (SIGNATURE_TAG, ED25519_TAG) if tags.get(t)]


def public_keys_of(settings: Settings) -> list[str]:
    """The Ed25519 public keys whose choices this deployment's predictors accept
    (``PIPELINE_CHOICE_PUBLIC_KEY`` and former ones) and that of the private key it signs with:
    what a version's ``choice_signature_ed25519`` is checked against; empty without either."""
    private = settings.choice_private_key
    return [*settings.choice_public_keys(), *([public_key_of(private)] if private else [])]


def edited_choice(
    record: Mapping,
    tags: Mapping[str, str],
    key: str | Sequence[str] | None,
    public_keys: Sequence[str] = (),
) -> str | None:
    """Why version ``tags`` no longer say what its last recorded choice (``record``) said: its
    run, chooser or reason changed in MLflow since (anyone who can write to MLflow can set
    tags), or, with the token ``key``, its ``choice_signature`` does not match the other signed
    tags (the time, the weights' digest), or, with ``public_keys`` (``public_keys_of``), its
    ``choice_signature_ed25519`` does not, or a signature the choice set (the record's
    ``signatures``) is gone; None when they agree. The record, not the tags, is the audit
    trail."""
    changed = [
        name
        for name in ("run_id", "selected_by", "reason")
        if (record.get(name) or "")[:5000] != (tags.get(name) or "")
    ]
    # a signature the choice set, removed since (without it, tags edited after would pass)
    changed += [t for t in record.get("signatures") or [] if not tags.get(t)]
    unverified = ""  # a signature that no longer verifies: an edit, or a key given up since
    # (no signature at all, and none recorded: chosen before the token was set)
    if not changed and key and tags.get(SIGNATURE_TAG) and not signed_choice(tags, key):
        changed, unverified = ["choice_signature"], "PIPELINE_PREVIOUS_TOKENS"
    signed = bool(public_keys and tags.get(ED25519_TAG))  # what a predictor checks
    if not changed and signed and not verified_choice(tags, public_keys):
        changed, unverified = [ED25519_TAG], "PIPELINE_CHOICE_PREVIOUS_PUBLIC_KEYS"
    if not changed:
        return None
    rotated = (
        f" (unless it was signed with a key this deployment no longer holds: keep a rotated key "
        f"in {unverified})"
        if unverified
        else ""
    )
    return (
        f"The tags of version {record.get('version')} were changed in MLflow since it was chosen "
        f"here ({', '.join(changed)} no longer as recorded): clients reading the registry see "
        "another choice than the audit trail below, which keeps the recorded one. Choose the "
        f"run again to tag the version anew, and find out who edited it{rotated}."
    )


def is_recorded(store, model: str, version: str, tags: Mapping[str, str]) -> bool:
    """Whether the trail holds the choice of ``model``'s ``version`` that its ``tags`` (as
    ``choice_tags`` gives them) say was made at their ``selected_at``."""
    return _recorded_in(store.recent(_LOOK_BACK, action="choose", model=model), version, tags)


def _recorded_in(records: list[dict], version: str, tags: Mapping[str, str]) -> bool:
    if tags.get(AT_REGISTRATION):  # no time of the choice: any record of the version's run
        return any(str(r.get("version")) == version and r.get("run_id") == tags["run_id"]
                   for r in records)  # fmt: skip
    # a record's time is naive UTC, a tag's has +00:00: compared as times (text when not one)
    selected_at = tags["selected_at"]
    tagged = _time(selected_at)

    def same(when) -> bool:
        return _time(when) == tagged if tagged else when == selected_at

    return any(str(r.get("version")) == version and same(r.get("selected_at")) for r in records)


def lineage(run, digest: str | None, files: str | None = None) -> dict[str, str]:
    """What the chosen model is made of, as ``run`` recorded it (``SelectionRecord.lineage``):
    its weights' ``digest``, its ``files``' digest, its data's hashes and its code's commit."""
    found = {
        "weights_digest": digest,
        FILES_KEY: files,
        "dataset_hash": run.data.params.get("dataset_hash"),
        "test_data_hash": run.data.tags.get(contract.TEST_DATA_TAG),
        "dataset_groups_hash": run.data.params.get("dataset_groups_hash"),
        "git_commit": run.data.tags.get("mlflow.source.git.commit"),
        "git_commit_source": run.data.tags.get(contract.GIT_SOURCE_TAG),
        "git_dirty": run.data.tags.get(contract.GIT_DIRTY_TAG),
        "git_diff_sha256": run.data.tags.get(contract.GIT_DIFF_TAG),
    }
    return {k: v for k, v in found.items() if v}


def record_interrupted(store, client, version, model: str, alias: str,
                       key: str | Sequence[str] | None = None) -> dict | None:  # fmt: skip
    """Store the record of the choice that made ``version`` (a ``ModelVersion``; the alias
    ``alias`` of ``model`` names it) when its tags are a choice's that the trail lacks; the
    stored record, or None when there is nothing to recover (or its tags, edited by hand, do
    not make one: logged, and the choice goes on). The trail is read in any case, so that a
    store that is down stops the choice before its alias moves; MLflow is asked for the run's
    experiment only when there is a record to write."""
    tags = choice_tags(version.tags or {}, version.creation_timestamp)
    if not chosen_here(tags):
        store.recent(1, action="choose", model=model)
        return None
    records = store.recent(_LOOK_BACK, action="choose", model=model)  # newest first
    if _recorded_in(records, str(version.version), tags):
        return None
    last_at = records[0].get("selected_at") if records else None
    if problem := tags_problem(tags, version.run_id, version.creation_timestamp, last_at, key):
        log.warning("%s version %s: its choice tags are no choice of it (%s); not recovered",
                    model, version.version, problem)  # fmt: skip
        return None
    try:
        run = client.get_run(version.run_id)
    except MlflowException:  # its run deleted: the record names no experiment
        run = None
    figures = metric_keys.eval_figures(tags)
    caveat = tags.get("evaluation_caveat")
    try:
        record = schemas.SelectionRecord(
            run_id=tags["run_id"],
            action="choose",
            model_uri=f"models:/{model}/{version.version}",
            experiment_id=run.info.experiment_id if run is not None else "",
            metrics=figures,
            registered_model=model,
            version=str(version.version),
            alias=alias,
            reason=tags.get("reason"),
            evaluated=tags.get("evaluated") == "true" if "evaluated" in tags else None,
            selected_at=datetime.fromisoformat(tags["selected_at"]),
            selected_by=tags["selected_by"],
            evaluation_caveats=[caveat] if caveat else [],
            interface_change=tags.get(CONFIRMED_TAG),
            evaluation=evaluation_record(tags),  # as the choice itself records it
            lineage=lineage(run, tags.get(DIGEST_KEY), tags.get(FILES_KEY))
            if run is not None
            else {},
            signatures=signatures_in(tags),
            recovered=RECOVERED + (_AT_REGISTRATION_NOTE if tags.get(AT_REGISTRATION) else ""),
        )
    except (ValueError, ValidationError) as exc:  # a tag edited in MLflow's UI
        log.warning("%s version %s: its choice tags do not make a record (%s); not recovered",
                    model, version.version, exc)  # fmt: skip
        return None
    return store.record(record)


def complete_trail(store, client, version, model: str, alias: str,
                   key: str | Sequence[str] | None = None) -> dict | None:  # fmt: skip
    """Before a choice moves the alias off ``version`` (what it names now): store the record of
    the choice that made it if that choice ended unrecorded (``record_interrupted``). Reading
    the trail first also stops a choice whose store is down before its alias moves.

    Raises:
        ServiceUnavailable: The store is down (nothing has moved yet).
    """
    try:
        return record_interrupted(store, client, version, model, alias, key)
    except STORE_ERRORS as exc:
        raise ServiceUnavailable(
            f"the selection store cannot be read ({type(exc).__name__}: {exc}); nothing was "
            "chosen: check MONGO_URI (or STORE_DIR) and choose again"
        ) from exc


def interrupted_choice(tags: Mapping[str, str], version: str, run_id: str | None, alias: str,
                       last: Mapping, recorded: bool, created_ms: int | None = None,
                       key: str | Sequence[str] | None = None) -> str | None:  # fmt: skip
    """What to say when the alias names ``version`` (of ``run_id``, with ``tags``) that a choice
    made but whose record is missing (``recorded`` False; the trail's ``last`` choice is
    another); None when its tags are no choice's, or its choice is recorded (the alias was moved
    outside the dashboard: back to a version chosen before, say)."""
    if not chosen_here(tags) or recorded:
        return None
    if tags_problem(tags, run_id, created_ms, last.get("selected_at"), key):
        return None
    at = f"at {tags['selected_at']}"
    if tags.get(AT_REGISTRATION):
        at = f"when it was registered, {tags['selected_at']}"
    return (
        f"The alias {alias!r} names version {version} (run {run_id}), chosen by "
        f"{tags['selected_by']} {at} ({tags.get('reason', '')!r}) by its "
        f"tags, but that choice ended before it was recorded here (interrupted): the last "
        f"choice recorded is version {last.get('version')} (run {last.get('run_id')}). The next "
        "choice records it from the version's tags; choose its run again to record it now."
    )


def id_file_problem(run_id_file: Path, named: tuple[str, str | None] | None) -> str | None:
    """Why ``run_id.txt`` (``run_id_file``) does not name the run of the version the alias
    names (``named``: version, run id), or None when it does, or either is unknown. Every
    choice writes both under one lock; something else wrote one of them (an older release's
    Download, a hand, a choice that ended between the two)."""
    if named is None or not named[1]:
        return None
    try:
        written = run_id_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None  # none yet, or unreadable: the choice that writes it says so
    if not written or written == named[1]:
        return None
    return (
        f"{run_id_file} names run {written}, but the alias, which the predictor follows, names "
        f"version {named[0]} of run {named[1]}: something other than a choice here wrote one of "
        "them (an earlier release's Download, an edit by hand, an alias moved in MLflow). "
        "Choose the run that should be served, which writes both."
    )
