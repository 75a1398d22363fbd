"""What a training run records in MLflow (the layout in docs/contracts.md) and how."""

import copy
import json
import logging
import subprocess
import warnings
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pytorch
import numpy as np
import torch
from mlflow.models import infer_signature

from common import MODEL_NAME, Preprocessing

DATASET_STATS_PATH = "dataset_stats.json"
PREPROCESSING_PATH = "preprocessing.json"
STAGE_TAG = "pipeline.stage"
LEAKAGE_TAG = "pipeline.leakage_warning"
OPERATING_POINT_PATH = "operating_point.json"
ROOT = Path(__file__).resolve().parents[1]


def quiet() -> None:
    """Silence MLflow's chatter (run URLs, environment inference notes, pydantic warnings)."""
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow(\..*)?")
    warnings.filterwarnings("ignore", message=r".*(pydantic|Pydantic).*")


def git_commit() -> str | None:
    """The commit of the checkout the trainer runs from, when it is a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def dataset_params(dataset, preprocessing: Preprocessing) -> dict[str, Any]:
    """Parameters that describe the data: source, content hash, classes, sizes, normalization."""
    counts = {
        split: int(dataset.stats["counts"].get(split, {}).get("total", 0))
        for split in ("train", "val", "test")
    }
    height, width = preprocessing.image_size
    return {
        "dataset_source": str(dataset.source),
        "dataset_hash": dataset.content_hash,
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


def log_setup(
    params: dict[str, Any], dataset, preprocessing: Preprocessing, warning: str | None = None
) -> None:
    """Log parameters, the dataset statistics and the preprocessing of a new run; ``warning``
    (possible leakage) becomes the tag ``pipeline.leakage_warning``."""
    extra = {**dataset_params(dataset, preprocessing), **leakage_params(dataset.stats)}
    mlflow.log_params({**params, **extra})
    mlflow.log_dict(dataset.stats, DATASET_STATS_PATH)
    mlflow.log_dict(preprocessing.model_dump(mode="json"), PREPROCESSING_PATH)
    tags = {STAGE_TAG: "training"}
    if warning:
        tags[LEAKAGE_TAG] = warning[:5000]
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    mlflow.set_tags(tags)


def log_model(model: torch.nn.Module, example: np.ndarray) -> None:
    """Log ``model`` (a CPU copy in eval mode) as ``model`` with signature and input example."""
    model = copy.deepcopy(model).cpu().eval()
    with torch.no_grad():
        output = model(torch.from_numpy(example)).numpy()
    mlflow.pytorch.log_model(
        model,
        name=MODEL_NAME,
        serialization_format="pickle",
        input_example=example,
        signature=infer_signature(example, output),
        pip_requirements=_requirements(),
    )
    mlflow.set_tag(STAGE_TAG, "trained")


def _requirements() -> list[str]:
    """The packages a loader of the model needs, pinned to the versions training used.

    Passing them explicitly spares MLflow its slow requirement inference (it reloads the model
    in a subprocess).
    """
    import torchvision

    def pin(name: str, version: str) -> str:
        return f"{name}=={version.split('+')[0]}"

    return [
        pin("torch", torch.__version__),
        pin("torchvision", torchvision.__version__),
        pin("mlflow", mlflow.__version__),
        pin("numpy", np.__version__),
    ]
