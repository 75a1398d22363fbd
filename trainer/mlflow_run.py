"""What a training run records in MLflow (the layout in docs/contracts.md) and how."""

import errno
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import numpy as np
import requests
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from common import InvalidInput, PipelineError, get_settings
from runs import (
    DIGEST_KEY,
    MODEL_ARTIFACT,
    MODEL_RECORD_KEY,
    RECORDS,
    RECORDS_KEY,
    Preprocessing,
    check_tracking,
    contract,
    log_classifier,
    weights_digest,
)
from trainer import checkpoint
from trainer.data_warnings import overlap_tag

log = logging.getLogger(__name__)
T = TypeVar("T")
# What a tracking server that stops answering raises from MLflow's client; REFUSALS are the
# error codes of a server that answered and refused (not an outage).
TRACKING_ERRORS = (MlflowException, requests.RequestException, ConnectionError)
REFUSALS = ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "BAD_REQUEST")
OUTAGE_POLL_S = 5.0


def outage_wait_s() -> float:
    """How long training waits for a tracking server that stopped answering: as long as a job
    of the services does (``JOB_RETRY_DELAY_S`` doubled over ``JOB_MAX_ATTEMPTS``: 155 s by
    default, beyond a restart of the server, 20-40 s on a small machine)."""
    settings = get_settings()
    return settings.job_retry_delay_s * (2 ** (settings.job_max_attempts - 1) - 1)


