"""The shared job service over real HTTP (uvicorn on a free port) with a toy handler."""

import gc
import re
import time
from datetime import timedelta

import pytest
import requests
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from common import utcnow
from jobs import JobStore, RunId, create_job_app, get_database, submission_responses
from service.intake import HealthFastPath
from tests.conftest import LiveServer, unreachable_mongo
from tests.jobs.conftest import make_settings, make_toy_app, toy_handler, toy_router, wait_until

TOKEN = "toy-test-token-0123456789abcdef"


def poll(url: str, until: set[str], timeout: float = 30, **kwargs) -> list[dict]:
    """GET ``url`` until the job's status is in ``until``; every distinct answer, in order."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(url, timeout=10, **kwargs).json()
        if not seen or seen[-1]["status"] != job["status"]:
            seen.append(job)
        if job["status"] in until:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"job never reached {until}: {seen}")


def test_job_goes_from_queued_through_running_to_succeeded(toy_server):
    answer = requests.post(f"{toy_server}/toy", json={"run_id": "r1", "x": 2, "sleep": 0.5})
    assert answer.status_code == 202
    job = answer.json()
    assert job["status"] == "queued" and job["url"] == f"/jobs/{job['job_id']}"
    seen = poll(toy_server + job["url"], {"succeeded", "failed"})
    assert "running" in [j["status"] for j in seen]
    assert seen[-1]["status"] == "succeeded" and seen[-1]["result"] == {"y": 4, "inverse": 0.5}


def test_wait_answers_200_with_the_finished_job(toy_server):
    answer = requests.post(f"{toy_server}/toy?wait=30", json={"run_id": "r1", "x": 4})
    assert answer.status_code == 200
    assert answer.json()["status"] == "succeeded" and answer.json()["result"]["y"] == 8


def test_wait_shorter_than_the_job_answers_202(toy_server):
    body = {"run_id": "r1", "x": 1, "sleep": 1.5}
    answer = requests.post(f"{toy_server}/toy?wait=0.2", json=body)
    assert answer.status_code == 202 and answer.json()["status"] in ("queued", "running")


def test_users_mistake_fails_the_job_with_its_message(toy_server):
    answer = requests.post(f"{toy_server}/toy?wait=30", json={"run_id": "r1", "x": -3})
    job = answer.json()
    assert answer.status_code == 200 and job["status"] == "failed"
    assert job["error"] == "x must not be negative, got -3"


def test_handler_bug_fails_the_job_as_internal_error(toy_server):
    job = requests.post(f"{toy_server}/toy?wait=30", json={"run_id": "r1", "x": 0}).json()
    assert job["error"] == "internal error: ZeroDivisionError: division by zero"


def test_same_inputs_reuse_the_result_and_force_runs_again(toy_server):
    body = {"run_id": "r1", "x": 5}
    first = requests.post(f"{toy_server}/toy?wait=30", json=body).json()
    again = requests.post(f"{toy_server}/toy", json=body)
    assert again.status_code == 200
    assert again.json()["reused"] and again.json()["job_id"] == first["job_id"]
    forced = requests.post(f"{toy_server}/toy?wait=30", json={**body, "force": True}).json()
    assert not forced["reused"] and forced["job_id"] != first["job_id"]
    assert forced["status"] == "succeeded"


def test_a_repeat_while_the_job_runs_gets_it_without_a_second_check(toy_server):
    """Clients that poll by resubmitting cost one store read, not the request's checks."""
    from tests.jobs.conftest import CHECKED

    CHECKED.clear()
    body = {"run_id": "repeat", "x": 1, "sleep": 1.0}
    first = requests.post(f"{toy_server}/toy", json=body, timeout=30).json()
    again = requests.post(f"{toy_server}/toy", json={**body, "force": True}, timeout=30).json()
    assert again["job_id"] == first["job_id"] and again["reused"]
    assert again["status"] in ("queued", "running") and len(CHECKED) == 1
    poll(f"{toy_server}{first['url']}", {"succeeded"})
    # Once the job is done a repeat is checked again before its result is reused.
    done = requests.post(f"{toy_server}/toy", json=body, timeout=30).json()
    assert done["job_id"] == first["job_id"] and done["status"] == "succeeded"
    assert len(CHECKED) == 2


def test_jobs_of_a_run_are_listed_newest_first(toy_server):
    ids = [
        requests.post(f"{toy_server}/toy", json={"run_id": run, "x": x}).json()["job_id"]
        for run, x in (("a", 1), ("b", 1), ("a", 2))
    ]
    listed = requests.get(f"{toy_server}/jobs", params={"run_id": "a"}).json()
    assert [j["job_id"] for j in listed] == [ids[2], ids[0]]


