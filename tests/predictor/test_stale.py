"""When the alias stops naming the served version (removed, or moved to a version that does not
load), the predictor keeps serving the last good model but says so on ``/ready`` and in every
``/predict`` answer; once the alias names a servable version again, that clears."""

import time

import requests
from mlflow.tracking import MlflowClient

from dashboard.choose import choose_run
from predictor import ModelHolder
from tests.predictor.conftest import get_ready, post_images, wait_ready


def wait_for(url: str, stale: bool, timeout: float = 30) -> dict:
    """The ``/ready`` answer once its ``stale`` is ``stale``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = get_ready(url)
        if r.status_code == 200 and r.json().get("stale") is stale:
            return r.json()
        time.sleep(0.2)
    raise AssertionError(f"/ready of {url} not stale={stale} after {timeout}s: {r.text}")


def test_removed_alias_keeps_serving_the_last_version_and_says_so(
    predictor, settings, served_runs, demo_data
):
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    ready = wait_ready(predictor, "1")
    assert (ready["status"], ready["stale"], ready["problem"]) == ("ready", False, None)
    image = sorted((demo_data / "test").rglob("*.png"))[0]
    body = post_images(predictor, [image]).json()
    assert (body["stale"], body["problem"]) == (False, None)

    client = MlflowClient(settings.mlflow_tracking_uri)
    client.delete_registered_model_alias(settings.model_name, settings.model_alias)
    ready = wait_for(predictor, stale=True)
    assert (ready["status"], ready["version"]) == ("stale", "1")
    assert "no longer names the served version 1" in ready["problem"]
    assert f"no version of {settings.model_name} has the alias 'champion'" in ready["problem"]
    r = post_images(predictor, [image])
    assert r.status_code == 200, r.text  # the last good model keeps answering
    body = r.json()
    assert (body["version"], body["stale"], body["problem"]) == ("1", True, ready["problem"])
    assert requests.get(f"{predictor}/health", timeout=10).status_code == 200

    client.set_registered_model_alias(settings.model_name, settings.model_alias, "1")
    ready = wait_for(predictor, stale=False)
    assert (ready["status"], ready["version"], ready["problem"]) == ("ready", "1", None)


def test_alias_moved_to_a_version_that_does_not_load_is_stale(predictor, settings, served_runs,
                                                              demo_data):  # fmt: skip
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    client = MlflowClient(settings.mlflow_tracking_uri)
    run = client.get_run(served_runs[1])
    # The run's artifact root holds preprocessing.json and model/, but no MLmodel of its own.
    broken = client.create_model_version(
        settings.model_name, run.info.artifact_uri, run_id=served_runs[1]
    )
    client.set_registered_model_alias(settings.model_name, settings.model_alias, broken.version)
    ready = wait_for(predictor, stale=True)
    assert (ready["status"], ready["version"]) == ("stale", "1")
    assert f"version {broken.version}" in ready["problem"]
    assert "no longer names the served version 1" in ready["problem"]
    image = sorted((demo_data / "test").rglob("*.png"))[0]
    body = post_images(predictor, [image]).json()
    assert (body["version"], body["stale"]) == ("1", True)
    assert f"version {broken.version}" in body["problem"]

    choose_run(served_runs[1], "a servable one", settings, allow_unevaluated=True)
    ready = wait_for(predictor, stale=False)
    assert ready["version"] == str(int(broken.version) + 1) and ready["problem"] is None


def test_mlflow_down_is_a_problem_but_not_stale(settings, served_runs, unreachable_uri):
    holder = ModelHolder(settings)
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    assert holder.refresh()
    holder.settings = settings.model_copy(update={"mlflow_tracking_uri": unreachable_uri})
    assert not holder.refresh()
    served = holder.serving()  # the alias may still name it: not known to be stale
    assert (served.version, served.stale) == ("1", False)
    assert "could not check that the alias still names version 1" in served.problem
    assert unreachable_uri in served.problem
    holder.settings = settings
    assert not holder.refresh()
    assert (holder.serving().stale, holder.serving().problem) == (False, None)
