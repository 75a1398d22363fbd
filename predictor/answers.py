"""What the predictor answers, defined once: the response models (``ServedOut``, ``PredictOut``
and its ``ImagePrediction`` per image, ``ReadyOut``) are both the answers and their OpenAPI
schema. ``predict`` says what the model says of images, ``readiness`` what ``/ready`` says;
both say which model answers (``ServedOut``'s fields). Every model forbids fields it does not
declare and declares each one without a default, so that a field added to an answer and not to
its model (or the other way round) fails where the answer is built, not in a client.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from predictor.inputs import MAX_REQUEST_PIXELS, decode_files
from predictor.served import Served
from runs import OperatingPoint, decided_labels, flagged

__all__ = [
    "ImagePrediction",
    "PredictOut",
    "ReadyOut",
    "ServedOut",
    "decide",
    "predict",
    "readiness",
]


class _Answer(BaseModel):
    """An answer of the predictor: exactly its declared fields, each one set where built."""

    model_config = ConfigDict(extra="forbid")


class ImagePrediction(_Answer):
    """What the predictor says of one uploaded image."""

    file: str = Field(description="the uploaded file name")
    predicted_class: str = Field(description="the most probable class (argmax)")
    decision: str | None = Field(
        description="the class by the run's operating point: `positive_class` when its "
        "probability >= `threshold`, else the other class; null when the run has none"
    )
    probabilities: dict[str, float] = Field(description="class name → probability")
    ood_score: float | None = Field(
        description="how far the image's features lie from the training images', over the "
        "threshold taken on validation (`ood_check`); null when the model has no such check",
    )
    out_of_distribution: bool | None = Field(
        description="`ood_score` > 1: the image is unlike the model's training images (another "
        "modality, body part or device, a blank or corrupt image), so its classes may be "
        "meaningless: have a person look at it; null when the model has no such check",
    )
    input_note: str | None = Field(
        description="set when the image was read otherwise than sent: a colour image (its "
        "channels differ by more than JPEG noise on more than 0.1% of its pixels) sent to a "
        "model of grey images (channels 1) was read as grey, its colours unused; null otherwise "
        "(a grey image stored as RGB, with equal channels, too)",
    )


class ServedOut(_Answer):
    """Which registered model version answers, and whether the alias still names it."""

    model_name: str
    alias: str
    version: str
    run_id: str | None
    stale: bool = Field(
        description="the alias no longer names this version (removed, or moved to a version "
        "that cannot be served): it is the last good one, still serving; `problem` says why"
    )
    problem: str | None = Field(
        description="why the alias's version is not served, or why the last check failed "
        "(MLflow down), and/or that this version's run is deleted in MLflow (its evaluation "
        "cannot be checked; it still serves): restore the run or choose another model; null "
        "while the alias names this version and its run stands"
    )
    operating_point: OperatingPoint | None = Field(
        description="the decision threshold of a two-class run, chosen on validation data; "
        "null when the run has none"
    )
    decoding_note: str | None = Field(
        description="set when this predictor decodes images with another version of the image "
        "decoding than the model's training (an older model under newer code): its images may "
        "be prepared differently; null when they agree or the model predates the record",
    )
    modalities: list[str] | None = Field(
        description="the DICOM Modality codes the model was trained on (a DICOM file of "
        "another modality is refused); null when it records none",
    )
    modality_note: str | None = Field(
        description="why the model classifies DICOM files of every modality (it records none, "
        "or predates the record); null when it refuses other modalities",
    )
    ood_check: dict[str, Any] | None = Field(
        description="the model's out-of-distribution check: `method`, its `threshold`, the "
        "validation `quantile` it was taken at, the share of new images like the validation "
        "ones it flags on average (`expected_rate`: 1 - quantile, or 1 in n+1 with fewer than "
        "quantile/(1 - quantile) validation images) and how many `validation_images` and "
        "`training_images` it came from; null for a model trained without one (its answers "
        "carry no `ood_score`)",
    )


class PredictOut(ServedOut):
    """Predictions, and which registered model version computed them."""

    predictions: list[ImagePrediction]


class ReadyOut(ServedOut):
    """The served model; ``status`` ``stale`` when the alias no longer names it."""

    status: Literal["ready", "stale"]
    class_names: list[str]
    loaded_at: datetime


def _served_fields(served: Served) -> dict[str, Any]:
    """The fields of ``ServedOut`` for ``served``, to build it or an answer that extends it."""
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


def readiness(served: Served) -> ReadyOut:
    """``/ready``'s answer: the served model, ``stale`` when the alias no longer names it."""
    return ReadyOut(
        **_served_fields(served),
        status="stale" if served.stale else "ready",
        class_names=served.class_names,
        loaded_at=served.loaded_at,
    )


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
) -> PredictOut:
    """Probabilities per class, the predicted class (argmax), the decision (threshold) and the
    out-of-distribution score of each file and what its reading dropped (``input_note``), with
    what every answer says of the model (``ServedOut``; ``max_pixels``: ``decode_files``)."""
    images, notes = decode_files(served, files, max_pixels)
    probs, ood = served.classifier.assess(images)
    names = served.class_names
    decisions = decide(served.operating_point, probs, names)
    scores = [None] * len(probs) if ood is None else [float(s) for s in ood]
    predictions = [
        ImagePrediction(
            file=name,
            predicted_class=names[int(row.argmax())],
            decision=decision,
            probabilities=dict(zip(names, map(float, row), strict=True)),
            ood_score=score,
            out_of_distribution=None if score is None else bool(flagged(score)),
            input_note=note,
        )
        for (name, _), row, decision, score, note in zip(
            files, probs, decisions, scores, notes, strict=True
        )
    ]
    return PredictOut(**_served_fields(served), predictions=predictions)