def test_a_damaged_job_record_is_left_out_of_listings_and_named_when_asked_for(
    toy_server, embedded_settings
):
    ids = [requests.post(f"{toy_server}/toy", json={"run_id": "a", "x": x}).json()["job_id"]
           for x in (1, 2)]  # fmt: skip
    JobStore(get_database(embedded_settings)).col.update_one(
        {"_id": ids[0]},
        {"$set": {"status": "weird"}},  # edited by hand, or another version's
    )
    listed = requests.get(f"{toy_server}/jobs", params={"run_id": "a"})
    assert listed.status_code == 200 and [j["job_id"] for j in listed.json()] == [ids[1]]
    answer = requests.get(f"{toy_server}/jobs/{ids[0]}")
    assert answer.status_code == 409
    assert f"record of job {ids[0]} is damaged (status:" in answer.json()["detail"]


def test_cancelling_a_damaged_queued_record_says_it_is_cancelled(toy_server, embedded_settings):
    from datetime import UTC, datetime, timedelta

    store = JobStore(get_database(embedded_settings))
    later = datetime.now(UTC) + timedelta(hours=1)  # not claimed while the test runs
    store.col.insert_one({"_id": "damaged-1", "job_id": "damaged-1", "kind": "toy",
                          "status": "queued", "not_before": later})  # fmt: skip
    answer = requests.delete(f"{toy_server}/jobs/damaged-1")
    assert answer.status_code == 409
    assert answer.json()["detail"].startswith("job damaged-1 is cancelled; the job store's record")
    assert store.col.find_one({"_id": "damaged-1"})["status"] == "cancelled"


def test_a_listing_for_a_malformed_run_id_says_what_a_run_id_is_not_a_pattern(toy_server):
    answer = requests.get(f"{toy_server}/jobs", params={"run_id": "zzz"})
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == ["query", "run_id"] and "pattern" not in error["msg"]
    assert "run_id must be an MLflow run id of hex digits" in error["msg"]


def test_listings_page_with_before(toy_server):
    ids = [requests.post(f"{toy_server}/toy", json={"run_id": "c", "x": x}).json()["job_id"]
           for x in (1, 2, 3)]  # fmt: skip
    first = requests.get(f"{toy_server}/jobs", params={"run_id": "c", "limit": 2}).json()
    assert [j["job_id"] for j in first] == ids[:0:-1]
    page = {"run_id": "c", "limit": 2, "before": first[-1]["job_id"]}
    assert [j["job_id"] for j in requests.get(f"{toy_server}/jobs", params=page).json()] == ids[:1]


def test_another_services_job_is_not_found_here(toy_server, embedded_settings):
    store = JobStore(get_database(embedded_settings))  # services may share one store
    other, _ = store.submit("explain", "ab12", {})
    answer = requests.get(f"{toy_server}/jobs/{other['job_id']}")
    assert answer.status_code == 404 and "is a 'explain' job" in answer.json()["detail"]
    assert requests.delete(f"{toy_server}/jobs/{other['job_id']}").status_code == 404
    assert store.get(other["job_id"])["status"] == "queued"  # not cancelled from here
    page = requests.get(f"{toy_server}/jobs", params={"before": other["job_id"]})
    assert page.status_code == 404


def test_unknown_job_is_404_with_a_message(toy_server):
    answer = requests.get(f"{toy_server}/jobs/0123abc")
    assert answer.status_code == 404 and "'0123abc' does not exist" in answer.json()["detail"]
    long = requests.get(f"{toy_server}/jobs/{'a' * 5000}")
    assert long.status_code == 404 and len(long.json()["detail"]) < 300  # not echoed whole


def test_listing_by_a_run_id_that_is_not_one_is_422(toy_server):
    answer = requests.get(f"{toy_server}/jobs", params={"run_id": "zz"})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "run_id"]


def test_malformed_body_is_422(toy_server):
    answer = requests.post(f"{toy_server}/toy", json={"run_id": "r1", "x": "many"})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "x"]


def test_wait_out_of_range_is_422(toy_server):
    answer = requests.post(f"{toy_server}/toy?wait=-1", json={"run_id": "r1", "x": 1})
    assert answer.status_code == 422


@pytest.mark.parametrize("wait", ["nan", "inf", "soon"])
def test_wait_that_is_no_number_of_seconds_is_422_saying_what_it_takes(toy_server, wait):
    answer = requests.get(f"{toy_server}/jobs/some-job?wait={wait}")
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert "wait must be a number of seconds from 0 to 600" in error["msg"]


def test_bug_in_a_route_is_a_generic_500_and_the_service_keeps_serving(toy_server):
    answer = requests.get(f"{toy_server}/boom")
    assert answer.status_code == 500
    assert re.fullmatch(
        r"internal error \(RuntimeError, error id [0-9a-f]{12}\); the service logged it under "
        r"that id and keeps serving\.",
        answer.json()["detail"],
    )
    assert requests.get(f"{toy_server}/health").json() == {"status": "ok"}


