"""Whether a checkpoint can go on: what a resumed run takes from the command line that resumes
it (``resume_args``: the runtime options, ``RUNTIME_ARGS``; every other setting comes from the
checkpoint, and a command that sets one of them to another value is refused), and the data it
must go on with (``check_data``: the same files, image decoding and validation split).
``--resume auto`` starts a new run where either refuses (``trainer.train``)."""

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common import InvalidInput
from runs import DECODING_VERSION
from trainer import checkpoint, mlflow_run
from trainer.cli import get_args_parser

# What a resumed run takes from the new command line; everything else comes from the checkpoint.
RUNTIME_ARGS = ("resume", "device", "threads", "progress", "max_epochs_this_session")
# Options added after runs were first checkpointed: a resumed older checkpoint gets these.
NEW_ARG_DEFAULTS = {
    "class_balance": "none",
    "ema_decay": 0.0,
    "target_sensitivity": 0.0,
    "ood_quantile": 0.0,
    "positive_class": None,
    "class_names": None,
    "groups_file": None,
    "allow_group_overlap": False,
    "ensemble": 1,
    "select": "auc",
    "min_image_size": 0,  # native size, as such runs were trained
    "max_image_size": 0,
    "width": 32,  # SmallCNN's width before the option
    "shift": 0,
    "modality": None,  # the files' own modalities, or none, as such runs recorded nothing
    "from_run": None,
}


def given_options(argv: Sequence[str]) -> set[str]:
    """The options ``argv`` sets itself (their ``dest``), defaults left out: ``--epochs 80``
    given is a choice, where 80 by default is not."""
    parser, unset = get_args_parser(), object()  # not a string: argparse would convert it
    dests = vars(parser.parse_known_args(list(argv))[0])
    parser.set_defaults(**dict.fromkeys(dests, unset))
    given = vars(parser.parse_known_args(list(argv))[0])
    return {dest for dest, value in given.items() if value is not unset}


def resume_args(
    args: argparse.Namespace, state: dict[str, Any], given: set[str] | None = None
) -> None:
    """Set ``args`` in place to the settings of the run the checkpoint ``state`` continues (with
    ``NEW_ARG_DEFAULTS`` for options it predates), keeping ``RUNTIME_ARGS`` from the command line.

    Raises:
        InvalidInput: the command sets an option to another value than the run's: one of
            ``given`` (``given_options``), or, not known, one away from its default.
    """
    saved = {**NEW_ARG_DEFAULTS, **state["args"]}
    _check_same_flags(args, saved, state["run_id"], given)
    saved.update({key: getattr(args, key) for key in RUNTIME_ARGS})
    vars(args).update(saved)


def _check_same_flags(args: argparse.Namespace, saved: dict[str, Any], run_id: str,
                      given: set[str] | None) -> None:  # fmt: skip
    """A resumed run continues with its checkpoint's settings: refuse a command that sets one
    (``given``; not known: away from its default) to another value, rather than drop it without
    a word (a resumed older run, another data folder or experiment, more epochs)."""
    defaults = get_args_parser()
    differing = []
    for key, value in vars(args).items():
        if key in RUNTIME_ARGS or key in ("tracking_uri", "checkpoint_dir") or key not in saved:
            continue
        unset = key not in given if given is not None else value == defaults.get_default(key)
        if unset or value == saved[key]:
            continue
        if key == "data_dir" and Path(value).resolve() == Path(saved[key]).resolve():
            continue
        shown = [",".join(v) if isinstance(v, list) else v for v in (value, saved[key])]
        differing.append(f"--{key.replace('_', '-')} {shown[0]} (the run has {shown[1]})")
    if differing:
        raise InvalidInput(
            f"--resume continues run {run_id} with its own settings, but this command sets "
            f"{'; '.join(differing)}; resume with the run's settings, or start a new run "
            "without --resume (or with another --checkpoint-dir)"
        )


def check_data(
    state: dict[str, Any], dataset, args: argparse.Namespace, own: Path
) -> InvalidInput | None:
    """Why the checkpoint ``state`` cannot go on with ``dataset`` (other files, another image
    decoding, or another validation split carved from train); None when it can. ``own``: the
    checkpoint folder's ``last.pt``, the file ``--resume auto`` read."""
    path = checkpoint.resume_path(args.resume) or own  # the file named, in messages
    if state["dataset_hash"] != dataset.content_hash:
        return InvalidInput(
            f"the data in {args.data_dir} changed since checkpoint {path} was written "
            f"(run {state['run_id']}; or the checkpoint is older than identifying data by "
            "file contents, December 2026); resume with the same data or start anew."
        )
    version = DECODING_VERSION
    if state.get("decoding_version", version) != version:  # absent: written before it
        return InvalidInput(
            f"the image decoding changed since checkpoint {path} was written (version "
            f"{state['decoding_version']}, now {version}): the run would go on with images "
            "prepared otherwise; start a new run"
        )
    found, now = state.get("val_digest"), val_digest(dataset)
    # absent: a checkpoint older than the digest, refused only where the carve has changed
    same = found in (now, _names_digest(dataset))
    # (by patient or keeping copies together the carve changed in December 2026; every image
    # its own unit: never)
    changed = getattr(dataset, "val_how", "") in ("carved_by_group", "carved_keeping_copies")
    if now is not None and not same and (found is not None or changed):
        return InvalidInput(
            f"the validation split differs from the one checkpoint {path} was validated on "
            "(the carving rule changed in an upgrade, December 2026, or the group manifest "
            "was edited): the run would choose on images it trained on; start a new run"
        )
    return None


def val_digest(dataset) -> str | None:
    """Which images validate, when carved from train (None for a given val split, which cannot
    move): a digest of their pixels and labels, whatever the files are named (``FILE_NAMES``).
    A resume under another carve would choose epochs and the threshold on images it trained on."""
    val = _carved_val(dataset)
    if val is None:
        return None
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(val.images).data)
    digest.update(np.asarray(val.labels, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _names_digest(dataset) -> str | None:
    """The digest of a carved split's file names: what checkpoints written before 6 December
    2026 recorded for folders (accepted on resume while the names are the same)."""
    val = _carved_val(dataset)
    if val is None or not val.files:
        return None
    return hashlib.sha256("\n".join(sorted(val.files)).encode()).hexdigest()


def _carved_val(dataset):
    val = getattr(dataset, "val", None)
    return val if str(getattr(dataset, "val_how", "")).startswith("carved") else None


def start_anew(args: argparse.Namespace, command: dict[str, Any], state: dict[str, Any],
                why: InvalidInput, held: checkpoint.Held | None,
                tracking_uri: str) -> None:  # fmt: skip
    """``--resume auto`` where the folder's unfinished run cannot go on with this command (other
    settings, data, image decoding or validation split: ``why``): say so and start a new run with
    the command's own settings (``command``), keeping that run's checkpoint (``checkpoint.claim``
    moves it aside as ``last-<run id>.pt``), so that a Job's retry or a demo started again is not
    stopped by it. A checkpoint named by path (``--resume PATH``) is refused with ``why``."""
    if command["resume"] != "auto":
        raise why
    vars(args).clear()
    vars(args).update(command)
    if held is not None:  # rank 0: the run it would have continued is not resumed after all
        mlflow_run.settle(held, None, tracking_uri)
        kept = checkpoint.kept_path(held.locks[0].folder, state["run_id"])  # auto's folder
        print(
            f"warning: --resume auto starts a new run: run {state['run_id']} (epoch "
            f"{state['epoch']}) cannot go on here: {why} (its checkpoint is kept as {kept})",
            file=sys.stderr, flush=True,
        )  # fmt: skip