def outage(exc: BaseException) -> bool:
    """Whether ``exc`` says that the tracking server does not answer: a ``TRACKING_ERRORS``, or
    one that an error of ``runs`` wraps (``ServiceUnavailable`` of a logged model), that is no
    refusal (``REFUSALS``: it answered) nor an artifact store failing (``store_failure``)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, TRACKING_ERRORS):
        cause = cause.__cause__
    if cause is None or getattr(cause, "error_code", None) in REFUSALS:
        return False
    return store_failure(cause, mlflow.get_tracking_uri()) is None


def outlasting(call: Callable[[], T], say: Callable[[str], None]) -> T:
    """``call()`` (requests to the tracking server during training: an epoch's, or the whole
    final logging, ``trainer.finish``), tried again every ``OUTAGE_POLL_S`` while the server
    does not answer (``outage``), for up to ``outage_wait_s``: a training of hours goes on
    through a restart of the server. ``call`` must be safe to repeat. Anything else, or an
    outage longer than the wait, raises, as before (the checkpoint is kept for --resume)."""
    wait_s = outage_wait_s()
    began = time.monotonic()
    said = False
    while True:
        try:
            result = call()
        except Exception as exc:
            if time.monotonic() - began >= wait_s or not outage(exc):
                raise
            if not said:
                say(
                    f"warning: the tracking server does not answer ({type(exc).__name__}); "
                    f"training waits up to {wait_s:.0f} s for it"
                )
                said = True
            time.sleep(OUTAGE_POLL_S)
            continue
        if said:
            say(f"the tracking server answers again after {time.monotonic() - began:.0f} s")
        return result


def store_failure(exc: BaseException, tracking_uri: str) -> str | None:
    """What to say when the active run's artifacts could not be written: a local artifact store
    (``file:`` location, a SQLite tracking URI) refusing a file (``OSError`` naming a path of
    it), or a server that answers but failed every try to store one (HTTP 500 or a dropped
    upload: its artifact store is full or not writable; MLflow's client retries for about 4
    minutes first). None for anything else, which is said as before."""
    run = mlflow.active_run()
    if run is None:
        return None
    uri = run.info.artifact_uri
    fix = "the checkpoint is kept: then the same command with --resume auto"
    if isinstance(exc, MlflowException) and "/mlflow-artifacts/" in str(exc):
        if not _answers(tracking_uri):
            return None  # down altogether: an outage, said as one
        return (
            f"the tracking server {tracking_uri} answers but failed every try to store this "
            f"run's artifacts ({uri}): its artifact store (`mlflow server "
            f"--artifacts-destination`) is likely full or not writable, and the server's log "
            f"says which; {fix}"
        )
    if not isinstance(exc, OSError) or isinstance(exc, TRACKING_ERRORS):
        return None
    local = Path(uri.removeprefix("file://")) if uri.startswith(("file:", "/")) else None
    where = (
        f"{local}: the experiment's artifact location (the tracking store's default, or the one "
        "it was created with)"
        if local
        else f"MLflow's staging folder {tempfile.gettempdir()}"
    )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # disk full: copies name no file, or the source
        return (
            f"no space left while writing this run's artifacts (to {where}; MLflow stages each "
            f"file in {tempfile.gettempdir()} first): free space there; {fix}"
        )
    if local is None:
        return None
    # the run's artifact folder, one of its parents, or a file in it
    named = [Path(str(f)) for f in (exc.filename, exc.filename2) if f]
    if not any(local.is_relative_to(f) or f.is_relative_to(local.parent.parent) for f in named):
        return None
    return (
        f"this run's artifacts cannot be written to {where} ({exc.strerror}: {named[0]}); make "
        f"it writable, or train under another --experiment; {fix}"
    )


def _answers(tracking_uri: str) -> bool:
    """Whether the tracking server answers its health check now (``runs.check_tracking``)."""
    try:
        check_tracking(tracking_uri)
    except PipelineError:
        return False
    return True


def quiet() -> None:
    """Silence MLflow's chatter (run URLs, environment inference notes, pydantic warnings)."""
    # MLflow writes "View run ... at: URL" lines to stdout, whose last line is the run id
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow(\..*)?")
    warnings.filterwarnings("ignore", message=r".*(pydantic|Pydantic).*")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def logged_data_dir(data_dir: str | Path, root: str | Path) -> str:
    """The ``data_dir`` parameter as the services read it: relative to ``DATA_DIR`` (``root``)
    when the data lies under it (``--data-dir data`` with the default ``DATA_DIR`` is ``.``), so
    a service with its own ``DATA_DIR`` mount finds it; else the absolute path. A path relative to
    the trainer's working directory would mean another folder to a service, which takes relative
    paths under its ``DATA_DIR``."""
    path, base = Path(data_dir).expanduser().resolve(), Path(root).expanduser().resolve()
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def dataset_params(dataset, preprocessing: Preprocessing) -> dict[str, Any]:
    """Parameters that describe the data: source, content hash, classes, sizes, normalization."""
    counts = {
        split: int(dataset.stats["counts"].get(split, {}).get("total", 0))
        for split in ("train", "val", "test")
    }
    height, width = preprocessing.image_size
    groups = getattr(dataset, "group_digest", None)  # the manifest's, when one gave the groups
    return {
        "dataset_source": str(dataset.source),
        "dataset_hash": dataset.content_hash,
        **({"dataset_groups_hash": groups} if groups else {}),
        "class_names": _json(list(preprocessing.class_names)),
        "num_classes": len(preprocessing.class_names),
        "image_size": f"{height}x{width}",
        "channels": preprocessing.channels,
        "norm_mean": _json([round(v, 6) for v in preprocessing.mean]),
        "norm_std": _json([round(v, 6) for v in preprocessing.std]),
        "data_n_train": counts["train"],
        "data_n_val": counts["val"],
        "data_n_test": counts["test"],
        "data_train_class_counts": _json(
            np.bincount(dataset.train.labels, minlength=len(preprocessing.class_names)).tolist()
        ),
    }


def leakage_params(stats: dict[str, Any]) -> dict[str, int]:
    """``leakage_exact`` / ``leakage_near``: duplicate images across splits (0 when none)."""
    leakage = stats.get("leakage") or {}
    return {
        "leakage_exact": int(leakage.get("exact_total", 0)),
        "leakage_near": int(leakage.get("near_total", 0)),
    }


