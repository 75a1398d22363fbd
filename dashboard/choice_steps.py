"""The steps of choosing a run for deployment, in the order ``dashboard.choose.choose_run``
takes them:

1. ``check_run``: the checks before choosing (``Checked``): the run can be served and is
   evaluated, changes nothing for the clients of the served version, keeps its test images out
   of its train and val splits, and its model loads; each refused unless confirmed.
2. ``choice_tags``: what the registered version is tagged with (reason, figures, weights).
3. ``write_registry``, in turn with other choices: register the run's model, or retag the
   version of it chosen before, sign the choice and point the alias at it (``Registered``).
4. ``selection_record``: the choice's audit record, for the ``selections`` collection.
"""

from dataclasses import dataclass
from datetime import datetime

import mlflow
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from common import InvalidInput, ServiceUnavailable, Settings, fingerprint, metric_keys, utcnow
from dashboard.assessment import Assessment, assess, check_loads
from dashboard.commands import cli_code
from dashboard.handoff import (
    CLIENTS_BREAK,
    SUMMARY_METRICS,
    Change,
    aliased_version,
    evaluation_caveats,
    evaluation_record,
    interface_change,
    served_now,
)
from dashboard.leakage import run_leakage
from dashboard.trail import complete_trail, lineage, signatures_in
from dashboard.versions import register, retag
from runs import (
    CONFIRMED_DICOM_TAG,
    CONFIRMED_TAG,
    DIGEST_KEY,
    ED25519_TAG,
    FILES_KEY,
    KEY_TAG,
    SIGNATURE_TAG,
    get_client,
    get_run,
    restamped,
    schemas,
    sign_choice,
    sign_choice_ed25519,
)


@dataclass(frozen=True)
class Checked:
    """What the checks before choosing found: what the steps after them register and record."""

    run_id: str
    client: MlflowClient
    run: Run
    found: Assessment  # evaluated or not, its summary, the logged model registered
    seen: ModelVersion | None  # the version the alias named when checked (None: none)
    change: Change  # what the choice changes for clients of what is served now
    provenance: dict[str, str]  # of the evaluation's figures (tags of the version)
    caveats: list[str]  # about the evaluation's figures, a leak across splits too
    digest: str  # of the weights registered: the predictor serves the version only with these
    files: str  # the files the predictor loads


@dataclass(frozen=True)
class Registered:
    """What ``write_registry`` did."""

    number: str  # the version the alias names now
    current: ModelVersion | None  # the version the alias named before (None: none)
    already: bool  # the alias named a version of this run: retagged, nothing registered
    selected_at: datetime  # the choice's time, in its tags and its record alike


def _number(version) -> str:
    return "no version" if version is None else f"version {version.version}"


def check_run(
    run_id: str,
    settings: Settings,
    allow_unevaluated: bool,
    allow_interface_change: bool,
    allow_leakage: bool,
) -> Checked:
    """The checks before choosing ``run_id`` (the arguments as ``choose_run``'s).

    Raises:
        InvalidInput: The run cannot be chosen, or needs a confirmation not given.
        NotFound: No such run. ServiceUnavailable: MLflow is down.
    """
    uri = settings.mlflow_tracking_uri
    client = get_client(uri)
    run = get_run(client, run_id)
    found = assess(client, run)
    if found.problem:
        raise InvalidInput(f"run {run_id} cannot be chosen: {found.problem}.")
    if not found.evaluated and not allow_unevaluated:
        raise InvalidInput(
            f"run {run_id} has not been evaluated; evaluate it first "
            f"({cli_code(settings, 'evaluator', run_id)}) or confirm that you choose it "
            "unevaluated (--yes-unevaluated)."
        )
    # Read once: the interface check compares with this version, and the choice goes on only
    # while the alias still names it (read inside the check too, a move and a move back
    # between the two reads passed a check against another version).
    seen = aliased_version(settings)
    named = None if seen is None else (str(seen.version), seen.run_id)
    change = interface_change(settings, run_id, served_now(settings, named))
    if change.text and not allow_interface_change:
        raise InvalidInput(
            f"{change.text}. {CLIENTS_BREAK}; confirm that they are (--yes-interface-change)."
        )
    provenance, caveats, report = evaluation_caveats(client, run)
    leakage = run_leakage(client, run, report)  # (none for figures of other test data)
    if leakage and not allow_leakage:
        raise InvalidInput(
            f"run {run_id}: {leakage}; confirm that you choose it anyway (--yes-leakage)."
        )
    mlflow.set_tracking_uri(uri)
    digest, files = check_loads(f"models:/{found.logged_model_id}", run)  # what is registered
    if leakage:  # kept with the choice as the evaluation's caveats are (tag and record)
        caveats.append(leakage)
        provenance["evaluation_caveat"] = "; ".join(caveats)[:5000]
    return Checked(run_id, client, run, found, seen, change, provenance, caveats, digest, files)


