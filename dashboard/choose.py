"""Choosing a run for deployment: register its model, move the alias, write ``run_id.txt``.

``choose_run`` registers the run's model as a new version of ``MODEL_NAME``, tags the version with
the evaluation summary and the reason, points the alias ``MODEL_ALIAS`` (the predictor serves
what it names) at it, writes ``run_id.txt`` atomically and records the choice in the
``selections`` collection. The dashboard's "Choose this model" button and the CLI call it::

    python -m dashboard.choose RUN_ID --reason TEXT [--yes-unevaluated] [--yes-interface-change]
        [--yes-leakage] [--by NAME]

It prints the registered version, or one line saying why the run cannot be chosen (exit 2).
"""

import argparse
import contextlib
import getpass
import logging
import sys
from dataclasses import dataclass, field

import mlflow
from mlflow.exceptions import MlflowException

from common import (
    InvalidInput,
    PipelineError,
    ServiceUnavailable,
    Settings,
    atomic_write_text,
    fingerprint,
    get_settings,
    metric_keys,
    utcnow,
)
from dashboard.assessment import assess, check_loads
from dashboard.handoff import (
    CLIENTS_BREAK,
    SUMMARY_METRICS,
    aliased_version,
    evaluation_caveats,
    evaluation_record,
    interface_change,
    served_now,
)
from dashboard.leakage import run_leakage
from dashboard.trail import complete_trail, lineage, signatures_in, trail_store
from dashboard.versions import one_choice_at_a_time, register, retag
from jobs import STORE_ERRORS, store_unavailable
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

REASON_MAX_CHARS = 2000  # why a model was chosen: a paragraph (the form's field holds as many)
NAME_MAX_CHARS = 200  # a name typed (the form's field, --by)
BY_MAX_CHARS = 300  # who chose it: that name and how it was given (" (typed by OS user U)")


@dataclass(frozen=True)
class Choice:
    """What ``choose_run`` did."""

    run_id: str
    registered_model: str
    version: str
    alias: str
    model_uri: str
    run_id_file: str
    record: dict | None
    caveats: list[str] = field(default_factory=list)  # about the evaluation's figures
    already: bool = False  # the alias named a version of this run: nothing was registered


def _number(version) -> str:
    return "no version" if version is None else f"version {version.version}"


def _typed_name(text: str) -> str:
    if len(text.strip()) > NAME_MAX_CHARS:
        raise argparse.ArgumentTypeError(f"must be a name of at most {NAME_MAX_CHARS} characters")
    return text