def start(experiment: str, run_name: str | None, tracking_uri: str) -> str:
    """Start a new run in ``experiment`` (created when missing) and return its id.

    Raises:
        InvalidInput: The experiment was deleted (MLflow keeps its name until it is purged).
    """
    found = MlflowClient(tracking_uri).get_experiment_by_name(experiment)
    if found is not None and found.lifecycle_stage != "active":
        raise InvalidInput(
            f"the experiment {experiment!r} was deleted on the tracking server {tracking_uri} "
            f"(MLflow keeps a deleted experiment's name): restore it (`mlflow experiments restore "
            f"--experiment-id {found.experiment_id}`, or the MLflow UI) or train under another "
            "--experiment name"
        )
    # By its id: when another trainer creates the experiment between MLflow's look-up and its
    # creation, set_experiment returns it without making it active, and the run went to Default.
    found = mlflow.set_experiment(experiment)
    return mlflow.start_run(run_name=run_name, experiment_id=found.experiment_id).info.run_id


def not_continuable(run_id: str, tracking_uri: str) -> str | None:
    """Why the tracking server cannot continue the checkpoint's run ``run_id`` (it lacks it, or
    holds it deleted: a cleanup in its UI, a server reset while checkpoints stayed); None when
    it can, or cannot say (``reopen`` then tells)."""
    try:
        run = MlflowClient(tracking_uri).get_run(run_id)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return None
        return _not_there(run_id, tracking_uri, exc.message)
    if run.info.lifecycle_stage == "deleted":
        return (
            f"the checkpoint's run {run_id} is deleted on the tracking server {tracking_uri}: "
            f"restore it (`mlflow runs restore --run-id {run_id}`) to continue it, or start a "
            "new run"
        )
    return None


def _not_there(run_id: str, tracking_uri: str, why: str) -> str:
    return (
        f"the checkpoint's run {run_id} is not on the tracking server {tracking_uri} ({why}); "
        "resume against the server it was started on, or start a new run without --resume."
    )


def reopen(run_id: str, tracking_uri: str) -> str:
    """Continue the MLflow run of a checkpoint; ``InvalidInput`` when the server lacks it."""
    try:
        return mlflow.start_run(run_id=run_id).info.run_id
    except MlflowException as exc:
        raise InvalidInput(_not_there(run_id, tracking_uri, exc.message)) from exc


def deleted(run_id: str | None, tracking_uri: str) -> bool:
    """Whether run ``run_id`` is in the tracking server's trash (False when it cannot be told)."""
    if run_id is None:
        return False
    try:
        return MlflowClient(tracking_uri).get_run(run_id).info.lifecycle_stage == "deleted"
    except TRACKING_ERRORS:
        return False


def log_setup(
    params: dict[str, Any], dataset, preprocessing: Preprocessing, warning: str | None = None
) -> None:
    """Log parameters, the dataset statistics and the preprocessing of a new run; ``warning``
    (possible leakage) becomes the tag ``pipeline.leakage_warning``, and what the test split
    shares with train and val the tag ``pipeline.test_overlap`` (``data_warnings.overlap_tag``)."""
    extra = {**dataset_params(dataset, preprocessing), **leakage_params(dataset.stats),
             RECORDS_KEY: RECORDS}  # its model will be recorded (runs.logged)  # fmt: skip
    mlflow.log_params({**params, **extra})
    mlflow.log_dict(dataset.stats, contract.DATASET_STATS_JSON)
    mlflow.log_dict(preprocessing.model_dump(mode="json"), contract.PREPROCESSING_JSON)
    val = getattr(dataset, "val", None)
    if str(getattr(dataset, "val_how", "")).startswith("carved") and val is not None and val.files:
        # which images validated: the carve depends on the seed and scikit-learn's version
        mlflow.log_text("\n".join(val.files) + "\n", contract.VAL_FILES_TXT)
    tags = {contract.STAGE_TAG: "training"}
    if warning:
        tags[contract.LEAKAGE_TAG] = warning[:5000]
    tags[contract.TEST_OVERLAP_TAG] = overlap_tag(dataset.stats)
    test = getattr(dataset, "split_hashes", {}).get("test")  # None: no test split read
    tags[contract.TEST_DATA_TAG] = test or contract.NO_TEST_DATA
    mlflow.set_tags(tags)


