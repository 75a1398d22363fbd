"""Which of a run's MLflow LoggedModels is the model it was trained for, and its files.

The trainer marks each run it starts (param ``model_records``) and ``log_classifier`` records,
once the model is logged, which model that was and the digest of its files as stored (param
``logged_model``: ``"<LoggedModel id> <files digest>"``). Params are write-once: a model logged
into the run later cannot take its place, and files changed in the artifact store since are
refused before they are read (``runs.packaging``). A marked run without the record (its training
ended first, or the record is malformed) is refused, never loaded unchecked; only runs trained
before the marker (2026-12-07) load what MLflow finds.

The records are first-writer-wins and unauthenticated: they guard a run from changes made after
its trainer wrote them, not from a writer who gets there first (the trainer then refuses the run).
"""

import re
from collections.abc import Mapping

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from common import InvalidInput, ServiceUnavailable
from runs.tracking import MODEL_ARTIFACT

RECORDS_KEY = "model_records"
"""The param the trainer logs as a run starts (``RECORDS``): its model will be recorded."""
RECORDS = "v1"
MODEL_RECORD_KEY = "logged_model"
"""The param recording the model its training logged: its id and files' digest."""
_RECORD = re.compile(r"(m-[0-9a-f]{32}) ([0-9a-f]{64})")


def model_record(model_id: str, files: str) -> str:
    """The ``logged_model`` param of the model ``model_id`` with files of digest ``files``."""
    return f"{model_id} {files}"


def recorded_model(run_id: str, params: Mapping[str, str]) -> tuple[str, str] | None:
    """The (LoggedModel id, files' digest) run ``run_id`` records; None for a run trained
    before the records (no marker, no record).

    Raises:
        InvalidInput: A marked run without the record, or a record of another form.
    """
    record = params.get(MODEL_RECORD_KEY)
    if record is None and RECORDS_KEY not in params:
        return None
    if record is None:
        raise InvalidInput(
            f"run {run_id} records no model (param {MODEL_RECORD_KEY}): its training ended "
            "before it logged one; resume it (python -m trainer --resume auto) or train again"
        )
    if not (found := _RECORD.fullmatch(record)):
        raise InvalidInput(
            f"run {run_id}'s param {MODEL_RECORD_KEY} is not a record of this pipeline "
            f"({record[:80]!r}): set by someone else; do not use this run, train a new one"
        )
    return found[1], found[2]


def model_gone(run_id: str, model_id: str) -> str:
    """Words for run ``run_id`` whose recorded model ``model_id`` is gone (``find_logged_model``
    found none): what is wrong and how to go on; never another model of the run in its place."""
    return (
        f"the model {model_id} its training logged (param {MODEL_RECORD_KEY}) is gone: deleted "
        f"from MLflow (or not a model of this run), and no other model of run {run_id} is used "
        f"in its place; train the run again (python -m trainer --from-run {run_id}) and use "
        "the new run, or restore the model in MLflow (its tracking database from a backup made "
        "before the deletion)"
    )


def find_logged_model(client: MlflowClient, run: Run):
    """The run's MLflow LoggedModel named ``model``: the one its training logged
    (``recorded_model``), else (runs trained before the record) the one MLflow lists first;
    None when there is none, or the recorded one is gone or not of this run.

    Raises:
        InvalidInput: A marked run without a valid record (``recorded_model``).
        ServiceUnavailable: MLflow failed to answer.
    """
    run_id = run.info.run_id
    recorded = recorded_model(run_id, run.data.params)
    try:
        if recorded:
            found = [client.get_logged_model(recorded[0])]  # of this run, as its name (below)
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
