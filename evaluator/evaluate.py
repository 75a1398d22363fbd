"""The evaluator's core: measure a trained run on its test split and write the results back.

``evaluate_run`` needs no server: it loads the run's model and ``preprocessing.json`` from MLflow,
predicts the test split in batches, computes every metric with its interval
(``evaluator.metrics``), logs them as ``eval_*`` metrics, uploads the artifacts under
``evaluation/`` and tags the run ``pipeline.evaluated=true``.
"""

import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from PIL import Image
from tqdm import tqdm

from common import (
    InvalidInput,
    Preprocessing,
    ServiceUnavailable,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    get_client,
    get_run,
    load_model,
    load_preprocessing,
)
from evaluator import plots
from evaluator.metrics import compute_metrics

ARTIFACT_DIR = "evaluation"
EVALUATED_TAG = "pipeline.evaluated"
TOP_WRONG = 5


def resolve_data_dir(value: str | Path, root: Path | None = None, confine: bool = False) -> Path:
    """The data folder (or ``.npz`` file) that ``value`` names, resolved.

    A relative ``value`` is looked up under ``root`` (``DATA_DIR``) first, then in the working
    directory. With ``confine`` the result must lie inside ``root`` after resolving symlinks and
    ``..``, so that an API client cannot make the service read arbitrary paths.

    Raises:
        InvalidInput: The path does not exist or, with ``confine``, lies outside ``root``.
    """
    path = Path(value).expanduser()
    if not path.is_absolute() and root is not None and (root / path).exists():
        path = root / path
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


def load_test_split(path: Path, pp: Preprocessing):
    """The test split of ``path`` resized like the model's training data; classes must match."""
    from dataloader import load_dataset

    ds = load_dataset(path, image_size=pp.image_size, channels=pp.channels, splits=("test",))
    if list(ds.class_names) != list(pp.class_names):
        raise InvalidInput(
            f"the classes in {path} ({', '.join(ds.class_names)}) differ from the model's "
            f"({', '.join(pp.class_names)}); evaluate with the data the run was trained on."
        )
    if ds.test is None or len(ds.test.labels) == 0:
        raise InvalidInput(f"{path} has no test images; add a test/<class>/ folder of images.")
    return ds


def predict(
    model: torch.nn.Module, pp: Preprocessing, images: np.ndarray, batch_size: int, progress=False
) -> np.ndarray:
    """Class probabilities (``N×K`` float64) of uint8 ``N×H×W×C`` images, in batches."""
    out = []
    starts = range(0, len(images), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc="evaluating", unit="batch", disable=not progress):
            logits = model(pp.to_tensor(images[start : start + batch_size]))
            out.append(torch.softmax(logits.double(), dim=1).numpy())
    return np.concatenate(out)


def _safe(name: str) -> str:
    """``name`` usable in an MLflow metric key and a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "class"


def flat_metrics(report: dict) -> dict[str, float]:
    """The ``eval_*`` metrics (values and interval bounds) of a ``compute_metrics`` report."""
    flat: dict[str, float] = {}

    def add(key: str, est: dict) -> None:
        if est.get("value") is None:
            return
        flat[key] = est["value"]
        for bound in ("ci_low", "ci_high"):
            if est.get(bound) is not None:
                flat[f"{key}_{bound}"] = est[bound]

    for name, est in report["overall"].items():
        add(f"eval_{name}", est)
    for cls, values in report["per_class"].items():
        for name, est in values.items():
            if isinstance(est, dict):
                add(f"eval_{name}_{_safe(cls)}", est)
    return flat


def write_artifacts(out: Path, report: dict, y: np.ndarray, probs: np.ndarray, test) -> None:
    """Write every file of ``evaluation/`` into the folder ``out``."""
    names = report["class_names"]
    pred = probs.argmax(1)
    files = test.files or [""] * len(y)
    table = pd.DataFrame(
        {
            "index": np.arange(len(y)),
            "file": files,
            "true_label": [names[i] for i in y],
            "predicted_label": [names[i] for i in pred],
        }
    )
    for c, name in enumerate(names):
        table[f"prob_{name}"] = probs[:, c]
    atomic_write_text(out / "predictions.csv", table.to_csv(index=False, float_format="%.8g"))

    confidence = probs.max(1)
    wrong = np.flatnonzero(pred != y)
    top = wrong[np.argsort(-confidence[wrong], kind="stable")][:TOP_WRONG]
    rows = []
    for rank, i in enumerate(top, start=1):
        image = f"misclassified/{rank}_{i}_{_safe(names[y[i]])}_as_{_safe(names[pred[i]])}.png"
        pixels = test.images[i]
        pil = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        path = out / image
        path.parent.mkdir(exist_ok=True)
        pil.save(path, format="PNG")
        rows.append([rank, i, files[i], names[y[i]], names[pred[i]], confidence[i], image])
    columns = ["rank", "index", "file", "true_label", "predicted_label", "confidence", "image"]
    atomic_write_text(
        out / "misclassified_top5.csv", pd.DataFrame(rows, columns=columns).to_csv(index=False)
    )

    aucs = [report["per_class"][n]["roc_auc"]["value"] for n in names]
    ece = report["overall"]["ece"]["value"]
    cm = np.array(report["confusion_matrix"])
    atomic_write_bytes(out / "confusion_matrix.png", plots.confusion_matrix_png(cm, names))
    atomic_write_bytes(out / "roc_curves.png", plots.roc_curves_png(y, probs, names, aucs))
    calibration = plots.calibration_png(confidence, pred == y, report["ece_bins"], ece)
    atomic_write_bytes(out / "calibration.png", calibration)
    atomic_write_json(out / "metrics.json", report)


def evaluate_run(
    run_id: str,
    tracking_uri: str,
    data_dir: str | Path | None = None,
    batch_size: int = 256,
    progress: bool = False,
    data_root: Path | None = None,
    confine: bool = False,
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

    Returns:
        The content of ``metrics.json`` plus ``run_id``, ``data_dir``, ``metrics`` (the flat
        ``eval_*`` values logged to MLflow), ``artifacts`` and ``duration_s``.

    Raises:
        NotFound: Unknown run. InvalidInput: no model, preprocessing or usable test data.
        ServiceUnavailable: MLflow is unreachable.
    """
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be at least 1, got {batch_size}.")
    started = time.perf_counter()
    client = get_client(tracking_uri)
    run = get_run(client, run_id)
    pp = load_preprocessing(client, run_id)
    if data_dir is None:
        data_dir = run.data.params.get("data_dir")
        if not data_dir:
            raise InvalidInput(f"run {run_id} has no data_dir parameter; pass data_dir.")
    path = resolve_data_dir(data_dir, data_root, confine)
    model = load_model(run_id, tracking_uri)
    ds = load_test_split(path, pp)
    y = np.asarray(ds.test.labels, dtype=np.int64)
    probs = predict(model, pp, ds.test.images, batch_size, progress)

    report = compute_metrics(y, probs, list(pp.class_names))
    report.update(run_id=run_id, data_dir=str(path), dataset_hash=getattr(ds, "content_hash", None))
    flat = flat_metrics(report)
    with tempfile.TemporaryDirectory(prefix="evaluation-") as tmp:
        write_artifacts(Path(tmp), report, y, probs, ds.test)
        artifacts = sorted(str(p.relative_to(tmp)) for p in Path(tmp).rglob("*") if p.is_file())
        try:
            client.log_artifacts(run_id, tmp, ARTIFACT_DIR)
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
