"""The artifact contract of a pipeline run: where each file lives, and what it holds.

Writers (trainer, evaluator, explainer, dashboard) and readers (evaluator, explainer, dashboard,
model card, predictor) use these names and models instead of string literals, so a change to the
layout is made here once. Every model allows extra fields: a newer writer may add some, an older
reader ignores them.

Published results: the evaluator and explainer write each result to a folder of its own and
name the current one in a run tag (``EVALUATION_PATH_TAG``, ``EXPLANATION_PATH_TAG``); readers go
through ``evaluation_dir`` / ``explanation_dir``. Runs written before that have no tag and keep
their result in ``evaluation/`` and ``explanations/``.
"""

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common import metric_keys
from dataloader import label_conflict_note

# Files at the root of the run's artifacts, written by the trainer.
PREPROCESSING_JSON = "preprocessing.json"
DATASET_STATS_JSON = "dataset_stats.json"

# Folders of the evaluator's and explainer's results (legacy location and parent of attempts).
EVALUATION_DIR = "evaluation"
EXPLANATIONS_DIR = "explanations"

# Files inside an evaluation folder.
METRICS_JSON = "metrics.json"
PREDICTIONS_CSV = "predictions.csv"
MISCLASSIFIED_CSV = "misclassified_top5.csv"
MISCLASSIFIED_DIR = "misclassified"
CONFUSION_MATRIX_PNG = "confusion_matrix.png"
ROC_CURVES_PNG = "roc_curves.png"
CALIBRATION_PNG = "calibration.png"

# Files inside an explanation folder.
INDEX_JSON = "index.json"
FAITHFULNESS_JSON = "faithfulness.json"
CHANNEL_IMPORTANCE_JSON = "channel_importance.json"
EMBEDDING_JSON = "embedding.json"
OPERATING_POINT_JSON = "operating_point.json"  # two-class runs: threshold chosen on validation
GRADCAM_PNG = "gradcam_overlays.png"
CHANNEL_IMPORTANCE_PNG = "channel_importance.png"
SHAP_SUMMARY_PNG = "shap_summary.png"
DELETION_CURVES_PNG = "deletion_curves.png"
PANELS_DIR = "panels"

# In both: the job's answer, which a retry of the same job returns instead of publishing again.
JOB_RESULT_JSON = "job_result.json"

# Run tags.
LEAKAGE_TAG = "pipeline.leakage_warning"  # one line when the splits share images or patients
# JSON {"exact": n, "near": n, "groups": n}: what the test split shares with train and val
# (duplicates counted per split pair, groups = patients), set when the test split was audited
TEST_OVERLAP_TAG = "pipeline.test_overlap"
STAGE_TAG = "pipeline.stage"  # "training" while the trainer runs, "trained" once the model is in
ENDED_TAG = "pipeline.ended"  # why a run shows KILLED that its trainer could not mark itself
PROGRESS_TAG = "pipeline.progress"  # JSON: at (UTC), epoch, epochs, member, members, each epoch
TRAINER_TAG = "pipeline.trainer"  # host:pid of the process training the run (the last to resume)
EVALUATED_TAG = "pipeline.evaluated"
EXPLAINED_TAG = "pipeline.explained"
EVALUATION_PATH_TAG = "pipeline.evaluation.path"
# What the current evaluation's figures were measured on, set with EVALUATION_PATH_TAG: readers
# of many runs (the leaderboard) tell like-for-like figures apart without each metrics.json.
EVALUATION_TTA_TAG = "pipeline.evaluation.tta"  # test-time augmentation: none, horizontal, both
EVALUATION_OWN_DATA_TAG = "pipeline.evaluation.own_data"  # "false": not the run's own data_dir
EVALUATION_DATA_TAG = "pipeline.evaluation.dataset_hash"  # the test data's content hash
EVALUATION_BASIS_TAG = "pipeline.evaluation.basis_of"  # the folder the three above describe
EXPLANATION_PATH_TAG = "pipeline.explanation.path"

ENSEMBLE_JSON = "ensemble.json"
"""With ``--ensemble K > 1``: each member's seed, best epoch and validation figures, and the
ensemble's."""

# The trainer's settings that say how a model was trained (logged as params, shown on the card).
TRAINING_PARAMS = (
    "model", "epochs", "batch_size", "optimizer", "lr", "lr_schedule", "lr_warmup_epochs",
    "lr_warmup_decay", "lr_step_size", "lr_gamma", "weight_decay", "momentum", "augmentation",
    "cutmix_alpha", "cutmix_prob", "mixup_alpha", "per_sample_mix", "flip", "shift", "dropout",
    "label_smoothing", "val_fraction", "patience", "select", "seed", "class_balance", "ema_decay",
    "target_sensitivity", "allow_group_overlap", "ensemble", "min_image_size", "max_image_size",
    "width",
)  # fmt: skip


def _current(tags: Mapping[str, str] | None, tag: str, legacy: str) -> str:
    value = (tags or {}).get(tag)
    return value.strip("/") if value else legacy


def evaluation_dir(tags: Mapping[str, str] | None) -> str:
    """The artifact folder of the run's current evaluation, given the run's tags."""
    return _current(tags, EVALUATION_PATH_TAG, EVALUATION_DIR)


