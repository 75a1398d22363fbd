"""Downloading models: a run's model and artifacts into ``ARTIFACTS_DIR/<run_id>/``, recorded.

A download is only a download: it never moves the deployment alias nor rewrites ``run_id.txt``
(that is ``dashboard.choose``). Plain Python without Streamlit.
"""

import getpass
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from common import (
    InvalidInput,
    ServiceUnavailable,
    Settings,
    atomic_replace_dir,
    atomic_write_json,
    confine,
    end_download_threads,
    free_space,
    make_scratch,
    umask_mode,
)
from jobs import STORE_ERRORS
from runs import (
    MODEL_ARTIFACT,
    FilesRefused,
    checked_files,
    contract,
    download_failure,
    find_logged_model,
    get_client,
    get_run,
    model_gone,
    outage_of,
    recorded_model,
    run_model_uri,
    schemas,
    stopped_before_model,
)

DOWNLOAD_JSON = "download.json"
"""Written beside the model in a downloaded folder: what it is (``manifest``)."""
PARTIAL = r"\..+\.partial-"  # unfinished downloads: .<run_id>.partial-<pid>-<host>-<random>


@dataclass(frozen=True)
class Download:
    """What one download produced."""

    run_id: str
    model_uri: str
    artifacts_path: Path
    metrics: dict[str, float]


def download_run(run_id: str, tracking_uri: str, artifacts_dir: str | Path) -> Path:
    """Download the run's model and artifacts into ``artifacts_dir/<run_id>/`` atomically.

    The model is the one its training logged (``models:/<id>`` of the run's param
    ``logged_model``), its files checked against the digest recorded with it before the folder
    is handed out; runs trained before that record download ``runs:/<run_id>/model`` (the latest
    model logged into the run) as before.

    Everything goes to a temporary folder inside ``artifacts_dir`` first and is renamed into place
    only when complete, so a failed download leaves neither a partial folder nor a changed one.
    That folder (``PARTIAL``) names its process: one left by a download killed mid-way is removed
    by the next download there once that process is gone (``common.make_scratch``), never one a
    live download (another dashboard, the CLI) writes. The complete folder gets the umask's mode.
    The model lands in ``<run_id>/model/``, the run's other artifacts beside it, and
    ``DOWNLOAD_JSON`` says which model (its URI, LoggedModel id and files' digest) and
    registered versions it is and which evaluation is current.

    Raises:
        InvalidInput: The run has no model logged as ``model``, its recorded model is gone or
            its files are not those recorded (nothing written), or ``run_id`` would name a
            folder outside ``artifacts_dir`` (``common.confine``).
        ServiceUnavailable: The tracking server cannot be reached.
    """
    return _download(run_id, tracking_uri, artifacts_dir)[0]


def _download(run_id: str, tracking_uri: str, artifacts_dir: str | Path) -> tuple[Path, str]:
    """``download_run``: the folder and the URI of the model downloaded into it."""
    artifacts_dir = Path(artifacts_dir)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    destination = confine(run_id, artifacts_dir, "run_id", "ARTIFACTS_DIR")
    if destination.parent != artifacts_dir.resolve():
        raise InvalidInput(f"run_id {run_id[:80]!r} is not a run id; pick a run from the list.")
    client = get_client(tracking_uri)
    run = get_run(client, run_id)  # NotFound with a clear message for a wrong id
    # the model its training logged, never another logged into the run since (InvalidInput: a
    # marked run without a valid record); runs trained before the record: runs:/ as before
    if recorded := recorded_model(run_id, run.data.params):
        if find_logged_model(client, run) is None:
            raise InvalidInput(
                f"run {run_id} cannot be downloaded: {model_gone(run_id, recorded[0])}."
            )
        uri = f"models:/{recorded[0]}"
    else:
        uri = run_model_uri(run_id)
    tmp = make_scratch(f".{run_id}.partial-", artifacts_dir, family=PARTIAL)

    def failure(exc: Exception, what: str) -> ServiceUnavailable | None:
        if isinstance(exc, OSError) and exc.errno is not None:  # a full or read-only disk
            return ServiceUnavailable(
                f"the {what} of run {run_id} could not be written to {artifacts_dir} ({exc}; "
                f"{free_space(artifacts_dir)}); free space there or set ARTIFACTS_DIR to a "
                "writable folder."
            )
        return outage_of(tracking_uri, exc, f"download the {what} of run {run_id}")

    try:
        try:
            if client.list_artifacts(run_id):
                client.download_artifacts(run_id, "", str(tmp))
        except (MlflowException, OSError) as exc:
            if down := failure(exc, "artifacts"):
                raise down from exc
            raise
        model_dir = tmp / MODEL_ARTIFACT
        if model_dir.exists():  # an MLflow 2 style run that logged the model among artifacts
            shutil.rmtree(model_dir)
        # runs:/<id>/model lands in tmp/model/ (the URI's last part names it), models:/<id>
        # in the folder given
        into = model_dir if recorded else tmp
        into.mkdir(exist_ok=True)
        try:
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(into), tracking_uri=tracking_uri
            )
        except (MlflowException, OSError) as exc:
            if down := failure(exc, "model"):
                raise down from exc
            # MLflow says "no model" for any failed download of runs:/ (a full disk too)
            if here := download_failure(uri, artifacts_dir, exc, tracking_uri, "ARTIFACTS_DIR"):
                raise here from exc
            if recorded:  # it exists (find_logged_model), its files do not download
                raise InvalidInput(
                    f"the model of run {run_id} ({uri}, the one its training logged) cannot be "
                    f"downloaded ({exc}); its files may be gone from the artifact store: restore "
                    f"them, or train the run again (python -m trainer --from-run {run_id})."
                ) from exc
            if stopped := stopped_before_model(run):
                raise InvalidInput(f"run {run_id} cannot be deployed: {stopped}.") from exc
            raise InvalidInput(
                f"run {run_id} has no model logged as '{MODEL_ARTIFACT}', so it cannot be "
                "deployed; "
                "pick a run trained by `python -m trainer` (its model is runs:/<id>/model)."
            ) from exc
        files = _checked_files(uri, model_dir, recorded[1] if recorded else None)
        model = {"model_uri": uri, "logged_model_id": recorded[0] if recorded else None}
        model["files_digest"] = files  # of the files downloaded (None: not digestible)
        atomic_write_json(tmp / DOWNLOAD_JSON, manifest(client, run_id) | model)
        os.chmod(tmp, umask_mode())  # made 0700, as every scratch folder
        return atomic_replace_dir(tmp, destination), uri
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        end_download_threads()


