"""The evaluator's core: measure a trained run on its test split and write the results back.

``evaluate_run`` needs no server: it loads the run's model and ``preprocessing.json`` from MLflow,
predicts the test split in batches, computes every metric with its interval
(``evaluator.metrics``), logs them as ``eval_*`` metrics, uploads the artifacts under
``evaluation/`` and tags the run ``pipeline.evaluated=true``.
"""

import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient
from tqdm import tqdm

from common import (
    InvalidInput,
    Preprocessing,
    ServiceUnavailable,
    check_run,
    get_client,
    load_model,
    load_test_split,
    run_data_dir,
)
from evaluator.artifacts import flat_metrics, write_artifacts
from evaluator.metrics import compute_metrics
from evaluator.operating_point import load_operating_point, operating_points

# MLflow's per-download progress bars only clutter the CLI's output and the service's log.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

log = logging.getLogger(__name__)

ARTIFACT_DIR = "evaluation"
EVALUATED_TAG = "pipeline.evaluated"
TTA_CHOICES = ("none", "horizontal", "both")
"""Test-time augmentation: the mean of the softmax over the image and its flips (``horizontal``:
+ left-right; ``both``: + up-down and both), as the trainer's ``--flip`` choices."""


def run_job(job: dict, tracking_uri: str, data_root: Path) -> dict:
    """The job handler of the API: evaluate ``job["run_id"]`` with ``job["inputs"]``."""
    inputs = job["inputs"]
    return evaluate_run(
        job["run_id"],
        tracking_uri,
        data_dir=inputs["data_dir"],
        batch_size=inputs["batch_size"],
        data_root=data_root,
        tta=inputs.get("tta", "none"),
        confine=True,
    )


def _views(x: torch.Tensor, tta: str) -> list[torch.Tensor]:
    """The batch ``N×C×H×W`` and its flipped copies for test-time augmentation ``tta``."""
    views = [x]
    if tta in ("horizontal", "both"):
        views.append(x.flip(3))
    if tta == "both":
        views += [x.flip(2), x.flip(2).flip(3)]
    return views


def predict(
    model: torch.nn.Module,
    pp: Preprocessing,
    images: np.ndarray,
    batch_size: int,
    progress=False,
    tta: str = "none",
) -> np.ndarray:
    """Class probabilities (``N×K`` float64) of uint8 ``N×H×W×C`` images, in batches; with
    ``tta`` the mean of the probabilities over the flipped views."""
    if tta not in TTA_CHOICES:
        raise InvalidInput(f"tta must be one of {', '.join(TTA_CHOICES)}, got {tta!r}.")
    out = []
    starts = range(0, len(images), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc="evaluating", unit="batch", disable=not progress):
            x = pp.to_tensor(images[start : start + batch_size])
            probs = [torch.softmax(model(v).double(), dim=1) for v in _views(x, tta)]
            out.append(torch.stack(probs).mean(0).numpy())
    return np.concatenate(out)


def _remove_stale_images(client: MlflowClient, run_id: str, uri: str, new: set[str]) -> None:
    """Delete misclassified images of an earlier evaluation that this one did not write."""
    folder = f"{ARTIFACT_DIR}/misclassified"
    stale = [
        info.path
        for info in client.list_artifacts(run_id, folder)
        if info.path.removeprefix(f"{ARTIFACT_DIR}/") not in new
    ]
    if not stale:
        return
    repo = get_artifact_repository(client.get_run(run_id).info.artifact_uri, tracking_uri=uri)
    for path in stale:
        try:
            repo.delete_artifacts(path)
        except Exception as exc:  # not every artifact store can delete; the CSV stays right
            log.warning("could not delete the stale artifact %s of run %s: %s", path, run_id, exc)


def evaluate_run(
    run_id: str,
    tracking_uri: str,
    data_dir: str | Path | None = None,
    batch_size: int = 256,
    progress: bool = False,
    data_root: Path | None = None,
    confine: bool = False,
    tta: str = "none",
) -> dict:
    """Evaluate run ``run_id`` on the test split and log the results into the run.

    Args:
        run_id: The trained run.
        tracking_uri: MLflow tracking URI.
        data_dir: Dataset folder or ``.npz``; default: the run's ``data_dir`` parameter.
        batch_size: Images per inference batch.
        progress: Show a tqdm progress bar.
        data_root: ``DATA_DIR``, against which a relative ``data_dir`` is resolved.
        confine: Refuse a ``data_dir`` outside ``data_root`` (the API sets this).
        tta: Test-time augmentation, one of ``TTA_CHOICES`` (recorded in ``metrics.json``).

    Returns:
        The content of ``metrics.json`` plus ``run_id``, ``data_dir``, ``metrics`` (the flat
        ``eval_*`` values logged to MLflow), ``artifacts`` and ``duration_s``.

    Raises:
        NotFound: Unknown run. InvalidInput: no model, preprocessing or usable test data.
        ServiceUnavailable: MLflow is unreachable.
    """
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be at least 1, got {batch_size}.")
    if tta not in TTA_CHOICES:
        raise InvalidInput(f"tta must be one of {', '.join(TTA_CHOICES)}, got {tta!r}.")
    started = time.perf_counter()
    pp, param = check_run(tracking_uri, run_id)
    client = get_client(tracking_uri)
    path = run_data_dir(run_id, data_dir, param, data_root, confine)
    model = load_model(run_id, tracking_uri)
    ds = load_test_split(path, pp)
    y = np.asarray(ds.test.labels, dtype=np.int64)
    probs = predict(model, pp, ds.test.images, batch_size, progress, tta)

    names = list(pp.class_names)
    report = compute_metrics(y, probs, names)
    point = load_operating_point(client, run_id)
    report.update(
        run_id=run_id,
        data_dir=str(path),
        dataset_hash=ds.content_hash,
        tta=tta,
        operating_points=operating_points(y, probs, names, point),
    )
    flat = flat_metrics(report)
    with tempfile.TemporaryDirectory(prefix="evaluation-") as tmp:
        write_artifacts(Path(tmp), report, y, probs, ds.test)
        artifacts = sorted(str(p.relative_to(tmp)) for p in Path(tmp).rglob("*") if p.is_file())
        try:
            client.log_artifacts(run_id, tmp, ARTIFACT_DIR)
            _remove_stale_images(client, run_id, tracking_uri, set(artifacts))
            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(key, float(v), now, 0) for key, v in flat.items()],
                tags=[RunTag(EVALUATED_TAG, "true")],
            )
        except MlflowException as exc:
            message = f"MLflow refused the evaluation results of run {run_id}: {exc}"
            raise ServiceUnavailable(message) from exc
    report.update(
        metrics=flat,
        artifacts=[f"{ARTIFACT_DIR}/{a}" for a in artifacts],
        duration_s=round(time.perf_counter() - started, 3),
    )
    return report