def explanation_dir(tags: Mapping[str, str] | None) -> str:
    """The artifact folder of the run's current explanation, given the run's tags."""
    return _current(tags, EXPLANATION_PATH_TAG, EXPLANATIONS_DIR)


def evaluation_tags(tta: str, own_data: bool, dataset_hash: str, folder: str) -> dict[str, str]:
    """The run tags ``EVALUATION_TTA_TAG``, ``EVALUATION_OWN_DATA_TAG`` and
    ``EVALUATION_DATA_TAG`` of the evaluation in ``folder`` (as its ``metrics.json`` says them),
    and ``EVALUATION_BASIS_TAG`` naming that folder: an evaluator from before these tags moves
    only the path tag, and the three then describe another evaluation (``basis_tags``)."""
    return {
        EVALUATION_TTA_TAG: tta,
        EVALUATION_OWN_DATA_TAG: "true" if own_data else "false",
        EVALUATION_DATA_TAG: dataset_hash,
        EVALUATION_BASIS_TAG: folder,
    }


def basis_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The ``evaluation_tags`` of the run's current evaluation; {} when they describe another
    one (or none was set)."""
    if tags.get(EVALUATION_BASIS_TAG, "").strip("/") != evaluation_dir(tags):
        return {}
    return {k: tags[k] for k in (EVALUATION_TTA_TAG, EVALUATION_OWN_DATA_TAG, EVALUATION_DATA_TAG)
            if k in tags}  # fmt: skip


def is_evaluated(tags: Mapping[str, str], metrics: Iterable[str]) -> bool:
    """Whether a run has a published evaluation: the evaluator's tags, or ``eval_*`` metrics
    (runs evaluated before the tags existed). The one rule of the dashboard and of choosing."""
    return (
        tags.get(EVALUATED_TAG) == "true"
        or bool(tags.get(EVALUATION_PATH_TAG))
        or any(k.startswith(metric_keys.EVAL_PREFIX) for k in metrics)
    )


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Estimate(_Open):
    """A metric with its confidence interval; ``value`` None means undefined (see ``reason``)."""

    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    method: str | None = None
    reason: str | None = None


class SkippedFiles(_Open):
    """Test files the loader could not use (corrupt, empty, not an image), with the reasons."""

    count: int = 0
    reasons: dict[str, int] = Field(default_factory=dict, description="reason → number of files")
    files: list[dict[str, str]] = Field(
        default_factory=list, description="the first 50: {file, reason}"
    )


class ThresholdPoint(_Open):
    """``operating_points.threshold`` of ``metrics.json`` (two-class runs with an
    ``operating_point.json``): the validation threshold applied to the test split."""

    positive_class: str
    threshold: float
    target_sensitivity: float | None = None
    n_val: int | None = None
    val_sensitivity: float | None = None
    val_specificity: float | None = None
    per_class: dict[str, dict[str, Estimate]] = Field(
        default_factory=dict, description="class → sensitivity / specificity on the test split"
    )
    confusion_matrix: list[list[int]] = Field(default_factory=list)


class OperatingPoints(_Open):
    """``operating_points`` of ``metrics.json``: ``argmax`` always, ``threshold`` where chosen."""

    threshold: ThresholdPoint | None = None


class EvaluationReport(_Open):
    """``<evaluation>/metrics.json``: what ``evaluator.compute_metrics`` found on the test split."""

    n_samples: int
    confidence_level: float = 0.95
    class_names: list[str]
    overall: dict[str, Estimate]
    per_class: dict[str, dict[str, Estimate | int | float | None]] = Field(
        default_factory=dict, description="class → metric name → estimate, plus 'support'"
    )
    confusion_matrix: list[list[int]] = Field(default_factory=list)
    ece_bins: int | None = None
    run_id: str | None = None
    data_dir: str | None = None
    dataset_hash: str | None = None
    skipped: SkippedFiles | None = None
    created_at: str | None = Field(None, description="when the evaluation was made (ISO 8601, UTC)")
    tta: str | None = Field(None, description="test-time augmentation: none, horizontal, both")
    own_data: bool | None = Field(
        None, description="the test split of the run's own data_dir (False: another folder)"
    )
    operating_points: OperatingPoints | None = None
    absent_classes: list[str] = Field(
        default_factory=list,
        description="classes without a test image: their figures are undefined, and the macro "
        "averages cover the other classes",
    )
    decoding_note: str | None = Field(
        None,
        description="set when the evaluator decoded the test images with another version of "
        "the image decoding than the run's training (Preprocessing.decoding_note)",
    )

    @property
    def absent_note(self) -> str | None:
        """One sentence on ``absent_classes`` for a reader of the figures; None without any."""
        if not self.absent_classes:
            return None
        return (
            f"the test split has no image of {', '.join(map(repr, self.absent_classes))}: its "
            "figures are n/a and the macro averages cover the other classes"
        )


class ExplainedSample(_Open):
    """One explained test image in ``index.json``."""

    rank: int
    test_index: int
    file: str | None = None
    true_label: str
    predicted_label: str
    confidence: float
    misclassified: bool
    decided: str | None = Field(
        None, description="what the model decided, and how (argmax, or a two-class threshold)"
    )


class ExplanationIndex(_Open):
    """``<explanation>/index.json``: settings, the samples and every file with a description."""

    run_id: str
    created_at: datetime | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    operating_point: dict[str, Any] | None = Field(
        None, description="two-class runs: the threshold that decided each sample's class"
    )
    sample_index: list[int] = Field(default_factory=list)
    samples: list[ExplainedSample] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)


class MethodFaithfulness(_Open):
    """Deletion result of one attribution method (lower ``auc`` = more faithful)."""

    auc: float
    random_auc: float | None = None
    score: float | None = None
    score_ci_low: float | None = None  # 95 % bootstrap interval over the images (none before)
    score_ci_high: float | None = None
    beats_random_fraction: float | None = None
    curve: list[float] = Field(default_factory=list)


# Fewer explained images get no interval of their faithfulness scores (the explainer computes
# them, the dashboard says why one is missing).
FAITHFULNESS_MIN_IMAGES = 5


class Faithfulness(_Open):
    """``<explanation>/faithfulness.json``: deletion curves per method and for a random order."""

    fractions: list[float] = Field(default_factory=list)
    n_samples: int | None = None  # images explained (absent in files written before it)
    random: dict[str, Any] = Field(default_factory=dict)
    methods: dict[str, MethodFaithfulness] = Field(default_factory=dict)


class EmbeddingPoint(_Open):
    """One test image on the embedding map."""

    test_index: int
    file: str | None = None
    x: float
    y: float
    true_label: str
    predicted_label: str
    confidence: float
    correct: bool


class Embedding(_Open):
    """``<explanation>/embedding.json``: a 2-D map of the model's features of test images."""

    method: str
    class_names: list[str]
    n_test: int
    points: list[EmbeddingPoint]


