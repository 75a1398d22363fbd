"""A restart keeps the interface guard: what the predictors of an alias serve is recorded on the
registered model, and a predictor that starts compares the version the alias names with it, as
a running one compares with the version it holds."""

import time

import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient

from common import InvalidInput
from dashboard.choose import choose_run
from predictor import ModelHolder
from predictor.app import create_app
from runs import load_classifier, read_served
from tests.conftest import LiveServer
from tests.predictor.conftest import get_ready, move_alias_by_hand, serve_three_classes, wait_ready
from tests.predictor.test_stale import wait_for


def _recorded(settings, version: str | None = None, timeout: float = 10):
    """The record once written (of ``version``, when given; else as last read): the predictor
    answers /ready as soon as it swaps the model in, and records it right after."""
    deadline = time.monotonic() + timeout
    while True:
        model = MlflowClient(settings.mlflow_tracking_uri).get_registered_model(settings.model_name)
        record = read_served(model.tags, settings.model_alias)
        if (record and version in (None, record.version)) or time.monotonic() > deadline:
            return record
        time.sleep(0.1)


def test_the_served_version_is_recorded_on_the_registered_model(predictor, settings, served_runs):
    serve_three_classes(predictor, settings, served_runs)
    record = _recorded(settings)
    assert (record.version, record.run_id) == ("1", served_runs[0])
    assert len(record.interface.classes) == 3


def test_a_restart_after_the_alias_moved_to_other_classes_unconfirmed_serves_the_last_version(
    settings, served_runs, other_classes_run
):
    with LiveServer(create_app(settings)) as first:
        serve_three_classes(first.url, settings, served_runs)
    moved = move_alias_by_hand(settings, other_classes_run)  # while no predictor runs

    with LiveServer(create_app(settings)) as second:
        ready = wait_for(second.url, stale=True)
    assert ready["version"] == "1"  # its clients keep their three classes
    assert (
        f"names version {moved}, which changes what clients of version 1 receive (classes"
        in (ready["problem"])
    )


def test_a_restart_serves_a_change_chosen_as_such_while_it_was_down(
    settings, served_runs, other_classes_runs
):
    with LiveServer(create_app(settings)) as first:
        serve_three_classes(first.url, settings, served_runs)
    move_alias_by_hand(settings, other_classes_runs[0])  # two classes, by hand: unconfirmed
    # Against the alias's version nothing changes; against what the predictors last served
    # (three classes) the classes do, and the choice says so, without a predictor to ask.
    with pytest.raises(InvalidInput, match=r"last served version 1 .*classes"):
        choose_run(other_classes_runs[1], "two classes", settings, allow_unevaluated=True)
    chosen = choose_run(other_classes_runs[1], "two classes", settings, allow_unevaluated=True,
                        allow_interface_change=True)  # fmt: skip

    with LiveServer(create_app(settings)) as second:
        ready = wait_ready(second.url, chosen.version)
    assert (ready["stale"], ready["problem"]) == (False, None)
    assert _recorded(settings, chosen.version).version == chosen.version


def test_a_restart_serves_nothing_when_the_last_version_is_gone_and_the_change_unconfirmed(
    settings, served_runs, other_classes_run
):
    with LiveServer(create_app(settings)) as first:
        serve_three_classes(first.url, settings, served_runs)
    move_alias_by_hand(settings, other_classes_run)
    MlflowClient(settings.mlflow_tracking_uri).delete_model_version(settings.model_name, "1")

    with LiveServer(create_app(settings)) as second:
        r = _wait_status(second.url, 503)
    assert "version 1, served before, cannot be served either" in r.json()["detail"]
    assert "which changes what clients of version 1 receive (classes" in r.json()["detail"]


def _served_then_stopped(settings, served_runs) -> MlflowClient:
    """Version 1 served by a predictor, recorded, and that predictor stopped; a client."""
    with LiveServer(create_app(settings)) as first:
        serve_three_classes(first.url, settings, served_runs)
    assert _recorded(settings, "1").version == "1"
    return MlflowClient(settings.mlflow_tracking_uri)


