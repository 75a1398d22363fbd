"""What the predictor answers of a served model (``describe``) and for images (``predict``)."""

from collections.abc import Sequence

import numpy as np

from predictor.core import Served
from predictor.inputs import MAX_REQUEST_PIXELS, decode_files
from runs import OperatingPoint, decided_labels, flagged

__all__ = ["decide", "describe", "predict"]


def describe(served: Served) -> dict:
    """What every answer says of the served model: its identity, whether the alias still names
    it, and its operating point."""
    return {
        "model_name": served.model_name,
        "alias": served.alias,
        "version": served.version,
        "run_id": served.run_id,
        "stale": served.stale,
        # why the alias's version is not served (or the check failed) first, then the run's
        "problem": "; ".join(p for p in (served.problem, served.run_problem) if p) or None,
        "operating_point": served.operating_point,
        "decoding_note": getattr(served.classifier, "decoding_note", None),
        # what it was trained on, for a client to route images (models before it: none)
        "modalities": getattr(served.classifier, "modalities", None),
        "modality_note": getattr(served.classifier, "modality_note", None),
        # the out-of-distribution check the model carries (models trained without: none)
        "ood_check": getattr(served.classifier, "ood_check", None),
    }


def decide(point: OperatingPoint | None, probs: np.ndarray, names: list[str]) -> list[str | None]:
    """Per image the class by the run's threshold: the positive class when its probability is
    at least the threshold (compared as the answer's float64 numbers), else the other one; None
    for each image without an operating point."""
    if point is None:
        return [None] * len(probs)
    return [names[i] for i in decided_labels(point, probs, names)]


def predict(
    served: Served,
    files: Sequence[tuple[str, bytes]],
    max_pixels: int | None = MAX_REQUEST_PIXELS,
) -> dict:
    """Probabilities per class, the predicted class (argmax), the decision (threshold) and the
    out-of-distribution score of each file and what its reading dropped (``input_note``), with
    what ``describe`` says of the model (``max_pixels``: ``decode_files``)."""
    images, notes = decode_files(served, files, max_pixels)
    probs, ood = served.classifier.assess(images)
    names = served.class_names
    decisions = decide(served.operating_point, probs, names)
    scores = [None] * len(probs) if ood is None else [float(s) for s in ood]
    return {
        **describe(served),
        "predictions": [
            {
                "file": name,
                "predicted_class": names[int(row.argmax())],
                "decision": decision,
                "probabilities": dict(zip(names, map(float, row), strict=True)),
                "ood_score": score,
                "out_of_distribution": None if score is None else bool(flagged(score)),
                "input_note": note,
            }
            for (name, _), row, decision, score, note in zip(
                files, probs, decisions, scores, notes, strict=True
            )
        ],
    }