class DatasetStats(_Open):
    """``dataset_stats.json``: what the dataloader found (counts per split and class, sizes...)."""

    source: str | None = None
    format: str | None = None
    class_names: list[str] = Field(default_factory=list)
    channels: int | None = None
    image_size: list[int] | None = None
    counts: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="split → class → number of images"
    )
    skipped_count: int = 0
    skipped: list[Any] = Field(default_factory=list)
    val_how: str | None = Field(
        None, description="how validation was made (DatasetSplits.val_how); None in older runs"
    )
    val_carve_units: dict[str, int] | None = Field(
        None, description="class → units (patients, copies joined) carved from; None uncarved"
    )
    groups: dict[str, Any] | None = Field(
        None, description="patients per split and shared between splits (dataloader.groups)"
    )
    leakage: dict[str, Any] | None = Field(
        None,
        description="exact and near duplicate images across splits, and identical or "
        "near-identical images under two classes (label_conflicts, near_label_conflicts; "
        "dataloader.leakage)",
    )

    @property
    def label_conflict_note(self) -> str | None:
        """One sentence on (near-)identical images filed under two or more classes; None
        without."""
        return label_conflict_note(self.leakage, DATASET_STATS_JSON)

    @property
    def test_audited(self) -> bool:
        """Whether the duplicate check looked at a split pair with test (it had one to read)."""
        pairs = [p for kind in ("exact", "near") for p in (self.leakage or {}).get(kind) or {}]
        return any("test" in pair.split("/") for pair in pairs)

    def overlap_counts(self, with_test: bool) -> dict[str, int]:
        """``{"exact", "near", "groups"}``: duplicates and shared patients summed over the split
        pairs with test (``with_test``), or without it; the trainer's tag and the dashboard's
        leakage rule both count with this."""

        def total(found: dict[str, Any] | None) -> int:
            return sum(int(v.get("count") or 0) for pair, v in (found or {}).items()
                       if ("test" in pair.split("/")) == with_test)  # fmt: skip

        leakage = self.leakage or {}
        return {
            "exact": total(leakage.get("exact")),
            "near": total(leakage.get("near")),
            "groups": total((self.groups or {}).get("overlap")),
        }


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class SelectionRecord(_Open):
    """A document of the ``selections`` collection: who chose or downloaded which run, and why.

    ``action`` "choose" moved the alias ``alias`` of ``registered_model`` to ``version`` and wrote
    ``run_id.txt``; "download" only copied the run's files to ``artifacts_path``.
    """

    selection_id: str = Field(default_factory=_new_id)
    run_id: str
    action: Literal["choose", "download"]
    model_uri: str = Field(description="models:/<name>/<version> if chosen, else runs:/<id>/model")
    experiment_id: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    artifacts_path: str | None = None
    registered_model: str | None = None
    version: str | None = None
    alias: str | None = None
    reason: str | None = None
    evaluated: bool | None = Field(None, description="the run had an evaluation when chosen")
    selected_at: datetime = Field(default_factory=_now)
    selected_by: str | None = None
    evaluation_caveats: list[str] = Field(
        default_factory=list, description="what the evaluation's figures do not show (TTA...)"
    )
    interface_change: str | None = Field(
        None, description="how the choice changed the classes, channels or decision served"
    )
