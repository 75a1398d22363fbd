"""MLflow access shared by the services: reachability, runs, models and preprocessing.

Every function raises a ``common.errors`` error with a message for the user rather than letting
MLflow's exceptions (or its minutes of HTTP retries) reach them.
"""

import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import requests
from mlflow.entities import Metric, Run, RunTag
from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.uri import is_local_uri
from pydantic import ValidationError

from common import InvalidInput, NotFound, ServiceUnavailable, end_download_threads
from runs import (
    client_setup,  # noqa: F401 - sets MLflow's client up before any use
    contract,
)
from runs.contract import PREPROCESSING_JSON as PREPROCESSING_PATH
from runs.digest import FilesRefused, check_run_model
from runs.interface import ServedRecord, read_served
from runs.preprocessing import Preprocessing

# The logged model's name in a run (runs:/<id>/model); not the MODEL_NAME setting (registry).
MODEL_ARTIFACT = "model"


def check_tracking(uri: str, timeout: float = 5.0) -> None:
    """Raise ``ServiceUnavailable`` unless the MLflow tracking server at ``uri`` answers.

    A database store (``sqlite:`` and the like) is always considered reachable. A file store
    (``file:`` or a plain path) is refused: MLflow 3 raises on its first use, after the data
    was loaded (unless ``MLFLOW_ALLOW_FILE_STORE`` opts out, which is then respected). The
    messages name the server without its credentials (every ``PipelineError`` redacts them).
    """
    # MLflow's own test of a local (file) store: "databricks" has no scheme but is not one
    try:
        local = bool(uri) and is_local_uri(uri, is_tracking_or_registry_uri=True)
    except MlflowException:  # file://host/path: a file store on another host
        local = True
    if local and not MLFLOW_ALLOW_FILE_STORE.get():
        raise ServiceUnavailable(
            f"the MLflow tracking URI {uri} is a file store (an mlruns folder), which MLflow 3 no "
            "longer opens; set MLFLOW_TRACKING_URI (or --tracking-uri) to a tracking server "
            "(http://host:port) or a database file (sqlite:///path/mlflow.db)"
        ).needs_operator()
    if not uri.startswith(("http://", "https://")):
        return
    try:
        response = requests.get(uri.rstrip("/") + "/health", timeout=timeout)
    except requests.ReadTimeout as exc:  # it took the connection but does not answer (a
        # ConnectTimeout, a wrong address or a dropping firewall, is "unreachable" below)
        raise ServiceUnavailable(
            f"MLflow tracking server at {uri} did not answer within {timeout:g} s "
            f"({type(exc).__name__}): it is overloaded or hung; check its process and log, and "
            "restart it if it stays so."
        ) from exc
    except requests.RequestException as exc:
        raise ServiceUnavailable(
            f"MLflow tracking server at {uri} is unreachable ({type(exc).__name__}). "
            "Start it (make demo starts one) or set MLFLOW_TRACKING_URI to a running server."
        ) from exc
    if response.status_code != 200:
        raise ServiceUnavailable(
            f"MLflow tracking server at {uri} answered HTTP {response.status_code} on /health; "
            "check MLFLOW_TRACKING_URI and the server's --allowed-hosts."
        )


def get_client(uri: str) -> MlflowClient:
    """A client for ``uri`` after checking that the server answers."""
    check_tracking(uri)
    return MlflowClient(tracking_uri=uri)


def get_run(client: MlflowClient, run_id: str) -> Run:
    """The run ``run_id``; ``NotFound`` when the tracking server has no such run or it is
    deleted (in MLflow's trash, where nothing can be logged to it)."""
    server = client.tracking_uri  # shown without credentials: NotFound redacts them
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise NotFound(
                f"run {run_id!r} does not exist on the tracking server {server}; "
                "copy a run id from the MLflow UI or the trainer's last output line."
            ) from exc
        raise ServiceUnavailable(f"MLflow failed to return run {run_id!r}: {exc.message}") from exc
    if run.info.lifecycle_stage == "deleted":
        raise NotFound(
            f"run {run_id!r} is deleted on the tracking server {server}; restore it "
            "in the MLflow UI (or `mlflow runs restore --run-id`) or choose another run."
        )
    return run


