"""The artifact contract of a pipeline run: where each file lives and which tags name it.

Writers (trainer, evaluator, explainer, dashboard) and readers (evaluator, explainer, dashboard,
model card, predictor) use these names instead of string literals, so a change to the layout is
made here once. What the JSON files hold is modelled in ``runs.schemas``.

Published results: the evaluator and explainer write each result to a folder of its own and
name the current one in a run tag (``EVALUATION_PATH_TAG``, ``EXPLANATION_PATH_TAG``); readers go
through ``evaluation_dir`` / ``explanation_dir``. Runs written before that have no tag and keep
their result in ``evaluation/`` and ``explanations/``.
"""

import os
import posixpath
import re
from collections.abc import Mapping
from pathlib import PurePosixPath

# Files at the root of the run's artifacts, written by the trainer.
PREPROCESSING_JSON = "preprocessing.json"
DATASET_STATS_JSON = "dataset_stats.json"
# The images a validation split carved from train held (one name per line, as results name
# files: FILE_NAMES), for a folder data set; a given val/ folder or an .npz split has none
VAL_FILES_TXT = "splits/val_files.txt"
# session-<k>.json: each training session's CPU, GPU, main packages; session-<k>-packages.txt:
# every installed distribution, name==version
ENVIRONMENT_DIR = "environment"
# session-<k>.json: each training session's code (commit, diff size and digest, untracked files);
# session-<k>.patch: its `git diff HEAD` when tracked files differed (at most 5 MB)
PROVENANCE_DIR = "provenance"

# Folders of the evaluator's and explainer's results (legacy location and parent of attempts).
EVALUATION_DIR = "evaluation"
EXPLANATIONS_DIR = "explanations"

# Files inside an evaluation folder.
METRICS_JSON = "metrics.json"
PREDICTIONS_CSV = "predictions.csv"
MISCLASSIFIED_CSV = "misclassified_top5.csv"
# A text cell of these CSVs that a spreadsheet would run as a formula (OWASP's CSV injection:
# file and class names are written by whoever fills the data folder) is written after a "'",
# which spreadsheets show as text; so is one that starts with "'" before such a text, so that
# ``as_written`` reads every cell back as it was. Numbers (``-1``) are left alone.
_FORMULA = re.compile(r"'*(?:[=@\t\r]|[+-](?![0-9.]+$))")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell's ``value`` that opens in a spreadsheet as text, never as a formula."""
    return f"'{value}" if isinstance(value, str) and _FORMULA.match(value) else value


