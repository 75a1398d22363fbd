"""``python -m trainer --from-run RUN_ID``: train again with the settings a run recorded, and say
whether that made the same model: what an auditor asks of a chosen model ("rebuild it").

``apply`` sets the options from the run's params before training; an option the command line
gives itself wins and is named (``--from-run X --data-dir new/`` trains X's settings on other
data). The new run is tagged ``pipeline.rerun_of`` (``started``, which also warns at once when
the data differs) and, once its model is logged, ``pipeline.rerun_result`` (``finished``): the
same weights as the original's (their digests), or other weights and what the two runs recorded
differently: settings, data, CPU threads, device, processes, code, Python and packages.
"""

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from common import InvalidInput, PipelineError, get_settings
from dataloader import DatasetSplits
from runs import DIGEST_KEY, contract, get_client, get_run, load_json_artifact
from trainer.cli import get_args_parser

log = logging.getLogger(__name__)

RERUN_OF_TAG = "pipeline.rerun_of"
RERUN_RESULT_TAG = "pipeline.rerun_result"
SAME = "same weights"  # RERUN_RESULT_TAG's value when the digests agree
# Params that describe the run's environment rather than its settings: (param, option)
RUNTIME = (("torch_threads", "threads"), ("device", "device"))
# What else a rerun compares: params of the data, then of the environment, then tags of the code
DATA_PARAMS = ("dataset_hash", "dataset_groups_hash", "image_size", "class_names")
ENV_PARAMS = ("torch_threads", "device", "world_size")
CODE_TAGS = ("mlflow.source.git.commit", contract.GIT_DIFF_TAG)
FIRST_ENVIRONMENT = f"{contract.ENVIRONMENT_DIR}/session-1.json"
PLACES = ("experiment", "run_name")  # where the new run goes, not how it trains


def apply(args: argparse.Namespace, given: set[str] | None, tracking_uri: str) -> list[str]:
    """Set ``args`` in place to the settings run ``args.from_run`` recorded, but for the options
    of ``given`` (the command line's own, ``trainer.resume.given_options``); return those that
    differ from the run's, as ``--option value (run X: value)``.

    Raises:
        NotFound: No such run (or deleted). ServiceUnavailable: MLflow does not answer.
        InvalidInput: The run was not trained by this trainer, or records a setting this trainer
            refuses.
    """
    client = get_client(tracking_uri)
    run = get_run(client, args.from_run)
    settings = recorded_settings(run)
    settings["experiment"] = client.get_experiment(run.info.experiment_id).name
    settings["run_name"] = f"rerun of {run.info.run_name or run.info.run_id}"
    given = given or set()
    changed = []
    for key, value in settings.items():
        if key not in given:
            setattr(args, key, value)
        elif key in PLACES:  # where the new run goes: no setting of the original's
            continue
        elif getattr(args, key) != value and not _same_folder(key, getattr(args, key), value):
            changed.append(f"--{key.replace('_', '-')} {_shown(getattr(args, key))} "
                           f"(run {run.info.run_id}: {_shown(value)})")  # fmt: skip
    if Path(args.data_dir).is_dir() and "class_names" not in given:
        args.class_names = None  # a folder's classes are its subfolders (kept in their order)
    return changed


def recorded_settings(run: Run) -> dict[str, Any]:
    """The trainer options that reproduce ``run``: its training params, data folder (under
    ``DATA_DIR`` when logged relative to it), class names, input size, positive class, CPU threads
    and device. Options a run predates keep their defaults.

    Raises:
        InvalidInput: The run has no trainer params, or one this trainer refuses.
    """
    params, run_id = run.data.params, run.info.run_id
    if "model" not in params or "data_dir" not in params:
        raise InvalidInput(
            f"run {run_id} was not trained by this trainer (it has no params model and data_dir): "
            "--from-run takes a run id the trainer printed, or the MLflow UI shows with them"
        )
    actions = {action.dest: action for action in get_args_parser()._actions}
    settings = {key: _value(actions[key], params[key], run_id)
                for key in contract.TRAINING_PARAMS if key in params}  # fmt: skip
    folder = Path(params["data_dir"])  # logged relative to DATA_DIR when under it
    settings["data_dir"] = str(folder if folder.is_absolute() else get_settings().data_dir / folder)
    if "class_names" in params:  # the labels' order; a folder's is kept from its subfolders
        settings["class_names"] = json.loads(params["class_names"])
    if "x" in params.get("image_size", ""):  # the size the run settled on, kept on other data
        height, width = (int(side) for side in params["image_size"].split("x"))
        settings["image_size"] = height if height == width else (height, width)
    if "positive_class" in params:
        settings["positive_class"] = params["positive_class"]
    for param, option in RUNTIME:  # both change the weights
        if param in params:
            settings[option] = _value(actions[option], params[param], run_id)
    return settings