def choice_tags(
    checked: Checked, reason: str, selected_by: str, allow_interface_change: bool
) -> dict[str, str]:
    """The tags of the version chosen, but for the time and signatures (``write_registry``)."""
    found, caveats = checked.found, checked.caveats
    tags = {
        "reason": reason,
        "evaluation": (found.summary + (f" ({'; '.join(caveats)})" if caveats else ""))[:5000],
        "evaluated": str(found.evaluated).lower(),
        "run_id": checked.run_id,
        "selected_by": selected_by,
        DIGEST_KEY: checked.digest,  # the predictor serves the version only with these weights,
        FILES_KEY: checked.files,  # and loads only these files (the version's source: the same)
        **checked.provenance,
    }
    change = checked.change.text
    if change or allow_interface_change:  # the predictor switches to a version of another
        # interface only with it (it may see a change that this process cannot: no predictor),
        # and only from an interface served when it was confirmed
        tags[CONFIRMED_TAG] = (change or "confirmed without a change seen by the chooser")[:5000]
    # and how many test images the model's out-of-distribution check flagged against the share
    # it expects: a client that sends flagged images to a person sizes that work by it
    metrics = checked.run.data.metrics
    for metric in (*SUMMARY_METRICS, *metric_keys.OOD_FIGURES):
        key = metric_keys.eval_key(metric)
        for tag in (key, *(metric_keys.bound_key(key, b) for b in metric_keys.BOUNDS)):
            if (value := metrics.get(tag)) is not None:
                tags[tag] = f"{value:.6g}"
    for key, value in metrics.items():  # the figures of the rule that `decision` uses
        if metric_keys.at_threshold(key):
            tags[key] = f"{value:.6g}"
    return tags


def write_registry(checked: Checked, tags: dict[str, str], settings: Settings, store) -> Registered:
    """Point the alias at a version of the run's model, tagged with ``tags`` (to which the
    choice's time and signatures are added here); called in turn with other choices.

    Raises:
        InvalidInput: Another choice moved the alias since the checks.
        ServiceUnavailable: The version is registered but the alias could not be moved.
    """
    name, alias, client = settings.model_name, settings.model_alias, checked.client
    current = aliased_version(settings)
    if store is not None and current is not None:  # a choice before ended unrecorded?
        complete_trail(store, client, current, name, alias, settings.signing_keys())
    # Chosen before (a version of this run's own logged model): the alias stays on it, no
    # second copy. A version registered otherwise (e.g. from files that cannot be served) is
    # not. (The source names the logged model; ModelVersion.model_id is empty in some stores.)
    already = current is not None and current.source == f"models:/{checked.found.logged_model_id}"
    if not already and _number(current) != _number(checked.seen):  # moved by another choice
        # since the check (to this very run, a double submission: nothing changes, no refusal)
        raise InvalidInput(
            f"another choice moved {settings.model_name}@{settings.model_alias} to "
            f"{_number(current)} while run {checked.run_id} was being checked against "
            f"{_number(checked.seen)}; choose again, to check it against what is chosen now."
        )
    selected_at = _stamp(tags, checked.change, settings, current if already else None)
    if already:
        # The version's tags describe this choice, as its record does: the first choice's reason
        # and figures (e.g. of an evaluation since replaced) would contradict the audit trail,
        # which keeps every choice. A confirmation is only added: the predictor may need the one
        # there (it kept the version before), and a choice seeing no change says nothing of it.
        number = str(current.version)
        retag(client, current, tags)
    else:
        logged = checked.found.logged_model_id
        number = str(register(client, name, checked.run_id, logged, tags).version)
        try:
            client.set_registered_model_alias(name, alias, number)
        except MlflowException as exc:
            raise ServiceUnavailable(
                f"registered {name} version {number} but could not point the alias "
                f"{alias!r} at it ({exc.message}); choose the run again."
            ) from exc
    return Registered(number, current, already, selected_at)


def _stamp(
    tags: dict[str, str], change: Change, settings: Settings, chosen: ModelVersion | None
) -> datetime:
    """Add the choice's time to ``tags``, with its confirmation and signatures; ``chosen``: the
    version of this run chosen before, whose DICOM confirmation goes on counting. Returns the
    time (the tag and the record say the same time, to the ms)."""
    # Its time is taken here, in turn with other choices and just before it registers (the
    # trail checks both); with the token, signed (tags set by hand pass for no choice)
    key = settings.sealing_key  # signs the choice (the store seals its record with it)
    selected_at = utcnow()
    tags["selected_at"] = selected_at.isoformat(timespec="milliseconds")
    if CONFIRMED_TAG in tags:
        tags.update(change.confirmation(tags["selected_at"]))
    if key:
        tags[SIGNATURE_TAG] = sign_choice(tags, key)
        tags[KEY_TAG] = fingerprint(key)  # which key, for a service that lacks it
    if private := settings.choice_private_key:  # what a predictor with the public key checks
        tags[ED25519_TAG] = sign_choice_ed25519(tags, private)
    if chosen is not None and CONFIRMED_DICOM_TAG not in tags:  # its confirmation goes on
        tags.update(restamped(chosen.tags, tags["selected_at"]))
    return selected_at


def selection_record(
    checked: Checked,
    done: Registered,
    tags: dict[str, str],
    settings: Settings,
    reason: str,
    selected_by: str,
) -> schemas.SelectionRecord:
    """The audit record of the choice ``done``."""
    name, run = settings.model_name, checked.run
    return schemas.SelectionRecord(
        run_id=checked.run_id,
        action="choose",
        model_uri=f"models:/{name}/{done.number}",
        experiment_id=run.info.experiment_id,
        metrics=metric_keys.eval_figures(run.data.metrics),
        registered_model=name,
        version=str(done.number),
        alias=settings.model_alias,
        reason=reason,
        evaluated=checked.found.evaluated,
        selected_at=done.selected_at,
        selected_by=selected_by,
        evaluation_caveats=checked.caveats,
        interface_change=tags.get(CONFIRMED_TAG),  # a blind confirmation too
        evaluation=evaluation_record(checked.provenance),
        lineage=lineage(run, checked.digest, checked.files),
        signatures=signatures_in(tags),
        replaced=None if done.already or done.current is None else str(done.current.version),
    )
