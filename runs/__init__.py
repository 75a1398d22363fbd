"""What the pipeline knows about an MLflow run: access, models, preprocessing, run checks.

- Packaging (``runs.packaging``): ``log_classifier`` logs the self-contained model,
  ``load_classifier`` loads its served form, ``servable_problem`` says why a model cannot be served.
- ``runs.client_setup``: MLflow's client set up once on import (no progress bars, fast-failing
  retries, no Databricks probe outside Databricks).
- Tracking: ``check_tracking``, ``get_client``, ``get_run``, ``load_model``,
  ``load_preprocessing`` raise ``common`` errors with a message for the user.
- Models: ``build_model`` and ``MODEL_NAMES`` (the classes the trainer pickles into runs).
- ``Preprocessing``: how a consumer turns images into the model's input.
- Checks: ``check_run``, ``check_model``, ``run_data_dir``, ``resolve_data_dir``,
  ``check_compatible`` (data vs ``preprocessing.json``), ``load_test_split`` and
  ``skipped_report``, shared by the evaluator and explainer; ``warm_up`` imports at a
  service's start the MLflow store those checks would import on the first request.
- ``threshold_labels``: a two-class decision by a threshold (the logged model's own rule);
  ``OperatingPoint``, ``read_operating_point``, ``checked_point`` and ``decided_labels``
  (``runs.decision``): a run's threshold, read and checked once for every service;
  ``validation_figures``: its validation sensitivity and specificity, with intervals, in words;
  ``wilson_interval``: the one formula of those intervals and of the evaluator's;
  ``ResampledAuc``, ``resample_counts`` and ``macro_auc``: the AUC of bootstrap resamples (the
  evaluator's intervals, the dashboard's paired comparison).
- ``Interface`` and ``compare_interfaces`` (``runs.interface``): what a client of a served model
  depends on, and how another model changes it (the dashboard's choice, the predictor's switch);
  ``confirmation`` / ``confirmed_for``: a confirmed change, recorded on the version and read back.
- The choices' Ed25519 key pair (``runs.ed25519``: ``new_key_pair``, ``public_key_of``; ``python -m
  runs.keys`` prints one): ``sign_choice_ed25519`` sets the tag ``ED25519_TAG``,
  ``verified_choice`` / ``unverified_problem`` check it with public keys alone.
- ``weights_digest`` (``runs.digest``): the digest of a model's weights, recorded as the run's
  param and the version's tag ``weights_digest`` (``DIGEST_KEY``) and checked wherever a model is
  loaded (``check_run_model``, ``recorded_digest``, ``digest_differs``); ``files_digest``
  (``FILES_KEY``) of a chosen version's files, signed with the choice and checked before they
  are unpickled (``load_classifier(uri, files)``, ``FilesRefused``).
- The artifact contract (``runs.contract``): where each artifact lives in a run, and which tag
  names it; ``runs.schemas``: what its JSON files hold (pydantic models).
"""