def test_a_bug_is_logged_once_under_the_error_id_its_answer_names(toy_server, caplog):
    answer = requests.get(f"{toy_server}/boom")
    error_id = re.search(r"error id ([0-9a-f]{12})", answer.json()["detail"]).group(1)
    [record] = [r for r in caplog.records if r.exc_info]  # not again by the server
    assert record.getMessage() == f"unexpected error {error_id} on GET /boom"
    assert record.levelname == "ERROR" and record.exc_info[0] is RuntimeError


def test_health_fast_path_answers_as_the_route_does(toy_server):
    answer = requests.get(f"{toy_server}/health")
    assert answer.status_code == 200
    assert answer.content == HealthFastPath.BODY == JSONResponse({"status": "ok"}).body
    assert answer.headers["content-type"] == "application/json"
    # Only GET /health takes the short cut: anything else is routed as before.
    assert requests.post(f"{toy_server}/health").status_code == 405


def test_warm_up_runs_before_serving_and_its_failure_is_not_fatal(tmp_path):
    calls = []

    def failing() -> None:
        calls.append(time.monotonic())
        raise ImportError("a module the checks need is missing")

    settings = make_settings(tmp_path)
    app = create_job_app("toy", "Toy", toy_router, toy_handler, settings, None, failing)
    with LiveServer(app) as live:
        served = time.monotonic()
        health = requests.get(f"{live.url}/health")
    assert len(calls) == 1 and calls[0] < served
    assert health.status_code == 200


def test_start_up_objects_are_frozen_before_serving(embedded_settings):
    """Full collections of a torch-sized heap stalled every request ~0.5 s (common.heap)."""
    gc.unfreeze()  # what earlier tests froze (an autouse fixture unfreezes after each test)
    with LiveServer(make_toy_app(embedded_settings)) as live:
        frozen = gc.get_freeze_count()
        assert requests.get(f"{live.url}/health").status_code == 200
    assert frozen > 1000


def test_ready_when_mlflow_and_store_answer(toy_server):
    # A fresh SQLite tracking store builds its tables at the first request: on a busy machine
    # longer than the readiness check's 3.5 s, so the first answers may be 503 (not ready yet).
    answer = wait_until(
        lambda: (a := requests.get(f"{toy_server}/ready")).status_code == 200 and a,
        60,
        "a 200 from /ready",
    )
    assert answer.json()["store"] == "embedded"


def test_ready_shows_the_tracking_server_without_its_credentials(tmp_path, mlflow_server):
    with_password = mlflow_server.replace("http://", "http://auditor:s3cretPW@")
    settings = make_settings(tmp_path, mlflow_tracking_uri=with_password)
    with LiveServer(make_toy_app(settings)) as live:
        answer = requests.get(f"{live.url}/ready")
    assert answer.status_code == 200
    assert answer.json()["mlflow"] == mlflow_server.replace("http://", "http://***@")


def test_not_ready_names_mlflow_when_it_is_down(tmp_path, unreachable_uri):
    settings = make_settings(tmp_path, mlflow_tracking_uri=unreachable_uri)
    with LiveServer(make_toy_app(settings)) as live:
        answer = requests.get(f"{live.url}/ready")
    assert answer.status_code == 503
    assert f"MLflow tracking server at {unreachable_uri} is unreachable" in answer.json()["detail"]


def test_a_submission_refused_for_a_dependency_down_says_when_to_retry(tmp_path):
    settings = make_settings(tmp_path, mongo_uri=unreachable_mongo())
    with LiveServer(make_toy_app(settings)) as live:
        submit = requests.post(f"{live.url}/toy", json={"run_id": "r1", "x": 1})
    assert (submit.status_code, submit.headers.get("Retry-After")) == (503, "10")


