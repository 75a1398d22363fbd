"""Checks of an evaluation request, made at once so that the API answers 404/422/503 before
queueing a job: the run, its model and preprocessing, and the data folder."""

import threading
import time
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from common import (
    InvalidInput,
    Preprocessing,
    ServiceUnavailable,
    get_client,
    get_run,
    load_preprocessing,
)

CHECK_CACHE_S = 60.0


def resolve_data_dir(value: str | Path, root: Path | None = None, confine: bool = False) -> Path:
    """The data folder (or ``.npz`` file) that ``value`` names, resolved.

    A relative ``value`` is looked up under ``root`` (``DATA_DIR``) first, then in the working
    directory. With ``confine`` the result must lie inside ``root`` after resolving symlinks and
    ``..``, so that an API client cannot make the service read arbitrary paths.

    Raises:
        InvalidInput: The path does not exist or, with ``confine``, lies outside ``root``.
    """
    path = Path(value).expanduser()
    if not path.is_absolute() and root is not None:
        under_root = root / path
        if under_root.exists() or not path.exists():
            path = under_root
    path = path.resolve()
    if confine and root is not None and not path.is_relative_to(root.resolve()):
        raise InvalidInput(
            f"data_dir {str(value)!r} resolves to {path}, outside DATA_DIR {root.resolve()}; "
            "the service reads data only under DATA_DIR: pass a path relative to it."
        )
    if not path.exists():
        raise InvalidInput(
            f"data folder {path} does not exist; pass data_dir as a folder with test/<class>/ "
            "images or a .npz file" + (f" under DATA_DIR {root.resolve()}" if confine else "")
        )
    return path


def check_model(client: MlflowClient, run_id: str) -> None:
    """Raise ``InvalidInput`` unless the run has a logged model named ``model``."""
    run = get_run(client, run_id)
    try:
        found = client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run_id}' AND name = 'model'",
            max_results=1,
        )
    except MlflowException as exc:
        message = f"MLflow failed to list the models of run {run_id}: {exc}"
        raise ServiceUnavailable(message) from exc
    if not found:
        raise InvalidInput(
            f"run {run_id} has no logged model named 'model', so there is nothing to evaluate; "
            "train one with `python -m trainer --data-dir DIR --experiment NAME`."
        )


_checked: dict[tuple[str, str], tuple[float, Preprocessing, str | None]] = {}
_checked_lock = threading.Lock()


def check_run(tracking_uri: str, run_id: str) -> tuple[Preprocessing, str | None]:
    """Check that the run exists and has a model and preprocessing, at submission time.

    Successful checks are remembered for ``CHECK_CACHE_S`` seconds (a trained run does not lose
    its model), so that repeated submissions cost no MLflow round trips.

    Returns:
        The run's preprocessing and its ``data_dir`` parameter (None when absent).

    Raises:
        ServiceUnavailable: MLflow is down. NotFound: unknown run. InvalidInput: no model or no
            ``preprocessing.json``.
    """
    key = (tracking_uri, run_id)
    with _checked_lock:
        hit = _checked.get(key)
    if hit is not None and time.monotonic() - hit[0] < CHECK_CACHE_S:
        return hit[1], hit[2]
    client = get_client(tracking_uri)
    run = get_run(client, run_id)
    check_model(client, run_id)
    pp = load_preprocessing(client, run_id)
    data_dir = run.data.params.get("data_dir")
    with _checked_lock:
        _checked[key] = (time.monotonic(), pp, data_dir)
    return pp, data_dir


def check_classes(path: Path, pp: Preprocessing) -> None:
    """Raise ``InvalidInput`` when a folder dataset's ``test/`` has a class the model lacks.

    Only folder names are compared (cheap, at submission time); a class of the model missing
    from the test set is allowed (its AUC is reported as undefined). ``.npz`` files are checked
    when the job loads them.
    """
    test = path / "test"
    if not test.is_dir():
        return
    found = sorted(p.name for p in test.iterdir() if p.is_dir() and not p.name.startswith("."))
    foreign = [name for name in found if name not in pp.class_names]
    if foreign:
        raise InvalidInput(
            f"the classes in {test} ({', '.join(found)}) differ from the model's "
            f"({', '.join(pp.class_names)}): {', '.join(foreign)} is not one of them; evaluate "
            "with data of the classes the run was trained on."
        )


def prepare_inputs(
    run_id: str,
    tracking_uri: str,
    data_root: Path,
    data_dir: str | None = None,
    batch_size: int = 256,
) -> dict:
    """Validate an API request at once and return the job's inputs (``data_dir`` resolved).

    Raises:
        NotFound, InvalidInput, ServiceUnavailable: As ``check_run``; InvalidInput also for a
            missing data folder, one outside ``data_root`` or with other classes.
    """
    pp, run_data_dir = check_run(tracking_uri, run_id)
    if data_dir is None:
        if not run_data_dir:
            raise InvalidInput(f"run {run_id} has no data_dir parameter; pass data_dir.")
        data_dir = run_data_dir
    path = resolve_data_dir(data_dir, data_root, confine=True)
    check_classes(path, pp)
    return {"data_dir": str(path), "batch_size": batch_size}
