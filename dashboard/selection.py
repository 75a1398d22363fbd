"""Choosing a model for deployment: download it, write ``run_id.txt``, record the choice.

Plain Python without Streamlit, so the CLI, tests and other services can reuse it.
"""

import getpass
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from common import InvalidInput, Settings, atomic_replace_dir, atomic_write_text, confine
from runs import MODEL_NAME, get_client, get_run

RUN_ID_FILE = "run_id.txt"


@dataclass(frozen=True)
class Selection:
    """What one "Download model" produced."""

    run_id: str
    model_uri: str
    artifacts_path: Path
    run_id_file: Path | None
    metrics: dict[str, float]


def model_uri(run_id: str) -> str:
    return f"runs:/{run_id}/{MODEL_NAME}"


def download_run(run_id: str, tracking_uri: str, artifacts_dir: str | Path) -> Path:
    """Download the run's model and artifacts into ``artifacts_dir/<run_id>/`` atomically.

    Everything goes to a temporary folder inside ``artifacts_dir`` first and is renamed into place
    only when complete, so a failed download leaves neither a partial folder nor a changed one.
    The model lands in ``<run_id>/model/``, the run's other artifacts beside it.

    Raises:
        InvalidInput: The run has no model logged as ``model``, or ``run_id`` would name a
            folder outside ``artifacts_dir`` (``common.confine``).
        ServiceUnavailable: The tracking server cannot be reached.
    """
    artifacts_dir = Path(artifacts_dir)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    destination = confine(run_id, artifacts_dir, "run_id", "ARTIFACTS_DIR")
    if destination.parent != artifacts_dir.resolve():
        raise InvalidInput(f"run_id {run_id[:80]!r} is not a run id; pick a run from the list.")
    client = get_client(tracking_uri)
    get_run(client, run_id)  # NotFound with a clear message for a wrong id
    tmp = Path(tempfile.mkdtemp(dir=artifacts_dir, prefix=f".{run_id}.partial-"))
    try:
        if client.list_artifacts(run_id):
            client.download_artifacts(run_id, "", str(tmp))
        model_dir = tmp / MODEL_NAME
        if model_dir.exists():  # an MLflow 2 style run that logged the model among artifacts
            shutil.rmtree(model_dir)
        try:
            # Lands in tmp/model/ (the last part of the URI names the folder).
            mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri(run_id), dst_path=str(tmp), tracking_uri=tracking_uri
            )
        except (MlflowException, OSError) as exc:
            raise InvalidInput(
                f"run {run_id} has no model logged as '{MODEL_NAME}', so it cannot be deployed; "
                "pick a run trained by `python -m trainer` (its model is runs:/<id>/model)."
            ) from exc
        return atomic_replace_dir(tmp, destination)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def key_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics worth recording with a selection: all but per-epoch bookkeeping."""
    skip = ("lr", "epoch_time")
    return {k: float(v) for k, v in sorted(metrics.items()) if k not in skip}


def select_run(
    run_id: str,
    settings: Settings,
    store=None,
    run_id_dir: str | Path | None = None,
    selected_by: str | None = None,
) -> Selection:
    """Download the run, write ``run_id.txt`` into ``run_id_dir`` and record the selection.

    Args:
        run_id: The chosen run.
        settings: Tracking URI and ``artifacts_dir``.
        store: A ``common.SelectionStore``; ``None`` skips the record.
        run_id_dir: Folder of ``run_id.txt`` (``settings.run_id_file`` when ``None``); pass
            ``False`` to not write it (top-K downloads after the first).
        selected_by: Who chose (defaults to the OS user).
    """
    path = download_run(run_id, settings.mlflow_tracking_uri, settings.artifacts_dir)
    run = get_run(get_client(settings.mlflow_tracking_uri), run_id)
    metrics = key_metrics(run.data.metrics)
    id_file = None
    if run_id_dir is not False:
        target = settings.run_id_file if run_id_dir is None else Path(run_id_dir) / RUN_ID_FILE
        id_file = atomic_write_text(target, run_id + "\n")
    if store is not None:
        store.record(
            run_id=run_id,
            model_uri=model_uri(run_id),
            experiment_id=run.info.experiment_id,
            metrics=metrics,
            artifacts_path=str(path.resolve()),
            selected_by=selected_by or _user(),
        )
    return Selection(run_id, model_uri(run_id), path, id_file, metrics)


def top_runs(tracking_uri: str, experiment_id: str, metric: str, k: int, higher_is_better: bool):
    """The ``k`` finished runs of the experiment with the best ``metric`` (one search call)."""
    if k < 1:
        raise InvalidInput(f"K must be at least 1, got {k}")
    order = "DESC" if higher_is_better else "ASC"
    client = get_client(tracking_uri)
    try:
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"attributes.status = 'FINISHED' and metrics.`{metric}` > -1e300",
            max_results=k,
            order_by=[f"metrics.`{metric}` {order}"],
        )
    except MlflowException as exc:
        raise InvalidInput(f"cannot rank runs by metric {metric!r}: {exc.message}") from exc
    return [r.info.run_id for r in runs]


def select_top(
    settings: Settings,
    experiment_id: str,
    metric: str,
    k: int,
    higher_is_better: bool = True,
    store=None,
    run_id_dir: str | Path | None = None,
) -> list[Selection]:
    """Download the ``k`` best runs; ``run_id.txt`` names the best one."""
    ids = top_runs(settings.mlflow_tracking_uri, experiment_id, metric, k, higher_is_better)
    if not ids:
        raise InvalidInput(
            f"no finished run of experiment {experiment_id} has the metric {metric!r}; "
            "choose another metric or evaluate some runs first."
        )
    out = []
    for rank, run_id in enumerate(ids):
        out.append(
            select_run(
                run_id,
                settings,
                store,
                run_id_dir=run_id_dir if rank == 0 else False,
            )
        )
    return out


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