def log_model(
    model: torch.nn.Module, preprocessing: Preprocessing, operating_point: dict | None = None
) -> None:
    """Log ``model`` as ``model``: self-contained, images in, probabilities (and, with an
    operating point, the thresholded decision) out (runs.packaging).

    Safe to repeat (a try cut short by an outage, a resumed trainer): a model of these weights
    that the run records (param ``logged_model``, written once it is whole) is not logged again,
    and every other model of the run named ``model`` (a try cut short: pending, failed, or
    whole but unrecorded) is deleted first, so the run keeps one, which ``runs:/<id>/model``
    resolves to (MLflow lists deleted LoggedModels nowhere)."""
    run_id = mlflow.active_run().info.run_id
    client = MlflowClient()
    run = client.get_run(run_id)
    params = run.data.params
    recorded = params.get(MODEL_RECORD_KEY, "").split(" ")[0] or None
    for found in _models_named(client, run.info.experiment_id, run_id):
        if found.model_id != recorded:
            client.delete_logged_model(found.model_id)
    if recorded is None or params.get(DIGEST_KEY) != weights_digest(model):
        # (a model of other weights recorded: log_classifier refuses this one, Conflict)
        log_classifier(model, preprocessing, MODEL_ARTIFACT, operating_point)
    mlflow.set_tag(contract.STAGE_TAG, "trained")


def _models_named(client: MlflowClient, experiment_id: str, run_id: str) -> list:
    """The LoggedModels of run ``run_id`` named ``model`` (deleted ones are not listed)."""
    where = f"source_run_id = '{run_id}' AND name = '{MODEL_ARTIFACT}'"
    found, token = [], None
    while True:
        page = client.search_logged_models([experiment_id], where, page_token=token)
        found.extend(page)
        if not (token := page.token):
            return found


def close_abandoned(previous: dict[str, Any], resumed: str | None, tracking_uri: str,
                    folder: Path) -> None:  # fmt: skip
    """Mark KILLED the run that last held the checkpoint folder (``previous``, see
    ``checkpoint.FolderLock``) when MLflow still shows it RUNNING: its trainer is gone, since
    the folder's lock was free, and ended without a word (``kill -9``, out of memory, a stopped
    machine), so nothing else would. Not the run being ``resumed``, which goes on."""
    run_id = previous.get("run_id")
    if not run_id or run_id == resumed:
        return
    client = MlflowClient(tracking_uri)
    try:
        run = client.get_run(run_id)
        if run.info.status != "RUNNING" or run.info.lifecycle_stage != "active":
            return
        named = run.data.tags.get(contract.TRAINER_TAG)  # None: logged before the tag, or the
        if named is not None and named != checkpoint.trainer_id(previous):  # trainer died first
            return  # resumed since by another trainer (from another folder): it may be alive
        client.set_tag(
            run_id, contract.ENDED_TAG,
            f"its trainer (process {previous.get('pid')} on {previous.get('host')}) ended "
            "without marking the run (killed with -9, out of memory, or its machine stopped); "
            f"marked KILLED by the next trainer on the checkpoint folder {folder}",
        )  # fmt: skip
        client.set_terminated(run_id, "KILLED")
    except MlflowException:  # not on this server (another tracking URI used the folder)
        return
    log.warning("run %s showed RUNNING, but its trainer had ended: marked KILLED", run_id)


def settle(held: "checkpoint.Held", resumed: str | None, tracking_uri: str) -> None:
    """Before a run starts: close the runs that the held folders' last trainers left RUNNING
    (``close_abandoned``) and name this trainer in the folders (``resumed``: the run it
    continues, None for a new one, named once it starts)."""
    for lock in held.locks:
        close_abandoned(lock.previous, resumed, tracking_uri, lock.folder)
    held.record(resumed)


def started(run_id: str, held: "checkpoint.Held", resumed: bool = False) -> None:
    """The active run ``run_id`` is this trainer's: say so in the run (``pipeline.trainer``,
    which ``close_abandoned`` checks) and in the held folders, first thing, before a
    ``kill -9`` can leave the run RUNNING unnamed. A resumed run is alive again: the note
    that its trainer had ended goes."""
    held.record(run_id)
    mlflow.set_tag(contract.TRAINER_TAG, checkpoint.trainer_id())
    if resumed and contract.ENDED_TAG in mlflow.get_run(run_id).data.tags:
        mlflow.delete_tag(contract.ENDED_TAG)
