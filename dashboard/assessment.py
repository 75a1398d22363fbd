"""Whether a run can be chosen for deployment: the checks ``dashboard.choose`` makes before it
registers anything, which the Choose model tab shows before anyone presses the button."""

from dataclasses import dataclass

import numpy as np
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from common import InvalidInput
from dashboard.handoff import evaluation_summary, is_evaluated
from runs import (
    MODEL_ARTIFACT,
    check_run_model,
    find_logged_model,
    load_classifier,
    model_gone,
    model_info,
    recorded_model,
    stopped_before_model,
)
from runs import servable_problem as format_problem


@dataclass(frozen=True)
class Assessment:
    """Whether a run can be chosen: ``problem`` says why not (None: it can)."""

    run_id: str
    problem: str | None
    evaluated: bool
    summary: str
    has_model: bool = False
    logged_model_id: str | None = None


def assess(client: MlflowClient, run: Run) -> Assessment:
    """Whether ``run`` can be chosen, without loading its model (a few MLflow calls)."""
    run_id = run.info.run_id
    evaluated = is_evaluated(run)
    summary = evaluation_summary(run.data.metrics)

    def no(problem: str, has_model: bool = True) -> Assessment:
        return Assessment(run_id, problem, evaluated, summary, has_model)

    try:
        logged = find_logged_model(client, run)
    except InvalidInput as exc:  # a marked run without a valid record of its model
        return no(str(exc), has_model=False)
    if logged is None and (recorded := recorded_model(run_id, run.data.params)):
        return no(model_gone(run_id, recorded[0]), has_model=False)  # deleted since
    if logged is None:
        return no(
            stopped_before_model(run)
            or f"it has no model logged as '{MODEL_ARTIFACT}' (only runs of `python -m trainer` "
            "have one)",
            has_model=False,
        )
    if run.info.status != "FINISHED":
        return no(f"the run ended with status {run.info.status}, not FINISHED")
    try:
        problem = format_problem(model_info(f"models:/{logged.model_id}"))  # the one chosen
    except InvalidInput as exc:
        problem = str(exc)
    if problem:
        return no(problem)
    return Assessment(run_id, None, evaluated, summary, True, logged.model_id)


def check_loads(model_uri: str, run: Run) -> tuple[str, str]:
    """Load and predict a blank image as the predictor will; the digest ``check_run_model``
    gave of its weights, and ``runs.files_digest`` of the files they were loaded from. Files
    other than those the run's training logged (its param ``files_digest``; runs trained before
    it record none) are refused before they are read: loading unpickles, which runs code here,
    where choices are signed."""
    recorded = recorded_model(run.info.run_id, run.data.params)
    classifier = load_classifier(model_uri, recorded[1] if recorded else None)
    height, width = classifier.image_size
    try:
        classifier.predict(None, np.zeros((1, height, width, classifier.channels), np.uint8))
    except Exception as exc:
        raise InvalidInput(f"the model at {model_uri} fails to predict ({exc})") from exc
    return check_run_model(classifier, run.info.run_id, run.data.params), classifier.files_digest
