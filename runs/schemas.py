"""What the JSON files of a pipeline run hold (their names: ``runs.contract``).

``metrics.json`` (``EvaluationReport``), an explanation's ``index.json``, ``faithfulness.json``
and ``embedding.json``, the trainer's ``dataset_stats.json``, and the audit trail's
``SelectionRecord``. Every model allows extra fields: a newer writer may add some, an older
reader ignores them.
"""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common import get_settings, utcnow
from dataloader import label_conflict_note
from runs.contract import DATASET_STATS_JSON, own_data


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
    n_val_positive: int | None = None
    n_val_negative: int | None = None
    val_sensitivity_ci: tuple[float, float] | None = None
    val_specificity_ci: tuple[float, float] | None = None
    positive_chosen: str | None = Field(
        None, description="how the trainer took the positive class (OperatingPoint)"
    )
    per_class: dict[str, dict[str, Estimate]] = Field(
        default_factory=dict, description="class → sensitivity / specificity on the test split"
    )
    confusion_matrix: list[list[int]] = Field(default_factory=list)
    # The decision's own figures (evaluator.predictive_values; None in evaluations before them)
    accuracy: Estimate | None = None
    ppv: Estimate | None = Field(None, description="of images decided positive: truly so")
    npv: Estimate | None = Field(None, description="of images decided negative: truly so")
    caveat: str | None = Field(
        None, description="why these figures are not quite the served decision's (TTA)"
    )


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
        None,
        description="the test split of the run's own data_dir, as it was at training (False: "
        "another folder, or that folder's test split changed since: data_changed)",
    )
    data_changed: str | None = Field(
        None,
        description="set when the run's own data folder was evaluated but its test split is "
        "not the one of training (runs.test_split_change): how, in one sentence",
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
    computed_with: dict[str, Any] | None = Field(
        None,
        description="how the intervals were computed: bootstrap_resamples, bootstrap_seed and "
        "the packages' versions (numpy, scipy, scikit-learn)",
    )
    out_of_distribution: dict[str, Any] | None = Field(
        None,
        description="models with the out-of-distribution check: how many test images it flags "
        "(images, flagged, rate, expected_rate, flagged_images) and a note when far more than "
        "expected (evaluator.ood)",
    )

    def of_run(self, run_data_dir: str | None, data_root=None) -> "EvaluationReport":
        """This report with ``own_data`` as every reader takes it, for a run whose ``data_dir``
        param is ``run_data_dir`` (``contract.own_data``: an evaluation from before the field
        tells by its ``data_dir``; ``data_root``: where a relative param lies, by default this
        process's ``DATA_DIR``, which every deployment shares with the evaluator)."""
        if data_root is None and self.own_data is None:
            data_root = get_settings().data_dir
        found = own_data(self.own_data, self.data_dir, run_data_dir, data_root)
        return self if found == self.own_data else self.model_copy(update={"own_data": found})

    @property
    def ood_note(self) -> str | None:
        """One sentence when the check flags far more test images than it expects (the test
        data differs from the training data); None otherwise or without the check."""
        return (self.out_of_distribution or {}).get("note")

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
    selected_at: datetime = Field(default_factory=utcnow)
    selected_by: str | None = None
    evaluation_caveats: list[str] = Field(
        default_factory=list, description="what the evaluation's figures do not show (TTA...)"
    )
    interface_change: str | None = Field(
        None, description="how the choice changed the classes, channels or decision served"
    )
    evaluation: dict[str, str] = Field(
        default_factory=dict,
        description="which evaluation the figures are of: its path in the run, data folder, "
        "dataset hash, number of test images and time (the version's evaluation_* tags)",
    )
    lineage: dict[str, str] = Field(
        default_factory=dict,
        description="what the chosen model is made of, as its run recorded it, so that the "
        "record identifies it without the run: weights_digest, files_digest (of the files "
        "registered), dataset_hash (every split), "
        "test_data_hash, dataset_groups_hash, git_commit, git_commit_source, git_dirty, "
        "git_diff_sha256 (those recorded)",
    )
    signatures: list[str] = Field(
        default_factory=list,
        description="the signature tags the choice set on the version (choice_signature, "
        "choice_signature_ed25519): one of them gone from the version's tags since is an edit",
    )
    replaced: str | None = Field(
        None,
        description="the version the alias named when this choice moved it (None: none, or "
        "the choice kept it); a version no choice recorded was set outside the pipeline",
    )
