"""Files of an explanation: raw values, panels, plots, ``faithfulness.json`` and ``index.json``."""

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from common import atomic_write_bytes, atomic_write_json
from explainer import attributions, plots
from explainer.attributions import BY_NAME
from runs import contract, schemas


@dataclass
class Explanation:
    """Attributions of ``N`` images, each explained for its predicted class.

    Attributes:
        target: Predicted (explained) class per image.
        probs: Softmax probabilities ``N×K``.
        values: Method → raw attributions (``Method.shape``: ``N×C×H×W`` or ``N×1×H×W``).
        faithfulness: The deletion report (see ``faithfulness.deletion_report``).
        channel_importance: Method → share of |attribution| per input channel (the methods
            with ``Method.per_channel``).
        extras: Method → extra arrays saved beside its values (IG's convergence delta).
    """

    target: np.ndarray
    probs: np.ndarray
    values: dict[str, np.ndarray]
    faithfulness: dict
    channel_importance: dict[str, list[float]]
    extras: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def ig_delta(self) -> np.ndarray | None:
        """Integrated Gradients' convergence delta per image, when computed."""
        return self.extras.get("integrated_gradients", {}).get(attributions.IG_DELTA)


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
        extra = explanation.extras.get(method, {})
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            values=values,
            target=explanation.target,
            sample_index=info["sample_index"],
            **extra,
        )
        buffer_path = atomic_write_bytes(out / f"{method}.npz", buffer.getvalue())
        files[buffer_path.name] = (
            f"raw {BY_NAME[method].title} values ({BY_NAME[method].shape}) for the explained "
            "class (see settings.explained_class); "
            "arrays: values, target (explained class), sample_index (test-set index)"
            + "".join(f", {name}" for name in extra)
        )
    samples, decisions, point = [], [], info.get("operating_point")
    for i in range(len(x)):
        confidence = float(explanation.probs[i, explanation.target[i]])
        decided = plots.decision_label(
            explanation.probs[i], int(explanation.target[i]), class_names, point
        )
        decisions.append(decided)
        maps = {
            m: attributions.pixel_importance(torch.from_numpy(v[i : i + 1]))[0].numpy()
            for m, v in explanation.values.items()
        }
        name = f"{contract.PANELS_DIR}/sample_{i:02d}_test{info['sample_index'][i]}.png"
        true_label = class_names[int(labels[i])]
        wrong = true_label != predicted[i]
        atomic_write_bytes(
            out / name,
            plots.sample_panel(
                images[i], maps, true_label, decided, wrong, info["settings"].get("background_size")
            ),
        )
        files[name] = (
            f"sample {i}: image and one overlay per method with its scale, the true label and "
            "the decision explained"
        )
        samples.append(
            {
                "rank": i,
                "test_index": int(info["sample_index"][i]),
                "file": (info.get("sample_files") or [None] * len(x))[i],
                "true_label": true_label,
                "predicted_label": predicted[i],
                "confidence": confidence,
                "misclassified": wrong,
                "decided": decided.replace("\n", " "),
            }
        )
    captions = [
        f"{'✗' if s['misclassified'] else '✓'} true {s['true_label']}\n{decided}"
        for s, decided in zip(samples, decisions, strict=True)
    ]
    for method, values in explanation.values.items():
        summary = BY_NAME[method].summary
        if summary is None:
            continue
        across = attributions.Across(
            images=images,
            values=np.asarray(values),
            captions=captions,
            wrong=[s["misclassified"] for s in samples],
            channels=channels,
            labels=predicted,
            explained_class=info["settings"].get("explained_class", plots.EXPLAINED_CLASS),
        )
        atomic_write_bytes(out / summary.file, summary.draw(across))
        files[summary.file] = summary.description
    importance = {
        m: dict(zip(channels, shares, strict=True))
        for m, shares in explanation.channel_importance.items()
    }
    if importance:
        atomic_write_json(out / contract.CHANNEL_IMPORTANCE_JSON, importance)
        atomic_write_bytes(out / contract.CHANNEL_IMPORTANCE_PNG, plots.channel_plot(importance))
        files[contract.CHANNEL_IMPORTANCE_JSON] = (
            "share of |attribution| per input channel, per method"
        )
        files[contract.CHANNEL_IMPORTANCE_PNG] = "bar chart of channel_importance.json"
    atomic_write_json(out / contract.FAITHFULNESS_JSON, explanation.faithfulness)
    curves = plots.deletion_plot(explanation.faithfulness)
    atomic_write_bytes(out / contract.DELETION_CURVES_PNG, curves)
    files[contract.FAITHFULNESS_JSON] = (
        "deletion curves and AUC per method vs a random order of the same square regions "
        "(lower AUC = more faithful; score = random_auc - auc, higher is better)"
    )
    files[contract.DELETION_CURVES_PNG] = "mean deletion curve per method and for the random order"
    if embedding is not None:
        schemas.Embedding.model_validate(embedding)
        atomic_write_json(out / contract.EMBEDDING_JSON, embedding)
        files[contract.EMBEDDING_JSON] = (
            f"t-SNE map of the model's penultimate features of {embedding['n']} test images"
        )
    files[contract.INDEX_JSON] = "this file: every file with a description, and the settings used"
    # Written by ``explain_run`` once the answer (which names these files) is known.
    files[contract.JOB_RESULT_JSON] = "the answer of the job (or CLI call) that made this folder"
    index = {**info, "samples": samples, "files": dict(sorted(files.items()))}
    schemas.ExplanationIndex.model_validate(index)  # never publish what readers cannot parse
    atomic_write_json(out / contract.INDEX_JSON, index)
    return index


def upload(client: MlflowClient, run: Run, folder: Path, artifact_path: str) -> None:
    """Log every file of ``folder`` as ``artifact_path`` (a new folder) of the run.

    Nothing is made current here: ``runs.publish_result`` names the folder in the run's tag once
    every file is in, so a failure half-way leaves the previous explanation current.
    """
    client.log_artifacts(run.info.run_id, str(folder), artifact_path)
