"""``JobService`` with a full queue (toy service over real HTTP): a new submission is refused
before its request check runs, and a repeat of an existing job still gets that job."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from jobs import JobStore, get_database
from tests.conftest import LiveServer
from tests.jobs.conftest import CHECKED, make_settings, make_toy_app


@pytest.fixture
def one_place_queue(tmp_path) -> Iterator[tuple[str, JobStore]]:
    """A toy service whose queue holds one job (``MAX_QUEUED_JOBS=1``), and its store."""
    settings = make_settings(tmp_path, max_queued_jobs=1)
    with LiveServer(make_toy_app(settings)) as live:
        yield live.url, JobStore(get_database(settings))


def fill(store: JobStore) -> None:
    """Queue a toy job that no runner claims while the test runs: the queue is full."""
    later = datetime.now(UTC) + timedelta(hours=1)
    store.submit("toy", "f0", {"x": 9, "sleep": 0})
    store.col.update_one({"run_id": "f0"}, {"$set": {"not_before": later}})


def test_a_full_queue_refuses_a_new_job_before_its_check_runs(one_place_queue):
    url, store = one_place_queue
    fill(store)
    CHECKED.clear()
    answer = requests.post(f"{url}/toy", json={"run_id": "b1", "x": 3})
    assert answer.status_code == 429 and "queue is full" in answer.json()["detail"]
    assert CHECKED == []  # the request's check (MLflow, data) was spared


def test_a_full_queue_still_answers_a_repeat_of_a_finished_job_with_it(one_place_queue):
    url, store = one_place_queue
    done = requests.post(f"{url}/toy?wait=60", json={"run_id": "b2", "x": 2}).json()
    assert done["status"] == "succeeded"
    fill(store)
    again = requests.post(f"{url}/toy", json={"run_id": "b2", "x": 2})
    assert again.status_code == 200
    assert again.json()["job_id"] == done["job_id"] and again.json()["reused"]


def test_a_forced_repeat_of_a_finished_job_on_a_full_queue_is_refused_before_its_check(
    one_place_queue,
):
    url, store = one_place_queue
    body = {"run_id": "b3", "x": 2}
    assert requests.post(f"{url}/toy?wait=60", json=body).json()["status"] == "succeeded"
    fill(store)
    CHECKED.clear()
    # force runs the job again: a new job, which the full queue has no room for.
    answer = requests.post(f"{url}/toy", json={**body, "force": True})
    assert answer.status_code == 429
    assert CHECKED == []


def test_another_body_for_a_run_with_a_job_is_refused_before_its_check(one_place_queue):
    url, store = one_place_queue
    assert requests.post(f"{url}/toy?wait=60", json={"run_id": "b4", "x": 2}).status_code == 200
    fill(store)
    CHECKED.clear()
    answer = requests.post(f"{url}/toy", json={"run_id": "b4", "x": 3})
    assert answer.status_code == 429
    assert CHECKED == []