def test_a_restart_after_the_alias_was_removed_serves_the_last_version(settings, served_runs):
    client = _served_then_stopped(settings, served_runs)
    client.delete_registered_model_alias(settings.model_name, settings.model_alias)

    with LiveServer(create_app(settings)) as second:
        ready = wait_for(second.url, stale=True)  # not a 503: the running replicas serve it
    assert (ready["status"], ready["version"]) == ("stale", "1")
    assert "no longer names the served version 1" in ready["problem"]
    assert f"{settings.model_name} has the alias 'champion' any more" in ready["problem"]


def test_a_restart_after_the_alias_moved_to_a_version_that_does_not_load_serves_the_last_version(
    settings, served_runs
):
    client = _served_then_stopped(settings, served_runs)
    run = client.get_run(served_runs[1])
    # The run's artifact root holds preprocessing.json and model/, but no MLmodel of its own.
    broken = client.create_model_version(
        settings.model_name, run.info.artifact_uri, run_id=served_runs[1]
    )
    client.set_registered_model_alias(settings.model_name, settings.model_alias, broken.version)

    with LiveServer(create_app(settings)) as second:
        ready = wait_for(second.url, stale=True)
    assert (ready["status"], ready["version"]) == ("stale", "1")
    assert f"names version {broken.version}, which cannot be served" in ready["problem"]


def test_a_restart_serves_nothing_when_the_alias_and_the_last_version_are_gone(
    settings, served_runs
):
    client = _served_then_stopped(settings, served_runs)
    client.delete_model_version(settings.model_name, "1")  # its alias goes with it

    with LiveServer(create_app(settings)) as second:
        r = _wait_status(second.url, 503)
    detail = r.json()["detail"]
    assert f"{settings.model_name} has the alias 'champion' any more" in detail
    assert "version 1, served before, cannot be served either" in detail


def _load(settings, uri: str, files: str | None):
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    return load_classifier(uri, files)


def _restarted_after_a_move(settings, served_runs, other_classes_run, loader) -> ModelHolder:
    """A predictor's holder (loading with ``loader``) started after version 1 of three classes
    was served and the alias was moved by hand to a version of two."""
    with LiveServer(create_app(settings)) as first:
        serve_three_classes(first.url, settings, served_runs)
    move_alias_by_hand(settings, other_classes_run)
    return ModelHolder(settings, loader=loader)


def test_a_last_version_that_failed_to_load_once_is_loaded_at_the_next_poll(
    settings, served_runs, other_classes_run
):
    failures = []

    def flaky(uri: str, files: str | None):  # the artifact store times out once, for version 1
        if uri.endswith("/1") and not failures:
            failures.append(uri)
            raise OSError("the artifact store timed out")
        return _load(settings, uri, files)

    holder = _restarted_after_a_move(settings, served_runs, other_classes_run, flaky)
    holder.refresh()
    assert holder.current is None and "cannot be served either" in holder.problem
    time.sleep(settings.predictor_poll_s)  # the next poll, not the next 2 s look
    holder.refresh()
    assert (holder.current.version, holder.current.stale) == ("1", True)


def test_a_last_version_that_fails_to_load_is_not_downloaded_again_at_every_look(
    settings, served_runs, other_classes_run
):
    tries = []

    def broken(uri: str, files: str | None):  # version 1's files are gone from the artifact store
        if uri.endswith("/1"):
            tries.append(uri)
            raise OSError("no such artifact")
        return _load(settings, uri, files)

    slow = settings.model_copy(update={"predictor_poll_s": 60})
    holder = _restarted_after_a_move(slow, served_runs, other_classes_run, broken)
    for _ in range(3):  # three 2 s looks of a predictor that holds nothing
        holder.refresh()
    assert len(tries) == 1 and "cannot be served either" in holder.problem


def _wait_status(url: str, status: int, timeout: float = 30) -> requests.Response:
    """The ``/ready`` answer once the predictor has looked at the alias and answers ``status``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = get_ready(url)
        if r.status_code == status and "still looking up" not in r.text:
            return r
        time.sleep(0.2)
    raise AssertionError(f"/ready of {url} not {status} after {timeout}s: {r.text}")
