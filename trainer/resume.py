"""What a resumed run takes from the command line that resumes it (``resume_args``): the
runtime options (``RUNTIME_ARGS``); every other setting comes from the checkpoint, and a command
that sets one of them to another value is refused (``--resume auto`` then starts a new run)."""

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import InvalidInput
from trainer.cli import get_args_parser

# What a resumed run takes from the new command line; everything else comes from the checkpoint.
RUNTIME_ARGS = ("resume", "device", "threads", "progress", "max_epochs_this_session")
# Options added after runs were first checkpointed: a resumed older checkpoint gets these.
NEW_ARG_DEFAULTS = {
    "class_balance": "none",
    "ema_decay": 0.0,
    "target_sensitivity": 0.0,
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
