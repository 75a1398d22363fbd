"""Which of a run's MLflow LoggedModels is the model it was trained for.

``log_classifier`` records, at the first model it logs into a run, that model's id
(``LOGGED_MODEL_KEY``) and the digest of its files (``runs.FILES_KEY``) as write-once params: a
model logged into the run later (by hand, by whoever can write to MLflow) cannot take its place
for a choice, and files changed in the artifact store since are refused before they are read.
"""

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from common import ServiceUnavailable
from runs.tracking import MODEL_ARTIFACT

LOGGED_MODEL_KEY = "logged_model_id"
"""The run param naming the LoggedModel its training logged (the first; write-once)."""


def find_logged_model(client: MlflowClient, run: Run):
    """The run's MLflow LoggedModel named ``model``: the one its training logged (its param
    ``logged_model_id``), else (runs trained before the param) the one MLflow lists first;
    None when there is none.

    Raises:
        ServiceUnavailable: MLflow failed to answer.
    """
    run_id = run.info.run_id
    try:
        if model_id := run.data.params.get(LOGGED_MODEL_KEY):
            found = [client.get_logged_model(model_id)]  # of this run, as its name (below)
            found = [m for m in found if (m.source_run_id, m.name) == (run_id, MODEL_ARTIFACT)]
        else:
            found = client.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL_ARTIFACT}'",
                max_results=1,
            )
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return None  # its recorded model deleted
        message = f"MLflow failed to list the models of run {run_id}: {exc}"
        raise ServiceUnavailable(message) from exc
    return found[0] if found else None