from mlpipeline_model import (
    ANSWER_COLUMNS,
    DECISION_COLUMN,
    DECODING_VERSION,
    MAX_DISTORTION,
    MAX_PIXELS,
    OOD_COLUMN,
    OOD_SCORE_COLUMN,
    PREDICTED_COLUMN,
    ImageDecodeError,
    OODReference,
    conformal_threshold,
    declared_pixels,
    decode_image,
    flagged,
    pixel_statistics,
    reference_of,
    threshold_labels,
)
from runs import contract, inference, schemas
from runs.checks import (
    MAX_UPSCALE,
    check_compatible,
    check_model,
    check_run,
    data_inputs,
    is_run_data,
    load_test_split,
    own_test_split,
    resolve_data_dir,
    run_data_dir,
    skipped_report,
    warm_up,
)
from runs.choice import (
    ED25519_TAG,
    KEY_TAG,
    SIGNATURE_TAG,
    foreign_signer,
    sign_choice,
    sign_choice_ed25519,
    signed_choice,
    unsigned_problem,
    unverified_problem,
    verified_choice,
)
from runs.decision import (
    UNCONFIRMED_POSITIVE,
    OperatingPoint,
    checked_point,
    decided_labels,
    read_operating_point,
    validation_figures,
)
from runs.digest import (
    DIGEST_KEY,
    FILES_KEY,
    FilesRefused,
    check_run_model,
    checked_files,
    files_digest,
    recorded_digest,
    weights_digest,
)
from runs.digest import differs as digest_differs
from runs.ed25519 import new_key_pair, public_key_of
from runs.interface import (
    CONFIRMED_DICOM_TAG,
    CONFIRMED_FROM_TAG,
    CONFIRMED_TAG,
    Interface,
    ServedRecord,
    confirmation,
    confirmed_for,
    dicom_inputs,
    read_served,
    restamped,
    served_record,
    served_tag,
)
from runs.interface import changes as compare_interfaces
from runs.intervals import (
    CONFIDENCE,
    ResampledAuc,
    macro_auc,
    resample_counts,
    wilson_interval,
)
from runs.logged import (
    MODEL_RECORD_KEY,
    RECORDS,
    RECORDS_KEY,
    find_logged_model,
    model_gone,
    recorded_model,
)
from runs.models import MODEL_NAMES, Ensemble, ImageClassifier, build_model
from runs.packaging import (
    FORMAT_KEY,
    download_failure,
    load_classifier,
    log_classifier,
    model_info,
    servable_problem,
)
from runs.preprocessing import Preprocessing
from runs.tracking import (
    MODEL_ARTIFACT,
    check_tracking,
    earlier_answer,
    get_client,
    get_run,
    job_result_id,
    last_served,
    load_json_artifact,
    load_model,
    load_preprocessing,
    new_result_id,
    outage_of,
    publish_result,
    result_current,
    run_model_uri,
    stopped_before_model,
)

__all__ = [
    "ANSWER_COLUMNS",
    "CONFIDENCE",
    "CONFIRMED_DICOM_TAG",
    "CONFIRMED_FROM_TAG",
    "CONFIRMED_TAG",
    "DECISION_COLUMN",
    "DECODING_VERSION",
    "DIGEST_KEY",
    "ED25519_TAG",
    "FILES_KEY",
    "FORMAT_KEY",
    "KEY_TAG",
    "MAX_DISTORTION",
    "MAX_PIXELS",
    "MAX_UPSCALE",
    "MODEL_ARTIFACT",
    "MODEL_NAMES",
    "MODEL_RECORD_KEY",
    "OOD_COLUMN",
    "OOD_SCORE_COLUMN",
    "PREDICTED_COLUMN",
    "RECORDS",
    "RECORDS_KEY",
    "SIGNATURE_TAG",
    "UNCONFIRMED_POSITIVE",
    "Ensemble",
    "FilesRefused",
    "ImageClassifier",
    "ImageDecodeError",
    "Interface",
    "OODReference",
    "OperatingPoint",
    "Preprocessing",
    "ResampledAuc",
    "ServedRecord",
    "build_model",
    "check_compatible",
    "check_model",
    "check_run",
    "check_run_model",
    "check_tracking",
    "checked_files",
    "checked_point",
    "compare_interfaces",
    "confirmation",
    "confirmed_for",
    "conformal_threshold",
    "contract",
    "data_inputs",
    "decided_labels",
    "declared_pixels",
    "decode_image",
    "dicom_inputs",
    "digest_differs",
    "download_failure",
    "earlier_answer",
    "files_digest",
    "find_logged_model",
    "flagged",
    "foreign_signer",
    "get_client",
    "get_run",
    "inference",
    "is_run_data",
    "job_result_id",
    "last_served",
    "load_classifier",
    "load_json_artifact",
    "load_model",
    "load_preprocessing",
    "load_test_split",
    "log_classifier",
    "macro_auc",
    "model_gone",
    "model_info",
    "new_key_pair",
    "new_result_id",
    "outage_of",
    "own_test_split",
    "pixel_statistics",
    "public_key_of",
    "publish_result",
    "read_operating_point",
    "read_served",
    "recorded_digest",
    "recorded_model",
    "reference_of",
    "resample_counts",
    "resolve_data_dir",
    "restamped",
    "result_current",
    "run_data_dir",
    "run_model_uri",
    "schemas",
    "servable_problem",
    "served_record",
    "served_tag",
    "sign_choice",
    "sign_choice_ed25519",
    "signed_choice",
    "skipped_report",
    "stopped_before_model",
    "threshold_labels",
    "unsigned_problem",
    "unverified_problem",
    "validation_figures",
    "verified_choice",
    "warm_up",
    "weights_digest",
    "wilson_interval",
]
