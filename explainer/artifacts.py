"""Files of an explanation: raw values, panels, plots, ``faithfulness.json`` and ``index.json``."""

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from mlflow.entities import Run
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from common import atomic_write_bytes, atomic_write_json
from explainer import attributions, plots
from runs import contract

log = logging.getLogger(__name__)


@dataclass
class Explanation:
    """Attributions of ``N`` images, each explained for its predicted class.

    Attributes:
        target: Predicted (explained) class per image.
        probs: Softmax probabilities ``N×K``.
        values: Method → raw attributions (``N×C×H×W``; Grad-CAM ``N×1×H×W``).
        ig_delta: Integrated Gradients' convergence delta per image, when computed.
        faithfulness: The deletion report (see ``faithfulness.deletion_report``).
        channel_importance: Method → share of |attribution| per input channel (IG, SHAP).
    """

    target: np.ndarray
    probs: np.ndarray
    values: dict[str, np.ndarray]
    ig_delta: np.ndarray | None
    faithfulness: dict
    channel_importance: dict[str, list[float]]


def _channel_names(channels: int) -> list[str]:
    return ["R", "G", "B"] if channels == 3 else ["grey"]


def write_artifacts(
    out: Path,
    explanation: Explanation,
    x: torch.Tensor,
    labels: np.ndarray,
    class_names: list[str],
    info: dict,
    embedding: dict | None = None,
) -> dict:
    """Write raw values, plots, panels, ``faithfulness.json`` and ``index.json`` into ``out``.

    Args:
        info: Settings and sample metadata recorded in ``index.json`` (``samples`` is added).
        embedding: The ``embedding.json`` content (``explainer.embedding``), if any.

    Returns:
        The index (also written as ``index.json``).
    """
    files: dict[str, str] = {}
    images = x.permute(0, 2, 3, 1).numpy()
    channels = _channel_names(x.shape[1])
    predicted = [class_names[t] for t in explanation.target]
    for method, values in explanation.values.items():
        extra = {}
        if method == "integrated_gradients":
            extra["ig_convergence_delta"] = explanation.ig_delta
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            values=values,
            target=explanation.target,
            sample_index=info["sample_index"],
            **extra,
        )
        buffer_path = atomic_write_bytes(out / f"{method}.npz", buffer.getvalue())
        shape = "N×1×H×W" if method == "gradcam" else "N×C×H×W"
        files[buffer_path.name] = (
            f"raw {plots.METHOD_TITLES[method]} values ({shape}) for the predicted class; "
            "arrays: values, target (explained class), sample_index (test-set index)"
            + (", ig_convergence_delta" if extra else "")
        )
    samples = []
    for i in range(len(x)):
        confidence = float(explanation.probs[i, explanation.target[i]])
        maps = {
            m: attributions.pixel_importance(torch.from_numpy(v[i : i + 1]))[0].numpy()
            for m, v in explanation.values.items()
        }
        name = f"{contract.PANELS_DIR}/sample_{i:02d}_test{info['sample_index'][i]}.png"
        true_label = class_names[int(labels[i])]
        atomic_write_bytes(
            out / name, plots.sample_panel(images[i], maps, true_label, predicted[i], confidence)
        )
        files[name] = f"sample {i}: image and one overlay per method, labels and confidence"
        samples.append(
            {
                "rank": i,
                "test_index": int(info["sample_index"][i]),
                "file": (info.get("sample_files") or [None] * len(x))[i],
                "true_label": true_label,
                "predicted_label": predicted[i],
                "confidence": confidence,
                "misclassified": true_label != predicted[i],
            }
        )
    if "shap" in explanation.values:
        atomic_write_bytes(
            out / "shap_summary.png",
            plots.shap_summary(explanation.values["shap"], channels, predicted),
        )
        files["shap_summary.png"] = "SHAP across samples: mean |SHAP| map, mass per channel"
    importance = {
        m: dict(zip(channels, shares, strict=True))
        for m, shares in explanation.channel_importance.items()
    }
    if importance:
        atomic_write_json(out / contract.CHANNEL_IMPORTANCE_JSON, importance)
        atomic_write_bytes(out / "channel_importance.png", plots.channel_plot(importance))
        files[contract.CHANNEL_IMPORTANCE_JSON] = (
            "share of |attribution| per input channel, per method"
        )
        files["channel_importance.png"] = "bar chart of channel_importance.json"
    atomic_write_json(out / contract.FAITHFULNESS_JSON, explanation.faithfulness)
    atomic_write_bytes(out / "deletion_curves.png", plots.deletion_plot(explanation.faithfulness))
    files[contract.FAITHFULNESS_JSON] = (
        "deletion curves and AUC per method vs a random order of the same square regions "
        "(lower AUC = more faithful; score = random_auc - auc, higher is better)"
    )
    files["deletion_curves.png"] = "mean deletion curve per method and for the random order"
    if embedding is not None:
        contract.Embedding.model_validate(embedding)
        atomic_write_json(out / contract.EMBEDDING_JSON, embedding)
        files[contract.EMBEDDING_JSON] = (
            f"t-SNE map of the model's penultimate features of {embedding['n']} test images"
        )
    files[contract.INDEX_JSON] = "this file: every file with a description, and the settings used"
    index = {**info, "samples": samples, "files": dict(sorted(files.items()))}
    contract.ExplanationIndex.model_validate(index)  # never publish what readers cannot parse
    atomic_write_json(out / contract.INDEX_JSON, index)
    return index


def _logged_files(client: MlflowClient, run_id: str, path: str) -> set[str]:
    files: set[str] = set()
    for info in client.list_artifacts(run_id, path):
        files |= _logged_files(client, run_id, info.path) if info.is_dir else {info.path}
    return files


def upload(client: MlflowClient, run: Run, folder: Path, artifact_dir: str, tracking_uri: str):
    """Log ``folder`` as ``artifact_dir`` of the run, then delete files left from an earlier,
    different explanation, so that ``index.json`` describes exactly what is there.

    The new files are uploaded first: a failure leaves the previous explanation readable.
    """
    run_id = run.info.run_id
    client.log_artifacts(run_id, str(folder), artifact_dir)
    new = {f"{artifact_dir}/{p.relative_to(folder).as_posix()}" for p in folder.rglob("*")}
    stale = sorted(_logged_files(client, run_id, artifact_dir) - new)
    if not stale:
        return
    repo = get_artifact_repository(run.info.artifact_uri, tracking_uri=tracking_uri)
    for path in stale:
        try:
            repo.delete_artifacts(path)
        except Exception as exc:  # not every artifact store deletes; the index stays right
            log.warning("could not delete the stale artifact %s of run %s: %s", path, run_id, exc)