def test_token_is_required_except_for_health(tmp_path):
    settings = make_settings(tmp_path, pipeline_api_token=TOKEN)
    with LiveServer(make_toy_app(settings)) as live:
        missing = requests.get(f"{live.url}/jobs")
        wrong = requests.get(f"{live.url}/jobs", headers={"Authorization": "Bearer nope"})
        post = requests.post(f"{live.url}/toy", json={"run_id": "r", "x": 1})
        right = requests.get(f"{live.url}/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
        health = requests.get(f"{live.url}/health")
    for answer in (missing, wrong, post):
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
        assert "Authorization: Bearer <token>" in answer.json()["detail"]
    assert right.status_code == 200 and health.status_code == 200


def test_restart_requeues_or_fails_jobs_left_running(tmp_path):
    settings = make_settings(tmp_path)
    store = JobStore(get_database(settings))
    once, _ = store.submit("toy", "r1", {"x": 1})
    twice, _ = store.submit("toy", "r2", {"x": 1})
    store.claim_next("toy", "dead")  # once: first attempt, its worker died
    store.claim_next("toy", "dead")
    store.col.update_one({"_id": twice["job_id"]}, {"$set": {"recoveries": 1}})  # requeued once
    old = utcnow() - timedelta(minutes=10)
    store.col.update_many({"status": "running"}, {"$set": {"heartbeat_at": old}})
    with LiveServer(make_toy_app(settings)) as live:
        requeued = poll(f"{live.url}/jobs/{once['job_id']}", {"succeeded", "failed"})[-1]
        failed = requests.get(f"{live.url}/jobs/{twice['job_id']}").json()
    assert requeued["status"] == "succeeded" and "worker dead stopped" in requeued["note"]
    assert failed["status"] == "failed"
    assert failed["error"].startswith("worker died while running (no heartbeat since ")


def test_a_stopped_service_leaves_its_records_in_the_store_file(tmp_path):
    settings = make_settings(tmp_path)
    with LiveServer(make_toy_app(settings)) as live:
        requests.post(f"{live.url}/toy", json={"run_id": "r1", "x": 1}, params={"wait": 30})
    wal = settings.store_dir / f"{settings.mongo_db}.sqlite3-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # folded into the file on stopping


def test_mongodb_down_is_503_naming_it(tmp_path):
    mongo = unreachable_mongo("u:pw@")
    settings = make_settings(tmp_path, mongo_uri=mongo)
    with LiveServer(make_toy_app(settings)) as live:
        submit = requests.post(f"{live.url}/toy", json={"run_id": "r1", "x": 1})
        ready = requests.get(f"{live.url}/ready")
        health = requests.get(f"{live.url}/health")
    for answer in (submit, ready):
        assert answer.status_code == 503
        assert f"MongoDB at {mongo.replace('u:pw', '***')} is unreachable" in answer.text
        assert "pw" not in answer.text
    assert health.status_code == 200


def test_openapi_docs_list_the_shared_routes(toy_server):
    assert requests.get(f"{toy_server}/docs").status_code == 200
    paths = requests.get(f"{toy_server}/openapi.json").json()["paths"]
    assert {"/toy", "/jobs", "/jobs/{job_id}", "/health", "/ready"} <= set(paths)


def test_job_reads_answer_while_submission_checks_hang(toy_server):
    """Submissions whose request check waits on a hung MLflow fill every submission thread;
    GET /jobs/{id} (the dashboard's progress poll) still answers before any of them returns."""
    from concurrent.futures import ThreadPoolExecutor

    from jobs.service import STORE_THREADS
    from tests.jobs.conftest import CHECK_RELEASED, CHECKED

    job = requests.post(f"{toy_server}/toy", json={"run_id": "r1", "x": 1}, timeout=30).json()
    CHECK_RELEASED.clear()
    before = len(CHECKED)
    bodies = [{"run_id": f"hung{i}", "x": 1, "hung_check": True} for i in range(STORE_THREADS + 2)]
    with ThreadPoolExecutor(len(bodies)) as pool:
        hung = [pool.submit(requests.post, f"{toy_server}/toy", json=b, timeout=90) for b in bodies]
        try:
            deadline = time.monotonic() + 60  # until the hung checks hold every thread
            while len(CHECKED) - before < STORE_THREADS:
                assert time.monotonic() < deadline, "the submissions never reached their checks"
                time.sleep(0.01)
            read = requests.get(f"{toy_server}/jobs/{job['job_id']}", timeout=30)
            pending = sum(not f.done() for f in hung)
        finally:
            CHECK_RELEASED.set()
        answers = [f.result().status_code for f in hung]
    assert read.status_code == 200 and read.json()["job_id"] == job["job_id"]
    assert pending == len(bodies)  # the read did not wait for the hung checks
    assert answers == [202] * len(bodies)


def test_a_submission_route_lists_the_answers_to_a_body_too_slow_or_beyond_the_budget(tmp_path):
    router = APIRouter()

    @router.post("/submit", responses=submission_responses(s422="unusable"))
    async def submit() -> dict:
        """A service's route that queues a job, as the evaluator's and explainer's are."""
        return {}

    app = create_job_app("toy", "Toy service", router, toy_handler, make_settings(tmp_path))
    with LiveServer(app) as live:
        paths = requests.get(f"{live.url}/openapi.json").json()["paths"]
    responses = paths["/submit"]["post"]["responses"]
    assert "BODY_TIMEOUT_S" in responses["408"]["description"]
    assert "MAX_BODY_BUFFER_BYTES" in responses["503"]["description"]


def test_run_id_schema_has_its_pattern():
    from pydantic import TypeAdapter

    schema = TypeAdapter(RunId).json_schema()
    assert schema["pattern"] == "^[0-9a-fA-F]{1,64}$"