def _checked_files(uri: str, folder: Path, recorded: str | None) -> str | None:
    """``files_digest`` of the model downloaded from ``uri`` into ``folder``, checked against
    the ``recorded`` one (``runs.checked_files``); None for a run trained before the record
    whose files cannot be digested (a symbolic link among them), as before the record.

    Raises:
        FilesRefused: (an ``InvalidInput``) other files than those its training logged, or a
            symbolic link among them.
    """
    try:
        return checked_files(str(folder), uri, recorded, done="downloaded")
    except FilesRefused:
        if recorded:
            raise
        return None


def manifest(client, run_id: str) -> dict:
    """What a downloaded folder is (``DOWNLOAD_JSON``): the run, the registered versions of its
    model (with their aliases and the evaluation each was chosen on) and the run's current
    evaluation folder, read when it was downloaded: the folder itself names none of them."""
    run = get_run(client, run_id)
    tags = run.data.tags
    versions = []
    try:
        found = client.search_model_versions(f"run_id = '{run_id}'")
        # a search leaves the aliases out (MLflow 3): read each version itself
        found = [client.get_model_version(mv.name, mv.version) for mv in found]
    except MlflowException as exc:
        if down := outage_of(client.tracking_uri, exc, f"read the versions of run {run_id}"):
            raise down from exc
        # a registry that refuses (no permission, none on this server): the download stands
        found, unread = [], f"the registry could not be read: {exc.message}"
    else:
        unread = None
    for mv in sorted(found, key=lambda v: (v.name, int(v.version))):
        versions.append({
            "name": mv.name,
            "version": str(mv.version),
            "model_uri": f"models:/{mv.name}/{mv.version}",
            "aliases": sorted(mv.aliases or []),
            "evaluation_path": (mv.tags or {}).get("evaluation_path"),
        })  # fmt: skip
    evaluated = contract.is_evaluated(tags)
    return {
        "run_id": run_id,
        "experiment_id": run.info.experiment_id,
        "model_uri": run_model_uri(run_id),
        "registered_versions": None if unread else versions,
        **({"registered_versions_unread": unread} if unread else {}),
        "evaluation_path": contract.evaluation_dir(tags) if evaluated else None,
        "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def key_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics worth recording with a selection: all but per-epoch bookkeeping."""
    skip = ("lr", "epoch_time")
    return {k: float(v) for k, v in sorted(metrics.items()) if k not in skip}


def download_model(
    run_id: str, settings: Settings, store=None, selected_by: str | None = None
) -> Download:
    """Download the run and record it as ``action: download`` by ``selected_by`` (None: the OS
    user) (``store`` None: no record).

    Raises:
        ServiceUnavailable: As ``download_run``; or the folder was downloaded but its record
            could not be stored (the store down, its disk full): the message names the folder.
    """
    path, model_uri = _download(run_id, settings.mlflow_tracking_uri, settings.artifacts_dir)
    run = get_run(get_client(settings.mlflow_tracking_uri), run_id)
    metrics = key_metrics(run.data.metrics)
    if store is not None:
        record = schemas.SelectionRecord(
            run_id=run_id,
            action="download",
            model_uri=model_uri,
            experiment_id=run.info.experiment_id,
            metrics=metrics,
            artifacts_path=str(path.resolve()),
            selected_by=selected_by or os_user(),
        )
        try:
            store.record(record)
        except STORE_ERRORS as exc:
            raise ServiceUnavailable(
                f"run {run_id} was downloaded to {path}, but the record of the download could "
                f"not be stored ({type(exc).__name__}: {exc}); check MONGO_URI (or the disk of "
                "STORE_DIR) and download the run again to record it."
            ) from exc
    return Download(run_id, model_uri, path, metrics)


def os_user() -> str:
    """The operating system's name of who runs this process, recorded as who made a download or
    a choice when they name nobody; ``unknown`` where the system has none (a container's
    numeric user without a passwd entry)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
