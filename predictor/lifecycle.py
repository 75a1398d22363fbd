"""Whether the run of a served version still stands: a deleted run's evaluation cannot be checked.

Deleting a run in MLflow does not remove the registered version made of its model, which still
loads; the predictor keeps serving it (taking production down for a cleanup would be worse), but
says so in ``problem``, as ``dashboard.choose`` refuses to choose such a run.
"""

from mlflow.entities import LifecycleStage
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

_CHOOSE = "python -m dashboard.choose RUN_ID --reason TEXT (or the dashboard)"


def run_problem(client: MlflowClient, version: str, run_id: str | None, run=None) -> str | None:
    """What is wrong with the run of ``version`` (deleted, or purged since), with how to fix it;
    None when it stands, or the version names no run. One ``get_run``, unless given ``run``
    (fetched already).

    Raises:
        MlflowException, OSError: MLflow failed to answer (whether the run stands is unknown).
    """
    if run_id is None:
        return None
    try:
        run = run or client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        # deleted, then removed for good (`mlflow gc`): nothing to restore
        state, fix = "no longer exists", f"choose another model: {_CHOOSE}"
    else:
        if run.info.lifecycle_stage != LifecycleStage.DELETED:
            return None
        state = "is deleted"
        fix = (
            f"restore the run (mlflow runs restore --run-id {run_id}, or the MLflow UI) or "
            f"choose another model: {_CHOOSE}"
        )
    return (
        f"the run {run_id} of version {version} {state} on the tracking server, so the "
        f"evaluation of the model served cannot be checked (it still serves); {fix}"
    )
