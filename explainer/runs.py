"""Where a run's inputs come from: its data set on disk and its model in MLflow."""

from pathlib import Path

import numpy as np
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from common import MODEL_NAME, InvalidInput, Preprocessing


def resolve_data_dir(
    run: Run, data_dir: str | Path | None = None, data_root: Path | None = None
) -> Path:
    """The data set (folder or ``.npz``) of the run's test images.

    Args:
        run: The MLflow run; its ``data_dir`` parameter is the default.
        data_dir: Overrides the run's parameter.
        data_root: ``DATA_DIR``: a relative path is looked up there first, then in the working
            directory.
    """
    value = data_dir if data_dir is not None else run.data.params.get("data_dir")
    if not value:
        raise InvalidInput(
            f"run {run.info.run_id} has no data_dir parameter; pass data_dir (CLI: --data-dir)."
        )
    path = Path(value).expanduser()
    if not path.is_absolute() and data_root is not None and (Path(data_root) / path).exists():
        path = Path(data_root) / path
    if not path.exists():
        raise InvalidInput(
            f"the test images of run {run.info.run_id} were not found at {path}; pass data_dir "
            "(CLI: --data-dir) naming the data set the run was trained on."
        )
    return path.resolve()


def check_model(run_id: str, tracking_uri: str) -> None:
    """``InvalidInput`` unless ``runs:/<run_id>/model`` exists (reads only its MLmodel file)."""
    import mlflow.models

    mlflow.set_tracking_uri(tracking_uri)
    try:
        mlflow.models.get_model_info(f"runs:/{run_id}/{MODEL_NAME}")
    except (MlflowException, OSError) as exc:
        raise InvalidInput(
            f"run {run_id} has no model logged as '{MODEL_NAME}', so there is nothing to explain; "
            "train one with `python -m trainer --data-dir DIR --experiment NAME`."
        ) from exc


def load_test_set(path: Path, pp: Preprocessing) -> tuple[np.ndarray, np.ndarray, object]:
    """The test images (uint8 ``N×H×W×C``), labels and data set, sized like the run's inputs."""
    from dataloader import load_dataset

    ds = load_dataset(path, image_size=pp.image_size, channels=pp.channels, splits=("test",))
    if ds.test is None or len(ds.test.labels) == 0:
        raise InvalidInput(f"{path} has no test images; add them under {path}/test/<class>/.")
    if list(ds.class_names) != list(pp.class_names):
        raise InvalidInput(
            f"the classes in {path} ({', '.join(ds.class_names)}) differ from the run's "
            f"({', '.join(pp.class_names)}); pass the data set the run was trained on."
        )
    return ds.test.images, ds.test.labels, ds
