"""The run's published results as typed models (``runs.schemas``), and their paths.

Every tab reads evaluations, explanations and dataset statistics through here: the folder of the
current result comes from the run's tags (``contract.evaluation_dir`` / ``explanation_dir``), the
files from the contract's names, and the JSON is validated into the pydantic models of
``runs.schemas``.
A file that does not match its model is reported once in the log and treated as absent.
"""

import logging
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from common import metric_keys
from dashboard import data
from runs import contract, schemas

log = logging.getLogger("dashboard")
Model = TypeVar("Model", bound=BaseModel)


def evaluation_path(run: dict, name: str = "") -> str:
    """``<current evaluation folder>/<name>`` of ``run`` (a ``reads.run_to_dict`` summary)."""
    folder = contract.evaluation_dir(run["tags"])
    return f"{folder}/{name}" if name else folder


def explanation_path(run: dict, name: str = "") -> str:
    """``<current explanation folder>/<name>`` of ``run``."""
    folder = contract.explanation_dir(run["tags"])
    return f"{folder}/{name}" if name else folder


def _typed(uri: str, run: dict, path: str, model: type[Model]) -> Model | None:
    raw = data.artifact_json(uri, run["run_id"], path)
    if raw is None:
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        log.warning("run %s: %s is not a %s: %s", run["run_id"], path, model.__name__, exc)
        return None


def evaluation_report(uri: str, run: dict) -> schemas.EvaluationReport | None:
    """The current evaluation's ``metrics.json``, or ``None``; its ``own_data`` as every reader
    takes it (``EvaluationReport.of_run``: an evaluation from before the field tells by its
    ``data_dir``)."""
    path = evaluation_path(run, contract.METRICS_JSON)
    report = _typed(uri, run, path, schemas.EvaluationReport)
    return None if report is None else report.of_run((run.get("params") or {}).get("data_dir"))


def explanation_index(uri: str, run: dict) -> schemas.ExplanationIndex | None:
    """The current explanation's ``index.json``, or ``None``."""
    path = explanation_path(run, contract.INDEX_JSON)
    return _typed(uri, run, path, schemas.ExplanationIndex)


def faithfulness(uri: str, run: dict) -> schemas.Faithfulness | None:
    """The current explanation's ``faithfulness.json``, or ``None``."""
    path = explanation_path(run, contract.FAITHFULNESS_JSON)
    return _typed(uri, run, path, schemas.Faithfulness)


def embedding(uri: str, run: dict) -> schemas.Embedding | None:
    """The explainer's ``embedding.json`` (t-SNE map of the model's features), or ``None``."""
    path = explanation_path(run, contract.EMBEDDING_JSON)
    return _typed(uri, run, path, schemas.Embedding)


def dataset_stats(uri: str, run: dict) -> schemas.DatasetStats | None:
    """The trainer's ``dataset_stats.json``, or ``None``."""
    return _typed(uri, run, contract.DATASET_STATS_JSON, schemas.DatasetStats)


def preprocessing(uri: str, run: dict) -> dict | None:
    """The trainer's ``preprocessing.json`` as a dict, or ``None``."""
    raw = data.artifact_json(uri, run["run_id"], contract.PREPROCESSING_JSON)
    return raw if isinstance(raw, dict) else None


def channel_importance(uri: str, run: dict) -> dict[str, dict[str, float]]:
    """Method → channel → share of |attribution| (``channel_importance.json``), or ``{}``."""
    path = explanation_path(run, contract.CHANNEL_IMPORTANCE_JSON)
    raw = data.artifact_json(uri, run["run_id"], path)
    if not isinstance(raw, dict):
        return {}
    return {
        m: {str(c): float(v) for c, v in shares.items()}
        for m, shares in raw.items()
        if isinstance(shares, dict)
    }


def has_evaluation(run: dict) -> bool:
    """The run has a published evaluation (``runs.contract.is_evaluated``)."""
    return contract.is_evaluated(run["tags"])


def has_explanation(run: dict) -> bool:
    """The run has a published explanation (its tag, or ``explain_*`` metrics)."""
    tags = run["tags"]
    return bool(
        tags.get(contract.EXPLAINED_TAG)
        or tags.get(contract.EXPLANATION_PATH_TAG)
        or any(k.startswith("explain_") for k in run["metrics"])
    )


def evaluated_at(uri: str, run: dict, report: schemas.EvaluationReport | None) -> datetime | None:
    """When the shown evaluation was made: the report's ``created_at`` when it has one, else
    the time its first ``eval_*`` metric was logged."""
    stamp = getattr(report, "created_at", None) if report is not None else None
    if stamp:
        try:
            return datetime.fromisoformat(str(stamp))
        except ValueError:
            pass
    key = next((k for k in sorted(run["metrics"]) if k.startswith(metric_keys.EVAL_PREFIX)), None)
    if key is None:
        return None
    hist = data.histories(uri, (run["run_id"],), (key,))
    if hist.empty:
        return None
    return datetime.fromtimestamp(int(hist["timestamp"].max()) / 1000, UTC)


def explained_at(index: schemas.ExplanationIndex | None) -> datetime | None:
    """When the shown explanation was made (``index.json``'s ``created_at``)."""
    return index.created_at if index is not None else None