_OUTAGE_CODES = ("TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR")


def result_current(uri: str, path_tag: str, job: dict) -> bool:
    """Whether a succeeded job's result folder (``result.artifact_path``) is still its run's
    current result at ``uri`` (the run's ``path_tag``, ``EVALUATION_PATH_TAG`` or
    ``EXPLANATION_PATH_TAG``, names it) and among its artifacts. Reusing one that is not would
    answer "done" while the run, and every reader of it, shows another result (one made since on
    other data or with --tta): the request would change nothing however often it were sent. With
    MLflow restored from a backup older than the job store, a stored job names a folder the run
    no longer has. True where it cannot tell (no folder recorded, MLflow not answering)."""
    folder = (job.get("result") or {}).get("artifact_path")
    if not folder:
        return True
    try:
        client = get_client(uri)
        current = client.get_run(job["run_id"]).data.tags.get(path_tag)
        if current is not None and current.strip("/") != folder.strip("/"):
            return False
        return bool(client.list_artifacts(job["run_id"], folder))
    except Exception:  # an outage (get_client fails fast on it): the stored answer stands
        return True


def outage_of(uri: str, exc: BaseException, what: str) -> ServiceUnavailable | None:
    """A ``ServiceUnavailable`` when ``exc`` came from MLflow being unreachable, else None.

    MLflow wraps connection failures and timeouts in ``MlflowException`` or lets them through
    as ``requests``/``OSError`` errors; a missing artifact looks alike from outside. Connection
    errors anywhere in the chain, a 5xx/unavailable error code, or a failed health check now
    mean an outage, which the job runner retries; anything else is the run's fault.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.ConnectionError | requests.Timeout | ConnectionError):
            break
        if isinstance(seen, TimeoutError):
            break
        # MLflow reports failed artifact downloads as one INTERNAL_ERROR listing each file's
        # failure: a file the server says is missing is not an outage.
        missing = any(word in str(seen) for word in ("RESOURCE_DOES_NOT_EXIST", "404 Client"))
        if getattr(seen, "error_code", None) in _OUTAGE_CODES and not missing:
            break
        seen = seen.__cause__ or seen.__context__
    else:
        try:
            check_tracking(uri, timeout=3)
            return None
        except ServiceUnavailable as down:
            return ServiceUnavailable(f"could not {what}: {down}")
    return ServiceUnavailable(
        f"could not {what}: MLflow at {uri} did not answer "
        f"({type(seen).__name__}); this is an outage, not a problem of the run: the job is "
        "retried. Check the tracking server."
    )


def stopped_before_model(run: Run) -> str | None:
    """Why a run without a model has none, when it is a run of the trainer (its stage tag) that
    did not finish (status not FINISHED: stopped, failed or still at work before it logged its
    model), and the way on, for a person; None for another run (not the trainer's, or one that
    finished without a model: nothing to continue)."""
    status = run.info.status
    if status == "FINISHED" or run.data.tags.get(contract.STAGE_TAG) != "training":
        return None
    how = (
        "the trainer's command with `--resume auto` continues it while it is its checkpoint "
        "folder's last run (the Kubernetes Job, Compose's trainer and `make demo` pass it), "
        "else `--resume <folder>/last-<run id>.pt` (a checkpoint written by a release before "
        "2026-12-06 cannot go on: its data was identified otherwise; train it anew with "
        "`--from-run <run id>`); or pick a finished run"
    )
    if status == "RUNNING":
        return f"it is still RUNNING and has not logged its model yet (if its trainer died, {how})"
    return f"the run stopped ({status}) before its model was logged: {how}"


def load_json_artifact(client: MlflowClient, run_id: str, path: str) -> Any | None:
    """The run's JSON artifact ``path``, or None when the run has no such file (one download).

    Raises:
        ServiceUnavailable: MLflow cannot be reached (``outage_of``): an outage is not a missing
            file, and the job runner retries it.
        InvalidInput: The file is not JSON.
    """
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except (MlflowException, OSError) as exc:
            outage = outage_of(client.tracking_uri, exc, f"read {path} of run {run_id}")
            if outage is not None:
                raise outage from exc
            return None
        finally:
            end_download_threads()
        try:
            with open(local, encoding="utf-8") as f:
                return json.load(f)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise InvalidInput(
                f"{path} of run {run_id} is not valid JSON ({exc}); it was not written by this "
                "pipeline or was damaged: train the run again"
            ) from exc


def load_preprocessing(client: MlflowClient, run_id: str) -> Preprocessing:
    """The run's ``preprocessing.json``; ``InvalidInput`` when the run has none,
    ``ServiceUnavailable`` when MLflow cannot be reached."""
    found = load_json_artifact(client, run_id, PREPROCESSING_PATH)
    if found is None:
        raise InvalidInput(
            f"run {run_id} has no {PREPROCESSING_PATH} artifact, so its inputs cannot be "
            "rebuilt; only runs trained by `python -m trainer` can be evaluated or explained."
        )
    try:
        return Preprocessing.model_validate(found)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(
            f"{PREPROCESSING_PATH} of run {run_id} does not describe a model's inputs "
            f"({problems[:300]}); train the run again with `python -m trainer`."
        ) from exc


def load_model(run_id: str, tracking_uri: str, params: dict[str, str] | None = None):
    """Load the PyTorch module of ``runs:/<run_id>/model`` on the CPU in eval mode.

    Works for the self-contained models the trainer logs now and for the bare PyTorch models of
    older runs (see ``runs.packaging``). It is the model the run's training logged (``runs.logged``:
    its files refused unread when changed since) and its weights must be those the run recorded
    (``runs.digest``; runs trained before either record load what MLflow finds, or unchecked):
    the run's ``params``, read here unless the caller holds them.

    Raises:
        InvalidInput: The run has no model, or it cannot be read (``FilesRefused``: its files
            are not those its training logged).
        Conflict: Another model was logged into the run after its training (runs trained
            before the record of which model that was).
        ServiceUnavailable: MLflow could not be reached (an outage: retry later).
    """
    import mlflow

    from runs.logged import find_logged_model, recorded_model
    from runs.packaging import load_torch

    mlflow.set_tracking_uri(tracking_uri)
    try:
        client = MlflowClient(tracking_uri)
        run = get_run(client, run_id)
        params = run.data.params if params is None else params
        # the model its training logged, its files checked before they are read; runs trained
        # before that record: the run's model as MLflow finds it (its weights checked below)
        if recorded := recorded_model(run_id, run.data.params):
            if find_logged_model(client, run) is None:  # never the unchecked model instead
                raise InvalidInput(f"the model {recorded[0]} its training logged is gone")
            model = load_torch(f"models:/{recorded[0]}", recorded[1])
        else:
            model = load_torch(run_model_uri(run_id))
    except (InvalidInput, ServiceUnavailable, MlflowException, OSError) as exc:
        outage = outage_of(tracking_uri, exc, f"load the model of run {run_id}")
        if outage is not None:
            raise outage from exc
        if isinstance(exc, ServiceUnavailable | FilesRefused):  # it says what is wrong
            raise
        raise InvalidInput(
            f"run {run_id} has no loadable model logged as '{MODEL_ARTIFACT}' ({exc}); "
            "train one with `python -m trainer --data-dir DIR --experiment NAME`."
        ) from exc
    check_run_model(model, run_id, params)  # Conflict: not the model trained in the run
    return model


def new_result_id() -> str:
    """A fresh result folder name for work done outside a job (the CLIs): time and randomness."""
    return f"cli-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def run_model_uri(run_id: str) -> str:
    """``runs:/<run_id>/model``: the model the trainer logged in the run."""
    return f"runs:/{run_id}/{MODEL_ARTIFACT}"


def job_result_id(job: dict) -> str:
    """The result folder name of a job's attempt, ``<job id>-<try>``: a later try never writes
    into an earlier one's folder (``tries`` counts every claim, also those given back at a
    shutdown, which ``attempts`` does not count; a job queued before ``tries`` existed counts on
    from its ``attempts``)."""
    return f"{job['job_id']}-{max(job.get('tries') or 0, job.get('attempts') or 0, 1)}"


def earlier_answer(tracking_uri: str, job: dict, kind: str) -> dict | None:
    """The answer an earlier try of ``job`` published as its run's current ``kind``
    (``evaluation`` or ``explanation``), or None: run the job.

    A service that dies after a job published its result but before the job store recorded it
    requeues the job; its next try answers with what was published (the folder's
    ``contract.JOB_RESULT_JSON``) instead of publishing the same result again (a second folder,
    every metric logged twice). A folder without that file (an older version) is not reused.

    Raises:
        NotFound: No such run. ServiceUnavailable: MLflow cannot be reached.
    """
    if max(job.get("tries") or 0, job.get("attempts") or 0) <= 1:
        return None
    client = get_client(tracking_uri)
    run_id = job["run_id"]
    tags = get_run(client, run_id).data.tags
    current, parent = {
        "evaluation": (contract.evaluation_dir(tags), contract.EVALUATION_DIR),
        "explanation": (contract.explanation_dir(tags), contract.EXPLANATIONS_DIR),
    }[kind]
    if not current.startswith(f"{parent}/{job['job_id']}-"):
        return None
    try:
        answer = load_json_artifact(client, run_id, f"{current}/{contract.JOB_RESULT_JSON}")
    except InvalidInput:  # damaged: compute it again
        return None
    return answer if isinstance(answer, dict) else None


def publish_result(
    client: MlflowClient,
    run_id: str,
    metrics: dict[str, float],
    folder: str,
    kind: str,
    tags: dict[str, str] | None = None,
) -> None:
    """Make ``folder`` the run's current ``kind`` (``evaluation`` or ``explanation``): one
    ``log_batch`` with the metrics, the two tags that name it (see ``runs.contract``), the
    metrics' stamp (``PUBLISHED_MS_TAG``) and ``tags`` (what the result was made on: they change
    with it, in the same request).

    Raises:
        InvalidInput: The run refuses it (deleted meanwhile); a retry cannot help.
        ServiceUnavailable: MLflow failed otherwise; the previous result stays current.
    """
    path_tag, done_tag = {
        "evaluation": (contract.EVALUATION_PATH_TAG, contract.EVALUATED_TAG),
        "explanation": (contract.EXPLANATION_PATH_TAG, contract.EXPLAINED_TAG),
    }[kind]
    stamp_tag = contract.PUBLISHED_MS_TAG.format(kind=kind)
    try:
        # Stamped after the current result's metrics, whatever this machine's clock says: else
        # the run would show the metrics of the earlier result beside tags naming this one.
        # (Results of a run publish one at a time: ``jobs.JobStore.start_publishing``.)
        previous = client.get_run(run_id).data.tags.get(stamp_tag, "")
        stamp = int(time.time() * 1000)
        if previous.isdigit():
            stamp = max(stamp, int(previous) + 1)
        client.log_batch(
            run_id,
            metrics=[Metric(key, float(value), stamp, 0) for key, value in metrics.items()],
            tags=[RunTag(path_tag, folder), RunTag(done_tag, "true"), RunTag(stamp_tag, str(stamp))]
            + [RunTag(key, value) for key, value in (tags or {}).items()],
        )
    except (MlflowException, OSError) as exc:
        refused = ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
        if getattr(exc, "error_code", None) in refused:
            # the run itself refuses (deleted while the job ran): retrying cannot help
            raise InvalidInput(
                f"MLflow refused the {kind} results of run {run_id}: {exc} The run was "
                "probably deleted while the job ran; restore it and submit the job again."
            ) from exc
        raise ServiceUnavailable(
            f"MLflow refused the {kind} results of run {run_id} ({exc}); the previous {kind} "
            "stays current. Check the tracking server, then retry."
        ) from exc


def last_served(tracking_uri: str, model_name: str, alias: str) -> ServedRecord | None:
    """What the predictors of ``model_name@alias`` recorded as served last
    (``runs.served_tag``); None when nothing is recorded or the model is not registered.

    Raises:
        ServiceUnavailable: MLflow failed to answer.
    """
    try:
        model = get_client(tracking_uri).get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return None
        raise ServiceUnavailable(f"MLflow failed to read {model_name}: {exc}") from exc
    return read_served(dict(model.tags or {}), alias)
