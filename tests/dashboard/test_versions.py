"""The registry writes of a choice: one choice at a time."""

import sys
import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput, ServiceUnavailable
from dashboard.choose import choose_run
from dashboard.versions import one_choice_at_a_time


def waiting_in(thread: threading.Thread, function: str, timeout: float = 120) -> bool:
    """Whether ``thread`` reaches ``function`` within ``timeout`` seconds (seen on its stack):
    a choice there waits for a turn that the test holds, so it has checked its run by then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident)
        while frame is not None:
            if frame.f_code.co_name == function:
                return True
            frame = frame.f_back
        time.sleep(0.05)
    return False


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
        assert waiting_in(chooser, "one_choice_at_a_time")  # it checked the run: waits
        time.sleep(0.5)  # a few tries of the lock
        assert not done.is_set()
        assert not settings.run_id_file.exists() and store.recent() == []
        assert not client.search_model_versions(f"name = '{settings.model_name}'")
    chooser.join(120)
    assert done.is_set()
    assert settings.run_id_file.read_text() == run_id + "\n"
    assert [r["run_id"] for r in store.recent()] == [run_id]


def test_a_choice_waits_for_one_on_another_machine_sharing_the_store(
    dashboard_runs, settings, store
):
    """A chooser elsewhere (the CLI on another machine, a dashboard on another volume) holds no
    lock file here: both were told their version while one moved the alias over the other."""
    run_id = dashboard_runs["pipeline"]
    elsewhere = settings.model_copy(update={"run_id_file": settings.run_id_file.parent / "b.txt"})
    done = threading.Event()
    with store.choice_turn(settings.model_name):  # a choice elsewhere, writing
        chooser = threading.Thread(
            target=lambda: (choose_run(run_id, "best", elsewhere, store), done.set())
        )
        chooser.start()
        assert waiting_in(chooser, "choice_turn")  # it checked the run: waits
        time.sleep(0.5)  # a few tries of the turn
        assert not done.is_set()
        assert not elsewhere.run_id_file.exists() and store.recent() == []
    chooser.join(120)
    assert done.is_set() and [r["run_id"] for r in store.recent()] == [run_id]


def test_a_choice_held_up_too_long_says_so_in_one_line(tmp_path):
    run_id_file = tmp_path / "run_id.txt"
    held = pytest.raises(ServiceUnavailable, match=r"another choice has been writing .*0 s")
    with one_choice_at_a_time(run_id_file), held, one_choice_at_a_time(run_id_file, wait_s=0.3):
        pass
    with one_choice_at_a_time(run_id_file, wait_s=0.3):  # released with its holder
        pass


def test_a_choice_whose_alias_moved_after_its_check_is_refused(
    dashboard_runs, settings, store, monkeypatch
):
    """Its interface check compared the run with no version chosen: another choice moved the
    alias right after (here, by hand, as the check returns), so the check does not hold for
    what it would replace."""
    from dashboard import choice_steps

    run_id, client = dashboard_runs["pipeline"], MlflowClient(settings.mlflow_tracking_uri)
    checked = choice_steps.interface_change

    def check_then_another_choice(*args, **kwargs):
        found = checked(*args, **kwargs)
        other = dashboard_runs["unicode"]
        client.create_registered_model(settings.model_name)
        version = client.create_model_version(settings.model_name, f"runs:/{other}/m", other)
        client.set_registered_model_alias(settings.model_name, "champion", version.version)
        return found

    monkeypatch.setattr(choice_steps, "interface_change", check_then_another_choice)
    with pytest.raises(InvalidInput) as refused:
        choose_run(run_id, "best", settings, store)
    said = str(refused.value)
    assert said.startswith(f"another choice moved {settings.model_name}@champion to version 1")
    assert "checked against no version; choose again" in said
    assert client.get_model_version_by_alias(settings.model_name, "champion").version == "1"
    assert len(client.search_model_versions(f"name = '{settings.model_name}'")) == 1
    assert not settings.run_id_file.exists() and store.recent() == []


def test_the_interface_check_compares_with_the_version_the_choice_would_replace(
    dashboard_runs, settings, store, monkeypatch
):
    """The alias names a version whose interface cannot be read (a change unknown: it needs a
    confirmation). Moved to a version of this very run while the check runs and moved back
    after, it must not pass the check: the check compares with the version read before it,
    the one that the choice then finds under the alias and replaces."""
    from dashboard import choice_steps

    run_id, client = dashboard_runs["pipeline"], MlflowClient(settings.mlflow_tracking_uri)
    name = settings.model_name
    client.create_registered_model(name)
    other = dashboard_runs["unicode"]  # no model: its interface cannot be read
    unreadable = client.create_model_version(name, f"runs:/{other}/m", other).version
    own = client.create_model_version(name, f"runs:/{run_id}/m", run_id).version
    client.set_registered_model_alias(name, "champion", unreadable)
    checked = choice_steps.interface_change

    def moved_and_back(*args, **kwargs):
        client.set_registered_model_alias(name, "champion", own)
        try:
            return checked(*args, **kwargs)
        finally:
            client.set_registered_model_alias(name, "champion", unreadable)

    monkeypatch.setattr(choice_steps, "interface_change", moved_and_back)
    with pytest.raises(InvalidInput) as refused:
        choose_run(run_id, "best", settings, store)
    said = str(refused.value)
    assert f"now names version {unreadable}" in said and "cannot be read" in said
    assert "--yes-interface-change" in said
    assert client.get_model_version_by_alias(name, "champion").version == unreadable
    assert not settings.run_id_file.exists() and store.recent() == []


def test_a_second_submission_of_the_same_choice_is_not_refused(
    dashboard_runs, settings, store, monkeypatch
):
    """A double press: the first submission chooses the run between the second's check and its
    lock. The alias moved since that check, to this very run's version: nothing changes for
    the clients, so the second stands, as choosing the chosen run again does."""
    from dashboard import choose

    run_id, first = dashboard_runs["pipeline"], []

    def first_submission_then_lock(path):
        if not first:
            first.append(None)  # the first submission takes the lock itself
            first[0] = choose_run(run_id, "best", settings, store)
        return one_choice_at_a_time(path)

    monkeypatch.setattr(choose, "one_choice_at_a_time", first_submission_then_lock)
    again = choose_run(run_id, "best", settings, store)
    assert (again.version, again.already) == (first[0].version, True)
