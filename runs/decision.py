"""A two-class run's decision rule, one reading for every service.

The trainer chooses a threshold on validation data for a target sensitivity and logs it as the
run's ``operating_point.json`` (the logged model carries the same point). The evaluator reports
the test split at it, the explainer explains the class it decides, the predictor serves it: each
reads and checks it here, and decides with ``decided_labels``.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mlflow.tracking import MlflowClient
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common import InvalidInput
from mlpipeline_model import threshold_labels
from runs import contract
from runs.tracking import load_json_artifact

# ``OperatingPoint.positive_chosen`` when the trainer took label 1 without the class names saying
# it is the finding (the trainer writes it; the choice warns of it).
UNCONFIRMED_POSITIVE = (
    "the second class (label 1): the class names do not say which one is the finding"
)


class OperatingPoint(BaseModel):
    """The decision threshold of a two-class run, chosen by the trainer on validation data for a
    target sensitivity (the run's ``operating_point.json``): what a client needs of it."""

    model_config = ConfigDict(frozen=True)

    positive_class: str = Field(description="the class decided when its probability >= threshold")
    threshold: float = Field(ge=0, le=1)
    target_sensitivity: float = Field(description="the sensitivity the threshold was chosen for")
    val_sensitivity: float = Field(description="sensitivity at the threshold on `chosen_on`")
    val_specificity: float = Field(description="specificity at the threshold on `chosen_on`")
    chosen_on: str = Field(description="the split the threshold was chosen on (validation)")
    n_val: int | None = Field(default=None, description="images of that split")
    n_val_positive: int | None = Field(default=None, description="its images of the positive class")
    n_val_negative: int | None = Field(default=None, description="its other images")
    val_sensitivity_ci: tuple[float, float] | None = Field(
        default=None, description="95 % Wilson interval of `val_sensitivity` (null: older runs)"
    )
    val_specificity_ci: tuple[float, float] | None = Field(
        default=None, description="95 % Wilson interval of `val_specificity` (null: older runs)"
    )
    positive_chosen: str | None = Field(
        default=None,
        description="how the trainer took the positive class: --positive-class, by the other "
        "class's name (normal, benign...), or label 1 unconfirmed by the names",
    )

    def describe(self) -> str:
        """``P(malignant) ≥ 0.3142`` for a person."""
        return f"P({self.positive_class}) ≥ {self.threshold:.4g}"


def validation_figures(point: Mapping[str, Any], places: int = 2) -> str:
    """``validation sensitivity 0.90 [0.74, 0.97] on 31 positives, specificity 0.80 [0.66,
    0.89] on 47 others`` of an operating point's fields (``OperatingPoint``, or
    ``ThresholdPoint``'s dump): its intervals and counts where the trainer recorded them."""

    def one(name: str, count: str, of: str) -> str:
        value, ci, n = point.get(f"val_{name}"), point.get(f"val_{name}_ci"), point.get(count)
        text = f"{name} {float(value):.{places}f}"
        if ci is not None and len(ci) == 2:
            text += f" [{float(ci[0]):.{places}f}, {float(ci[1]):.{places}f}]"
        return text + (f" on {n} {of}" if n else "")

    figures = [one("sensitivity", "n_val_positive", "positives")]
    if point.get("val_specificity") is not None:  # a sensitivity alone hides a useless rule
        figures.append(one("specificity", "n_val_negative", "others"))
    total = f" on {point['n_val']} images" if point.get("n_val") else ""  # older runs: no counts
    return "validation " + ", ".join(figures) + ("" if point.get("n_val_positive") else total)


def _reason(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)


def checked_point(found: object, class_names: Sequence[str], where: str) -> OperatingPoint:
    """``found`` as an ``OperatingPoint`` that fits ``class_names``; ``InvalidInput`` naming
    ``where`` it came from otherwise."""
    try:
        point = OperatingPoint.model_validate(found)
    except ValueError as exc:  # not an operating point
        raise InvalidInput(f"{where} is not usable: {_reason(exc)}") from exc
    if len(class_names) != 2 or point.positive_class not in class_names:
        raise InvalidInput(
            f"{where} sets a threshold for {point.positive_class!r}, which does not fit the "
            f"model's classes ({', '.join(class_names)}): a threshold needs two classes, one "
            "of them the positive class"
        )
    return point


def read_operating_point(
    client: MlflowClient, run_id: str, class_names: Sequence[str]
) -> OperatingPoint | None:
    """The run's operating point; None when the trainer wrote none (more than two classes, or
    ``--target-sensitivity 0``).

    Raises:
        ServiceUnavailable: MLflow failed while reading it (nothing is decided without the
            threshold the run chose).
        InvalidInput: The document does not fit the model (not JSON, malformed, not two classes).
    """
    path = contract.OPERATING_POINT_JSON
    found = load_json_artifact(client, run_id, path)
    return None if found is None else checked_point(found, class_names, f"{path} of run {run_id}")


def decided_labels(
    point: OperatingPoint | None, probs: np.ndarray, class_names: Sequence[str]
) -> np.ndarray:
    """The class index each row of ``probs`` is decided as: by the threshold where the run has
    an operating point (the positive class where its probability reaches it), else the most
    probable class."""
    if point is None:
        return probs.argmax(axis=1)
    return threshold_labels(probs, list(class_names).index(point.positive_class), point.threshold)
