"""MLflow reads the dashboard needs, as plain functions of a tracking URI (no Streamlit).

Every function returns plain, picklable data (dicts, lists, DataFrames) so that ``dashboard.data``
can cache it. The number of MLflow calls each makes depends on the selected run(s) and on the page
size, never on the number of runs in the experiment.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from common import InvalidInput, NotFound, ServiceUnavailable, end_download_threads, scratch_dir
from runs import contract, get_run, outage_of

# Searching more experiments than this is never useful in a picker.
MAX_EXPERIMENTS = 1000
# Artifacts larger than this are previewed from their first bytes instead of loaded whole.
PREVIEW_BYTES = 2 * 1024 * 1024
RUN_STATUSES = ("FINISHED", "RUNNING", "FAILED", "KILLED", "SCHEDULED")
# run id -> artifact URI, filled from searches: a run's artifact location never changes, and
# knowing it spares MLflow a get_run call for every artifact listing or download.
_ARTIFACT_URIS: dict[str, str] = {}


@dataclass(frozen=True)
class RunQuery:
    """What the run picker asks for: one page of one experiment's runs."""

    experiment_id: str
    name_contains: str = ""
    statuses: tuple[str, ...] = ()
    filter_string: str = ""
    order_by: str = "attributes.start_time DESC"
    page_size: int = 50
    page_token: str | None = None

    def mlflow_filter(self) -> str:
        """The MLflow filter expression combining the name, status and free filter."""
        parts = []
        if self.name_contains:
            escaped = self.name_contains.replace("'", "''")
            parts.append(f"attributes.run_name ILIKE '%{escaped}%'")
        if len(self.statuses) == 1:
            parts.append(f"attributes.status = '{self.statuses[0]}'")
        elif self.statuses:
            quoted = ", ".join(f"'{s}'" for s in self.statuses)
            parts.append(f"attributes.status IN ({quoted})")
        if self.filter_string.strip():
            parts.append(self.filter_string.strip())
        return " and ".join(parts)


@dataclass
class RunPage:
    rows: list[dict] = field(default_factory=list)
    next_token: str | None = None


def client_for(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri)


def _mlflow_error(exc: MlflowException, what: str) -> Exception:
    if exc.error_code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
        return InvalidInput(f"{what}: {exc.message}")
    if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return NotFound(f"{what}: {exc.message}")
    return ServiceUnavailable(f"{what}: MLflow answered {exc.error_code}: {exc.message}")


def run_to_dict(run) -> dict:
    """A picklable summary of an MLflow ``Run``."""
    info = run.info
    tags = dict(run.data.tags)
    if len(_ARTIFACT_URIS) > 100_000:
        _ARTIFACT_URIS.clear()
    _ARTIFACT_URIS[info.run_id] = info.artifact_uri
    return {
        "run_id": info.run_id,
        "run_name": info.run_name or tags.get("mlflow.runName") or info.run_id[:8],
        "experiment_id": info.experiment_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "artifact_uri": info.artifact_uri,
        "parent_run_id": tags.get("mlflow.parentRunId"),
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": tags,
    }


def list_experiments(uri: str) -> list[dict]:
    """Active experiments (at most ``MAX_EXPERIMENTS``): the one holding the newest run first,
    then the most recently updated.

    An experiment's ``last_update_time`` moves when it is renamed or tagged, not when runs are
    added, so alone it would open a long-idle (often empty) experiment first.
    """
    client = client_for(uri)
    try:
        exps = client.search_experiments(
            view_type=ViewType.ACTIVE_ONLY,
            max_results=MAX_EXPERIMENTS,
            order_by=["last_update_time DESC"],
        )
        newest = (
            client.search_runs(
                [e.experiment_id for e in exps],
                max_results=1,
                order_by=["attributes.start_time DESC"],
            )
            if exps
            else []
        )
    except MlflowException as exc:
        raise _mlflow_error(exc, "listing experiments failed") from exc
    first = newest[0].info.experiment_id if newest else None
    exps = sorted(exps, key=lambda e: e.experiment_id != first)  # stable: the rest keep order
    return [{"experiment_id": e.experiment_id, "name": e.name} for e in exps]


def search_runs(uri: str, query: RunQuery) -> RunPage:
    """One page of runs: a single ``search_runs`` call whatever the experiment's size."""
    client = client_for(uri)
    try:
        page = client.search_runs(
            experiment_ids=[query.experiment_id],
            filter_string=query.mlflow_filter(),
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=query.page_size,
            order_by=[query.order_by] if query.order_by else None,
            page_token=query.page_token,
        )
    except MlflowException as exc:
        raise _mlflow_error(
            exc,
            "the run filter is not valid (example: metrics.val_auc > 0.8 and "
            "params.model = 'smallcnn')",
        ) from exc
    return RunPage([run_to_dict(r) for r in page], page.token or None)


def _search(uri: str, experiment_id: str, filter_string: str, limit: int) -> list[dict]:
    try:
        found = client_for(uri).search_runs(
            experiment_ids=[experiment_id],
            filter_string=filter_string,
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=limit,
            order_by=["attributes.start_time DESC"],
        )
    except MlflowException as exc:
        raise _mlflow_error(exc, "searching runs failed") from exc
    return [run_to_dict(r) for r in found]


