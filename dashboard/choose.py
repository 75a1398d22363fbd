"""Choosing a run for deployment: register its model, move the alias, write ``run_id.txt``.

``choose_run`` registers the run's model as a new version of ``MODEL_NAME``, tags the version with
the evaluation summary and the reason, points the alias ``MODEL_ALIAS`` (the predictor serves
what it names) at it, writes ``run_id.txt`` atomically and records the choice in the
``selections`` collection, in the steps of ``dashboard.choice_steps``. The dashboard's "Choose
this model" button and the CLI call it::

    python -m dashboard.choose RUN_ID --reason TEXT [--yes-unevaluated] [--yes-interface-change]
        [--yes-leakage] [--by NAME]

It prints the registered version, or one line saying why the run cannot be chosen (exit 2).
"""

import argparse
import contextlib
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    InvalidInput,
    PipelineError,
    ServiceUnavailable,
    Settings,
    atomic_write_text,
    get_settings,
)
from dashboard.choice_steps import check_run, choice_tags, selection_record, write_registry
from dashboard.selection import os_user
from dashboard.trail import trail_store
from dashboard.versions import one_choice_at_a_time
from jobs import STORE_ERRORS, store_unavailable
from runs import schemas

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
    reason, selected_by = _checked_words(reason, selected_by)
    checked = check_run(run_id, settings, allow_unevaluated, allow_interface_change, allow_leakage)
    tags = choice_tags(checked, reason, selected_by, allow_interface_change)
    name = settings.model_name
    # alias, run_id.txt, record: one choice at a time on this host, and among all choosers that
    # share the store
    turn = store.choice_turn(name) if store is not None else contextlib.nullcontext()
    with one_choice_at_a_time(settings.run_id_file), turn:
        done = write_registry(checked, tags, settings, store)
        id_file = _write_run_id(settings, run_id, done.number)
        record = None
        if store is not None:
            audit = selection_record(checked, done, tags, settings, reason, selected_by)
            record = _record(store, audit)
    return Choice(
        run_id=run_id,
        registered_model=name,
        version=done.number,
        alias=settings.model_alias,
        model_uri=f"models:/{name}/{done.number}",
        run_id_file=str(id_file),
        record=record,
        caveats=checked.caveats,
        already=done.already,
    )


def _checked_words(reason: str, selected_by: str | None) -> tuple[str, str]:
    """``reason`` and who chooses (default: the OS user), stripped, once checked.

    Raises:
        InvalidInput: No reason, one too long, or who chooses is not one line of text.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidInput("give a reason for choosing this model (--reason TEXT)")
    if len(reason) > REASON_MAX_CHARS:  # the version's tag, the record and the form hold it whole
        raise InvalidInput(
            f"the reason has {len(reason)} characters, more than the {REASON_MAX_CHARS} a choice "
            "keeps; say why in fewer words and link to a longer document if there is one"
        )
    selected_by = (selected_by or os_user()).strip()
    if not selected_by or not selected_by.isprintable() or len(selected_by) > BY_MAX_CHARS:
        raise InvalidInput(
            f"who chooses ({selected_by[:BY_MAX_CHARS]!r}: --by, the name typed, or the user the "
            "proxy names) must be one line of printable text of at most "
            f"{BY_MAX_CHARS} characters"
        )
    return reason, selected_by


def _write_run_id(settings: Settings, run_id: str, number: str) -> Path:
    """Write ``run_id.txt`` naming ``run_id``, once the alias names its ``number``.

    Raises:
        ServiceUnavailable: It could not be written (the message says how to finish the choice).
    """
    try:
        return atomic_write_text(settings.run_id_file, run_id + "\n")
    except OSError as exc:  # the alias has moved: say so, and how to finish the choice
        raise ServiceUnavailable(
            f"{settings.model_name} version {number} is now {settings.model_alias!r}, but "
            f"{settings.run_id_file} could not be written ({type(exc).__name__}: {exc}); check "
            "RUN_ID_FILE and its folder, then choose the run again."
        ) from exc


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
            None if args.by is None else f"{_given(args.by)} (typed by OS user {os_user()})",
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
