"""The registry writes of a choice: one choice at a time."""

import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput, ServiceUnavailable
from dashboard.choose import choose_run
from dashboard.versions import one_choice_at_a_time


def test_a_choice_waits_for_another_choice_in_progress(dashboard_runs, settings, store):
    """Two choices interleaving their alias move, run_id.txt and record would leave them naming
    different runs: the second waits until the first has written all three."""
    run_id, client = dashboard_runs["pipeline"], MlflowClient(settings.mlflow_tracking_uri)
    done = threading.Event()
    with one_choice_at_a_time(settings.run_id_file):  # another choice, writing
        chooser = threading.Thread(
            target=lambda: (choose_run(run_id, "best", settings, store), done.set())
        )
        chooser.start()
        assert not done.wait(10)  # it checked the run, then waits for the lock
        assert not settings.run_id_file.exists() and store.recent() == []
        assert not client.search_model_versions(f"name = '{settings.model_name}'")
    chooser.join(120)
    assert done.is_set()
    assert settings.run_id_file.read_text() == run_id + "\n"
    assert [r["run_id"] for r in store.recent()] == [run_id]


def test_a_choice_held_up_too_long_says_so_in_one_line(tmp_path):
    run_id_file = tmp_path / "run_id.txt"
    held = pytest.raises(ServiceUnavailable, match=r"another choice has been writing .*0 s")
    with one_choice_at_a_time(run_id_file), held, one_choice_at_a_time(run_id_file, wait_s=0.3):
        pass
    with one_choice_at_a_time(run_id_file, wait_s=0.3):  # released with its holder
        pass


def test_a_choice_whose_alias_moved_while_it_waited_is_refused(dashboard_runs, settings, store):
    """Its interface check compared the run with the version chosen before: another choice
    moved the alias meanwhile, so the check does not hold for what it would replace."""
    run_id, client = dashboard_runs["pipeline"], MlflowClient(settings.mlflow_tracking_uri)
    found = []

    def choose() -> None:
        try:
            choose_run(run_id, "best", settings, store)
        except InvalidInput as exc:
            found.append(str(exc))

    with one_choice_at_a_time(settings.run_id_file):
        chooser = threading.Thread(target=choose)
        chooser.start()
        time.sleep(10)  # it checked the run against no version, then waits for the lock
        other = dashboard_runs["unicode"]  # another choice, by hand: a version and the alias
        client.create_registered_model(settings.model_name)
        version = client.create_model_version(settings.model_name, f"runs:/{other}/m", other)
        client.set_registered_model_alias(settings.model_name, "champion", version.version)
    chooser.join(120)
    assert found and found[0].startswith(f"another choice moved {settings.model_name}@champion")
    assert "to version 1 while run" in found[0] and "against no version" in found[0]
    assert not settings.run_id_file.exists() and store.recent() == []