def as_written(cell: str) -> str:
    """A text cell of the evaluation's CSVs as its writer had it (``spreadsheet_safe`` undone)."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell[1:]) else cell


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
# The explainer's attribution methods (``explainer.METHODS``, its keys) as titles and tables name
# them: the explainer's figures and the dashboard read them here (the dashboard cannot import it).
ATTRIBUTION_TITLES = {
    "shap": "SHAP",
    "integrated_gradients": "Integrated Gradients",
    "gradcam": "Grad-CAM",
}

# In both: the job's answer, which a retry of the same job returns instead of publishing again.
JOB_RESULT_JSON = "job_result.json"

# Run tags.
LEAKAGE_TAG = "pipeline.leakage_warning"  # one line when the splits share images or patients
# JSON {"exact": n, "near": n, "groups": n}: what the test split shares with train and val
# (duplicates counted per split pair, groups = patients), set when the test split was audited
TEST_OVERLAP_TAG = "pipeline.test_overlap"
# The content hash of the test split the run was trained beside (``DatasetSplits.split_hashes``):
# an evaluation of the run's own data folder whose test split hashes otherwise is not its own data
TEST_DATA_TAG = "pipeline.test_data_hash"
NO_TEST_DATA = "none"  # its value when the trainer read no test split (none there, or unreadable)
STAGE_TAG = "pipeline.stage"  # "training" while the trainer runs, "trained" once the model is in
ENDED_TAG = "pipeline.ended"  # why a run shows KILLED that its trainer could not mark itself
PROGRESS_TAG = "pipeline.progress"  # JSON: at (UTC), epoch, epochs, member, members, each epoch
TRAINER_TAG = "pipeline.trainer"  # host:pid of the process training the run (the last to resume)
# The code of the session that started the run, beside mlflow.source.git.commit: where the
# commit came from ("checkout", or "PIPELINE_GIT_COMMIT": the commit an image was built from),
# "true" when tracked files differed from that commit ("unknown": no git checkout, as in an
# image), and then a digest of `git diff HEAD` (the first 16 hex digits of its SHA-256)
GIT_SOURCE_TAG = "pipeline.git_commit_source"
# The variable the app images carry (their build argument GIT_COMMIT) and GIT_SOURCE_TAG's value
# for a commit read from it
IMAGE_COMMIT_ENV = "PIPELINE_GIT_COMMIT"
GIT_DIRTY_TAG = "pipeline.git_dirty"
GIT_DIFF_TAG = "pipeline.git_diff_sha256"
# JSON list, one entry per training session (trainer.provenance): session, at, start_epoch,
# [member], commit, [source], dirty, [diff_sha256], [untracked], threads, device, world_size
SESSIONS_TAG = "pipeline.sessions"
RESUMED_TAG = "pipeline.resumed"  # "true" once a session continued the run from a checkpoint
EVALUATED_TAG = "pipeline.evaluated"
EXPLAINED_TAG = "pipeline.explained"
EVALUATION_PATH_TAG = "pipeline.evaluation.path"
# What the current evaluation's figures were measured on, set with EVALUATION_PATH_TAG: readers
# of many runs (the leaderboard) tell like-for-like figures apart without each metrics.json.
EVALUATION_TTA_TAG = "pipeline.evaluation.tta"  # test-time augmentation: none, horizontal, both
EVALUATION_OWN_DATA_TAG = "pipeline.evaluation.own_data"  # "false": not the run's own data_dir
EVALUATION_DATA_TAG = "pipeline.evaluation.dataset_hash"  # the test data's content hash
EVALUATION_BASIS_TAG = "pipeline.evaluation.basis_of"  # the folder the three above describe
# How many test images the figures rest on (``metrics.json``'s ``n_samples``), and the folder of
# the evaluation it counts: its own, since an evaluator from before it sets the basis tags alone
# (absent from evaluations published before these two)
EVALUATION_N_TAG = "pipeline.evaluation.n_test"
EVALUATION_N_OF_TAG = "pipeline.evaluation.n_test_of"
# How far the model's predicted probabilities spread over the test images (``metrics.json``'s
# ``probability_range``: the largest max − min of any class's probability), and the folder of
# the evaluation it is of (absent from evaluations published before these two). Under
# ``CONSTANT_RANGE`` the output ignores the input: the figures of its probabilities (AUC,
# threshold) order float noise (``constant_probabilities``).
EVALUATION_RANGE_TAG = "pipeline.evaluation.probability_range"
EVALUATION_RANGE_OF_TAG = "pipeline.evaluation.probability_range_of"
# float32 rounding moves a softmax output by ~1e-7 with the batch it is computed in: a model whose
# probabilities spread less than this over the whole test split answers one constant
CONSTANT_RANGE = 1e-6
EXPLANATION_PATH_TAG = "pipeline.explanation.path"
# The stamp (ms) of the current result's metrics, with "evaluation" or "explanation": the next
# result's metrics are stamped later even by a replica whose clock is behind (MLflow shows the
# metric stamped last, and the path tag written last; ``runs.publish_result``).
PUBLISHED_MS_TAG = "pipeline.{kind}.published_ms"

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
    "width", "modality", "ood_quantile",
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


def evaluation_tags(
    tta: str,
    own_data: bool,
    dataset_hash: str,
    folder: str,
    n_test: int | None = None,
    probability_range: float | None = None,
) -> dict[str, str]:
    """The run tags ``EVALUATION_TTA_TAG``, ``EVALUATION_OWN_DATA_TAG`` and
    ``EVALUATION_DATA_TAG`` of the evaluation in ``folder`` (as its ``metrics.json`` says them),
    and ``EVALUATION_BASIS_TAG`` naming that folder: an evaluator from before these tags moves
    only the path tag, and the three then describe another evaluation (``basis_tags``). Given
    ``n_test``, also ``EVALUATION_N_TAG`` with ``EVALUATION_N_OF_TAG`` naming that folder
    (``evaluated_images``); given ``probability_range``, ``EVALUATION_RANGE_TAG`` with
    ``EVALUATION_RANGE_OF_TAG`` naming that folder (``constant_probabilities``)."""
    tags = {
        EVALUATION_TTA_TAG: tta,
        EVALUATION_OWN_DATA_TAG: "true" if own_data else "false",
        EVALUATION_DATA_TAG: dataset_hash,
        EVALUATION_BASIS_TAG: folder,
    }
    if n_test is not None:
        tags |= {EVALUATION_N_TAG: str(n_test), EVALUATION_N_OF_TAG: folder}
    if probability_range is not None:
        tags |= {EVALUATION_RANGE_TAG: repr(float(probability_range)),
                 EVALUATION_RANGE_OF_TAG: folder}  # fmt: skip
    return tags


def own_data(recorded: bool | None, evaluated: str | None, run_data_dir: str | None,
             data_root: str | os.PathLike | None = None) -> bool | None:  # fmt: skip
    """Whether an evaluation (or explanation) was of the run's own data folder: what it
    ``recorded`` (``own_data``) when it did, else what its recorded data folder (``evaluated``,
    ``metrics.json``'s ``data_dir``: the evaluator's resolved path) tells against the run's
    ``data_dir`` param; None when that cannot be told (both kept as plain, as before).

    Evaluators before ``own_data`` (2026-12-04 and earlier) recorded only the folder. The param
    is an absolute resolved path, or one relative to the trainer's ``DATA_DIR``
    (``trainer.mlflow_run.logged_data_dir``; older trainers: as typed): taken under
    ``data_root`` (this process's ``DATA_DIR``, the deployments share it) where both folders
    exist here, else a relative param says "other data" only when the folder does not end with
    it (a run trained on ``DATA_DIR`` itself, param ``.``, then stays unknown).
    """
    if recorded is not None:
        return recorded
    if not evaluated or not run_data_dir:
        return None
    folder = PurePosixPath(posixpath.normpath(evaluated)).parts
    logged = PurePosixPath(posixpath.normpath(run_data_dir))
    if logged.is_absolute():  # (links resolved where the paths exist here: the same folder)
        return os.path.realpath(evaluated) == os.path.realpath(run_data_dir)
    if data_root is not None:
        mine = os.path.join(data_root, run_data_dir)
        if os.path.isabs(evaluated) and os.path.exists(mine) and os.path.exists(evaluated):
            return os.path.realpath(mine) == os.path.realpath(evaluated)
    parts = () if logged.parts == (".",) else logged.parts
    if ".." in parts or not parts or folder[-len(parts) :] == parts:
        return None  # the same folder under some DATA_DIR, or not known
    return False


def basis_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The ``evaluation_tags`` of the run's current evaluation; {} when they describe another
    one (or none was set)."""
    if tags.get(EVALUATION_BASIS_TAG, "").strip("/") != evaluation_dir(tags):
        return {}
    return {k: tags[k] for k in (EVALUATION_TTA_TAG, EVALUATION_OWN_DATA_TAG, EVALUATION_DATA_TAG)
            if k in tags}  # fmt: skip


def evaluated_images(tags: Mapping[str, str]) -> int | None:
    """How many test images the run's current evaluation rests on (``EVALUATION_N_TAG``); None
    when not known: no evaluation, one published before the tag (or by an evaluator without it
    since: the tag then counts another evaluation's images), or a value that is no count."""
    if tags.get(EVALUATION_N_OF_TAG, "").strip("/") != evaluation_dir(tags):
        return None
    value = tags.get(EVALUATION_N_TAG, "")
    return int(value) if value.isascii() and value.isdigit() else None


def constant_probabilities(tags: Mapping[str, str]) -> bool:
    """Whether the run's current evaluation found its predicted probabilities constant over the
    test images (``EVALUATION_RANGE_TAG`` under ``CONSTANT_RANGE``). False when not known: no
    evaluation, one published before the tag (or by an evaluator without it since: the tag then
    describes another evaluation), or a value that is no number."""
    if tags.get(EVALUATION_RANGE_OF_TAG, "").strip("/") != evaluation_dir(tags):
        return False
    try:
        spread = float(tags.get(EVALUATION_RANGE_TAG, ""))
    except ValueError:
        return False
    return spread < CONSTANT_RANGE  # (NaN: False)


def is_evaluated(tags: Mapping[str, str]) -> bool:
    """Whether a run has an evaluation the evaluator published: its tags. Not ``eval_*`` metrics
    alone, which any run may log by hand (a figure typed into MLflow has no test images,
    intervals or predictions behind it, and must not pass for an evaluation when a model is
    chosen). The one rule of the dashboard and of choosing."""
    return tags.get(EVALUATED_TAG) == "true" or bool(tags.get(EVALUATION_PATH_TAG))
