"""A served version whose run is deleted keeps serving (a cleanup must not take production down),
but ``/ready`` and every answer say in ``problem`` that its evaluation cannot be checked and how to
fix it, as ``dashboard.choose`` refuses to choose such a run; restoring the run clears it."""

import time
from collections.abc import Iterator

import pytest
from mlflow.tracking import MlflowClient

from dashboard.choose import choose_run
from predictor import ModelHolder
from predictor.answers import readiness
from tests.conftest import log_untrained_run
from tests.predictor.conftest import get_ready, post_images, wait_ready


@pytest.fixture(scope="session")
def _own_run(mlflow_server, demo_data) -> str:
    return log_untrained_run(mlflow_server, demo_data, seed=11)


@pytest.fixture
def deletable_run(mlflow_server, _own_run) -> Iterator[str]:
    """A servable run of its own, which a test may delete (restored after it)."""
    yield _own_run
    client = MlflowClient(mlflow_server)
    if client.get_run(_own_run).info.lifecycle_stage == "deleted":
        client.restore_run(_own_run)


def _problem(url: str, timeout: float = 30) -> dict:
    """The ``/ready`` answer once it has a ``problem``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = get_ready(url)
        if r.status_code == 200 and r.json()["problem"]:
            return r.json()
        time.sleep(0.2)
    raise AssertionError(f"/ready of {url} has no problem after {timeout}s: {r.text}")


def test_deleting_the_served_run_keeps_serving_and_says_so(
    predictor, settings, deletable_run, demo_data
):
    choose_run(deletable_run, "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    MlflowClient(settings.mlflow_tracking_uri).delete_run(deletable_run)

    ready = _problem(predictor)
    assert (ready["status"], ready["stale"], ready["version"]) == ("ready", False, "1")
    problem = ready["problem"]
    assert f"the run {deletable_run} of version 1 is deleted" in problem
    assert "evaluation of the model served cannot be checked" in problem
    assert f"mlflow runs restore --run-id {deletable_run}" in problem
    assert "python -m dashboard.choose" in problem
    image = sorted((demo_data / "test").rglob("*.png"))[0]
    r = post_images(predictor, [image])
    assert r.status_code == 200, r.text  # production keeps answering
    assert (r.json()["run_id"], r.json()["problem"]) == (deletable_run, problem)


def test_a_version_whose_run_is_deleted_is_reported_when_loaded(settings, deletable_run):
    choose_run(deletable_run, "serve it", settings, allow_unevaluated=True)
    MlflowClient(settings.mlflow_tracking_uri).delete_run(deletable_run)

    holder = ModelHolder(settings, record=False)  # a predictor that starts now
    assert holder.refresh()
    answer = readiness(holder.serving())
    assert (answer.version, answer.stale) == ("1", False)
    assert f"the run {deletable_run} of version 1 is deleted" in answer.problem


def test_restoring_the_run_clears_the_problem(settings, deletable_run):
    choose_run(deletable_run, "serve it", settings, allow_unevaluated=True)
    holder = ModelHolder(settings, record=False)
    assert holder.refresh()
    client = MlflowClient(settings.mlflow_tracking_uri)
    client.delete_run(deletable_run)
    holder.refresh()  # the next poll
    assert "is deleted" in readiness(holder.serving()).problem

    client.restore_run(deletable_run)
    holder.refresh()
    assert readiness(holder.serving()).problem is None