def choose_run(
    run_id: str,
    reason: str,
    settings: Settings,
    store=None,
    allow_unevaluated: bool = False,
    selected_by: str | None = None,
    allow_interface_change: bool = False,
    allow_leakage: bool = False,
) -> Choice:
    """Register ``run_id``'s model, point the alias at it, write ``run_id.txt``, record it.

    Args:
        reason: Why this model (required; stored on the version and in the record).
        store: A ``jobs.SelectionStore``; None skips the record.
        allow_unevaluated: Choose a run that has no evaluation (an explicit confirmation).
        selected_by: Who chose (default: the OS user); the dashboard passes the user that its
            authenticating proxy names, or the name typed, marked " (typed)"; the command line
            its ``--by``, marked " (typed by OS user U)".
        allow_interface_change: Choose a run that changes what clients of the served version
            receive: classes, channels or decision rule, refused images, or the loss of the
            out-of-distribution check (``interface_change``; a confirmation).
        allow_leakage: Choose a run whose test split shares images (exact or near duplicates)
            or patients with its train or val split (``dashboard.leakage``; a confirmation);
            the warning is kept as a caveat.

    Raises:
        InvalidInput: The run cannot be chosen (the message says why and what to do).
        NotFound: No such run. ServiceUnavailable: MLflow or the store is down.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidInput("give a reason for choosing this model (--reason TEXT)")
    if len(reason) > REASON_MAX_CHARS:  # the version's tag, the record and the form hold it whole
        raise InvalidInput(
            f"the reason has {len(reason)} characters, more than the {REASON_MAX_CHARS} a choice "
            "keeps; say why in fewer words and link to a longer document if there is one"
        )
    selected_by = (selected_by or _user()).strip()
    if not selected_by or not selected_by.isprintable() or len(selected_by) > BY_MAX_CHARS:
        raise InvalidInput(
            f"who chooses ({selected_by[:BY_MAX_CHARS]!r}: --by, the name typed, or the user the "
            "proxy names) must be one line of printable text of at most "
            f"{BY_MAX_CHARS} characters"
        )
    uri = settings.mlflow_tracking_uri
    client = get_client(uri)
    run = get_run(client, run_id)
    found = assess(client, run)
    if found.problem:
        raise InvalidInput(f"run {run_id} cannot be chosen: {found.problem}.")
    if not found.evaluated and not allow_unevaluated:
        raise InvalidInput(
            f"run {run_id} has not been evaluated; evaluate it first (python -m evaluator "
            f"--run-id {run_id}) or confirm that you choose it unevaluated (--yes-unevaluated)."
        )
    # Read once: the interface check compares with this version, and the choice below goes on
    # only while the alias still names it (read inside the check too, a move and a move back
    # between the two reads passed a check against another version).
    seen = aliased_version(settings)
    named = None if seen is None else (str(seen.version), seen.run_id)
    found_change = interface_change(settings, run_id, served_now(settings, named))
    change = found_change.text
    if change and not allow_interface_change:
        raise InvalidInput(
            f"{change}. {CLIENTS_BREAK}; confirm that they are (--yes-interface-change)."
        )
    provenance, caveats, report = evaluation_caveats(client, run)
    leakage = run_leakage(client, run, report)  # (none for figures of other test data)
    if leakage and not allow_leakage:
        raise InvalidInput(
            f"run {run_id}: {leakage}; confirm that you choose it anyway (--yes-leakage)."
        )
    mlflow.set_tracking_uri(uri)
    digest, files = check_loads(f"models:/{found.logged_model_id}", run)  # what is registered
    name, alias = settings.model_name, settings.model_alias
    if leakage:  # kept with the choice as the evaluation's caveats are (tag and record)
        caveats.append(leakage)
        provenance["evaluation_caveat"] = "; ".join(caveats)[:5000]
    tags = {
        "reason": reason,
        "evaluation": (found.summary + (f" ({'; '.join(caveats)})" if caveats else ""))[:5000],
        "evaluated": str(found.evaluated).lower(),
        "run_id": run_id,
        "selected_by": selected_by,
        DIGEST_KEY: digest,  # the predictor serves the version only with these weights,
        FILES_KEY: files,  # and loads only these files (the version's source: the same)
        **provenance,
    }
    if change or allow_interface_change:  # the predictor switches to a version of another
        # interface only with it (it may see a change that this process cannot: no predictor),
        # and only from an interface served when it was confirmed
        tags[CONFIRMED_TAG] = (change or "confirmed without a change seen by the chooser")[:5000]
    # and how many test images the model's out-of-distribution check flagged against the share
    # it expects: a client that sends flagged images to a person sizes that work by it
    for metric in (*SUMMARY_METRICS, *metric_keys.OOD_FIGURES):
        key = metric_keys.eval_key(metric)
        for tag in (key, *(metric_keys.bound_key(key, b) for b in metric_keys.BOUNDS)):
            if (value := run.data.metrics.get(tag)) is not None:
                tags[tag] = f"{value:.6g}"
    for key, value in run.data.metrics.items():  # the figures of the rule that `decision` uses
        if metric_keys.at_threshold(key):
            tags[key] = f"{value:.6g}"
    # alias, run_id.txt, record: one choice at a time on this host, and among all choosers that
    # share the store
    turn = store.choice_turn(name) if store is not None else contextlib.nullcontext()
    with one_choice_at_a_time(settings.run_id_file), turn:
        key = settings.sealing_key  # signs the choice (the store seals its record with it)
        current = aliased_version(settings)
        if store is not None and current is not None:  # a choice before ended unrecorded?
            complete_trail(store, client, current, name, alias, settings.signing_keys())
        # Chosen before (a version of this run's own logged model): the alias stays on it, no
        # second copy. A version registered otherwise (e.g. from files that cannot be served) is
        # not. (The source names the logged model; ModelVersion.model_id is empty in some stores.)
        already = current is not None and current.source == f"models:/{found.logged_model_id}"
        if not already and _number(current) != _number(seen):  # moved by another choice since
            # the check (to this very run, a double submission: nothing changes, no refusal)
            raise InvalidInput(
                f"another choice moved {settings.model_name}@{settings.model_alias} to "
                f"{_number(current)} while run {run_id} was being checked against "
                f"{_number(seen)}; choose again, to check it against what is chosen now."
            )
        # Its time is taken here, in turn with other choices and just before it registers (the
        # trail checks both); with the token, signed (tags set by hand pass for no choice)
        selected_at = utcnow()  # the tag and the record say the same time (to the ms)
        tags["selected_at"] = selected_at.isoformat(timespec="milliseconds")
        if CONFIRMED_TAG in tags:
            tags.update(found_change.confirmation(tags["selected_at"]))
        if key:
            tags[SIGNATURE_TAG] = sign_choice(tags, key)
            tags[KEY_TAG] = fingerprint(key)  # which key, for a service that lacks it
        if private := settings.choice_private_key:  # what a predictor with the public key checks
            tags[ED25519_TAG] = sign_choice_ed25519(tags, private)
        if already and CONFIRMED_DICOM_TAG not in tags:  # its confirmation goes on counting
            tags.update(restamped(current.tags, tags["selected_at"]))
        if already:
            # The version's tags describe this choice, as its record does: the first choice's reason
            # and figures (e.g. of an evaluation since replaced) would contradict the audit trail,
            # which keeps every choice. A confirmation is only added: the predictor may need the one
            # there (it kept the version before), and a choice seeing no change says nothing of it.
            number = str(current.version)
            retag(client, current, tags)
        else:
            number = str(register(client, name, run_id, found.logged_model_id, tags).version)
            try:
                client.set_registered_model_alias(name, alias, number)
            except MlflowException as exc:
                raise ServiceUnavailable(
                    f"registered {name} version {number} but could not point the alias "
                    f"{alias!r} at it ({exc.message}); choose the run again."
                ) from exc
        try:
            id_file = atomic_write_text(settings.run_id_file, run_id + "\n")
        except OSError as exc:  # the alias has moved: say so, and how to finish the choice
            raise ServiceUnavailable(
                f"{name} version {number} is now {alias!r}, but {settings.run_id_file} "
                f"could not be written ({type(exc).__name__}: {exc}); check RUN_ID_FILE and its "
                "folder, then choose the run again."
            ) from exc
        record = None
        if store is not None:
            record = _record(
                store,
                schemas.SelectionRecord(
                    run_id=run_id,
                    action="choose",
                    model_uri=f"models:/{name}/{number}",
                    experiment_id=run.info.experiment_id,
                    metrics=metric_keys.eval_figures(run.data.metrics),
                    registered_model=name,
                    version=str(number),
                    alias=alias,
                    reason=reason,
                    evaluated=found.evaluated,
                    selected_at=selected_at,
                    selected_by=selected_by,
                    evaluation_caveats=caveats,
                    interface_change=tags.get(CONFIRMED_TAG),  # a blind confirmation too
                    evaluation=evaluation_record(provenance),
                    lineage=lineage(run, digest, files),
                    signatures=signatures_in(tags),
                    replaced=None if already or current is None else str(current.version),
                ),
            )
    model_uri = f"models:/{name}/{number}"
    return Choice(
        run_id, name, str(number), alias, model_uri, str(id_file), record, caveats, already
    )


def _record(store, record: schemas.SelectionRecord) -> dict:
    try:
        return store.record(record)
    except STORE_ERRORS as exc:
        raise ServiceUnavailable(
            f"{record.registered_model} version {record.version} is now {record.alias!r} and "
            f"run_id.txt names run {record.run_id}, but the selection record could not be "
            f"stored ({type(exc).__name__}: {exc}); check MONGO_URI and choose the run again."
        ) from exc


def _given(name: str) -> str:
    if not name.strip():
        raise InvalidInput("--by names who chooses: give a name, or leave --by out")
    return name.strip()


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard.choose",
        description="Register a run's model, point the deployment alias at it, record why.",
    )
    parser.add_argument("run_id")
    parser.add_argument("--reason", required=True, help="why this model (kept with the choice)")
    parser.add_argument(
        "--yes-unevaluated", action="store_true", help="choose a run that has no evaluation"
    )
    parser.add_argument(
        "--yes-interface-change",
        action="store_true",
        help="choose a run that changes what clients of the served one receive: other classes, "
        "channels or decision rule, a larger or other-shaped input, fewer DICOM inputs, no "
        "out-of-distribution check",
    )
    parser.add_argument(
        "--yes-leakage",
        action="store_true",
        help="choose a run whose dataset has images duplicated across splits",
    )
    parser.add_argument(
        "--by",
        type=_typed_name,
        metavar="NAME",
        help="who chooses (default: the OS user); recorded with ' (typed by OS user U)'",
    )
    args = parser.parse_args(argv)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    said = logging.StreamHandler(sys.stderr)  # what the checks could not do, as warning lines
    said.setFormatter(logging.Formatter("warning: %(message)s"))
    said.setLevel(logging.WARNING)  # a logger set lower elsewhere in the process shows no more
    logging.getLogger("dashboard").addHandler(said)
    try:
        return _choose(args, get_settings())
    finally:  # called again in one process (tests), it must not say each warning twice
        logging.getLogger("dashboard").removeHandler(said)


def _choose(args: argparse.Namespace, settings: Settings) -> int:
    """``main`` after its arguments: choose, and print the outcome (0) or the refusal (2)."""
    try:
        store = trail_store(settings)
        choice = choose_run(
            args.run_id, args.reason, settings, store, args.yes_unevaluated,
            # nobody authenticated the name: the record says so, and which account gave it
            None if args.by is None else f"{_given(args.by)} (typed by OS user {_user()})",
            args.yes_interface_change, args.yes_leakage,
        )  # fmt: skip
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except STORE_ERRORS as exc:  # the trail's store failed past its own checks (a lock held)
        print(
            f"error: {store_unavailable(settings, exc)} Choose again once it is free (a choice "
            "this stopped after the alias moved is then recorded too).",
            file=sys.stderr,
        )
        return 2
    for caveat in choice.caveats:
        print(f"warning: {caveat}", file=sys.stderr)
    print(
        f"run {choice.run_id} {'was already' if choice.already else 'is'} "
        f"{choice.registered_model} version {choice.version} (alias {choice.alias})"
        f"{'; its tags now describe this choice' if choice.already else ''}; "
        f"{choice.run_id_file} names it",
        file=sys.stderr,
    )
    print(choice.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