def _value(action: argparse.Action, text: str, run_id: str) -> Any:
    """The option value of a param's text, checked as the command line checks it."""
    if text == "None":
        return None
    if isinstance(action.default, bool) or action.nargs == 0:  # switches, --[no-]per-sample-mix
        return text == "True"
    try:
        value = action.type(text) if callable(action.type) else text
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise InvalidInput(
            f"run {run_id} records {action.dest} {text!r}, which this trainer refuses ({exc}); "
            f"give --{action.dest.replace('_', '-')} yourself"
        ) from exc
    if action.choices is not None and value not in action.choices:
        raise InvalidInput(
            f"run {run_id} records {action.dest} {text!r}, which this trainer does not know "
            f"(one of {', '.join(map(str, action.choices))}); give "
            f"--{action.dest.replace('_', '-')} yourself"
        )
    return value


def _same_folder(key: str, given: Any, recorded: Any) -> bool:
    return key == "data_dir" and Path(given).resolve() == Path(recorded).resolve()


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


OLD_HASH = (
    ". If that run was trained by a release before 2026-12-05, its dataset_hash is of the files' "
    "names, sizes and times, not their contents, and never matches: the same folder reads as "
    "other data there; compare the folders themselves"
)
"""What a differing ``dataset_hash`` may also mean (its kind changed; runs record no kind)."""


def started(client: MlflowClient, run_id: str, original_id: str, dataset: DatasetSplits) -> None:
    """Tag the new run ``run_id`` as a rerun of ``original_id`` and warn on stderr when its
    data differs from the original's (another content hash or group manifest)."""
    client.set_tag(run_id, RERUN_OF_TAG, original_id)
    params = client.get_run(original_id).data.params
    now = {"dataset_hash": dataset.content_hash,
           "dataset_groups_hash": getattr(dataset, "group_digest", None)}  # fmt: skip
    if differing := [key for key, value in now.items() if params.get(key) != value]:
        print(
            f"warning: --from-run {original_id}: the data differs from that run's ("
            f"{', '.join(differing)}): this run retrains its settings on other data and cannot "
            "reproduce its model; give the run's data folder (and --groups-file) to reproduce it"
            + (OLD_HASH if "dataset_hash" in differing else ""),
            file=sys.stderr, flush=True,
        )  # fmt: skip


def finished(client: MlflowClient, run_id: str, original_id: str) -> str:
    """Compare the new run ``run_id`` with ``original_id``, tag ``pipeline.rerun_result`` and
    return it: ``SAME``, or the other weights and every recorded difference; or why they could
    not be compared (the original deleted since, MLflow failing): the training stands."""
    try:
        return _compare(client, run_id, original_id)
    except (MlflowException, PipelineError) as exc:
        return f"not compared with run {original_id} ({type(exc).__name__}: {exc})"[:1000]


def _compare(client: MlflowClient, run_id: str, original_id: str) -> str:
    new, old = client.get_run(run_id), client.get_run(original_id)
    digest, recorded = new.data.params.get(DIGEST_KEY), old.data.params.get(DIGEST_KEY)
    if recorded is None:
        result = f"run {original_id} logged no weights digest (no model, or older than it)"
    elif digest == recorded:
        result = SAME
    else:
        differences = _differences(client, new, old) or [
            "none recorded (settings, data, threads, device, processes, code, Python and key "
            "packages agree): the training is not deterministic here (GPU kernels?)"
        ]
        result = f"other weights than run {original_id}'s; differences: " + "; ".join(differences)
    client.set_tag(run_id, RERUN_RESULT_TAG, result[:5000])
    return result


def _differences(client: MlflowClient, new: Run, old: Run) -> list[str]:
    """What ``new`` and ``old`` recorded differently, as ``name: new (was old)``."""
    pairs = [(new.data.params, old.data.params, (*contract.TRAINING_PARAMS, *DATA_PARAMS,
                                                 *ENV_PARAMS)),
             (new.data.tags, old.data.tags, CODE_TAGS)]  # fmt: skip
    envs = [load_json_artifact(client, run.info.run_id, FIRST_ENVIRONMENT) for run in (new, old)]
    if envs[0] and envs[1]:  # a run trained before the record has none
        versions = [{"python": env.get("python"), "cpu": env.get("cpu"),
                     "torch_cuda": env.get("torch_cuda"), **(env.get("packages") or {})}
                    for env in envs]  # fmt: skip
        pairs.append((versions[0], versions[1], tuple({**versions[1], **versions[0]})))
    return [
        f"{key}: {now.get(key)} (was {was.get(key)})"
        for now, was, keys in pairs
        for key in keys
        if now.get(key) != was.get(key)
    ]