def newest_deployable(uri: str, experiment_id: str) -> dict | None:
    """The newest finished run with a model of this pipeline (the page's default run)."""
    found = _search(
        uri,
        experiment_id,
        f"attributes.status = 'FINISHED' and tags.`{contract.STAGE_TAG}` = 'trained'",
        1,
    )
    return found[0] if found else None


def child_runs(uri: str, experiment_id: str, run_id: str, limit: int = 100) -> list[dict]:
    """The runs nested under ``run_id`` (newest first, at most ``limit``)."""
    return _search(uri, experiment_id, f"tags.mlflow.parentRunId = '{run_id}'", limit)


def logged_models(uri: str, experiment_id: str, run_id: str) -> list[dict]:
    """The MLflow LoggedModels the run produced: name and model URI (one search call)."""
    try:
        found = client_for(uri).search_logged_models(
            experiment_ids=[experiment_id],
            filter_string=f"source_run_id = '{run_id}'",
            max_results=50,
        )
    except MlflowException as exc:
        raise _mlflow_error(exc, f"listing the models of run {run_id} failed") from exc
    return [{"name": m.name, "model_uri": m.model_uri} for m in found]


def load_run(uri: str, run_id: str) -> dict:
    return run_to_dict(get_run(client_for(uri), run_id))


HISTORY_DTYPES = {"run_id": object, "key": object, "step": np.int64, "timestamp": np.int64,
                  "value": np.float64}  # fmt: skip
HISTORY_COLUMNS = tuple(HISTORY_DTYPES)


def metric_histories(uri: str, run_ids: tuple[str, ...], keys: tuple[str, ...]) -> pd.DataFrame:
    """Histories of ``keys`` for ``run_ids``: columns run_id, key, step, timestamp, value."""
    client = client_for(uri)
    columns: dict[str, list] = {c: [] for c in HISTORY_COLUMNS}
    for run_id in run_ids:
        for key in keys:
            try:
                history = client.get_metric_history(run_id, key)
            except MlflowException as exc:
                raise _mlflow_error(exc, f"reading metric {key!r} of run {run_id}") from exc
            columns["run_id"] += [run_id] * len(history)
            columns["key"] += [key] * len(history)
            columns["step"] += [m.step for m in history]
            columns["timestamp"] += [m.timestamp for m in history]
            columns["value"] += [float(m.value) for m in history]
    # One frame at the end, typed by its arrays (an empty history too): a frame per metric
    # and a concat, or ``astype``, cost more than the reads.
    typed = {name: np.array(columns[name], dtype) for name, dtype in HISTORY_DTYPES.items()}
    return pd.DataFrame(typed)


def _repository(uri: str, run_id: str):
    """The artifact repository of ``run_id`` (one get_run only for a run never searched)."""
    artifact_uri = _ARTIFACT_URIS.get(run_id) or load_run(uri, run_id)["artifact_uri"]
    return get_artifact_repository(artifact_uri, tracking_uri=uri)


def list_artifacts(uri: str, run_id: str) -> list[dict]:
    """Every artifact file of the run, recursively: path, size, is_dir (folders included)."""
    repo = _repository(uri, run_id)
    out: list[dict] = []
    pending = [""]
    while pending:
        folder = pending.pop()
        try:
            entries = repo.list_artifacts(folder or None)
        except (MlflowException, OSError) as exc:
            raise ServiceUnavailable(f"listing artifacts of run {run_id} failed: {exc}") from exc
        for entry in entries:
            out.append({"path": entry.path, "is_dir": entry.is_dir, "size": entry.file_size})
            if entry.is_dir:
                pending.append(entry.path)
    return sorted(out, key=lambda e: e["path"])


def read_artifact(uri: str, run_id: str, path: str, max_bytes: int | None = None) -> bytes:
    """The bytes of one artifact file (only its first ``max_bytes`` when given).

    Raises:
        NotFound: The run has no such artifact.
    """
    if max_bytes is not None and uri.startswith(("http://", "https://")):
        return _read_head_http(uri, run_id, path, max_bytes)
    repo = _repository(uri, run_id)
    # named after this process: what a killed dashboard left (a misclassified image: patient
    # data) is removed by the next read once it has gone (common.scratch_dir)
    with scratch_dir("dashboard-read-") as tmp:
        try:
            local = repo.download_artifacts(path, str(tmp))
        except (MlflowException, OSError) as exc:
            if down := outage_of(uri, exc, f"read {path!r} of run {run_id}"):
                raise down from exc
            raise NotFound(f"run {run_id} has no artifact {path!r}") from exc
        finally:
            end_download_threads()
        with open(local, "rb") as f:
            return f.read() if max_bytes is None else f.read(max_bytes)


def _read_head_http(uri: str, run_id: str, path: str, max_bytes: int) -> bytes:
    """Stream only the first bytes of an artifact from a tracking server (auth from env vars)."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    response = http_request(
        get_default_host_creds(uri),
        "/get-artifact",
        "GET",
        params={"path": path, "run_uuid": run_id},
        stream=True,
        raise_on_status=False,
        max_retries=1,
    )
    with response:
        if response.status_code == 404:
            raise NotFound(f"run {run_id} has no artifact {path!r}")
        if response.status_code != 200:
            raise ServiceUnavailable(
                f"MLflow answered HTTP {response.status_code} for artifact {path!r}"
            )
        chunks, total = [], 0
        for chunk in response.iter_content(64 * 1024):
            chunks.append(chunk)
            total += len(chunk)
            if total >= max_bytes:
                break
    return b"".join(chunks)[:max_bytes]
