"""The job runner on a real store: outcomes, heartbeats, recovery, outages, several runners."""

import logging
import os
import re
import sqlite3
import threading
import time
from datetime import timedelta

import pytest

import jobs.runner
from common import InvalidInput, ServiceUnavailable, utcnow
from jobs import JobRunner, JobStore, get_database
from jobs.embedded import EmbeddedDatabase
from jobs.runner import RECORD_TRIES
from tests.jobs.conftest import make_settings

FAST = {"poll_interval": 0.05, "heartbeat_interval": 0.1}


@pytest.fixture
def runner_factory(job_store):
    """Builds runners on ``job_store`` and stops them all at teardown."""
    runners: list[JobRunner] = []

    def make(handler, store=None, **options) -> JobRunner:
        runner = JobRunner(store or job_store, "evaluate", handler, **{**FAST, **options})
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.stop()


def double(job: dict) -> dict:
    return {"y": 2 * job["inputs"]["x"]}


def test_only_the_runners_own_threads_are_known_alive(job_store, runner_factory):
    runner = runner_factory(lambda job, ctx=None: {})
    assert runner.holds(f"{runner.worker_id}/1")
    # the same host and pid in a restarted container, or another process: not known
    host, pid, _ = runner.worker_id.split(":")
    assert not runner.holds(f"{host}:{pid}:000000/1")


def test_a_queued_job_runs_to_success(job_store, runner_factory):
    runner = runner_factory(double).start()
    job, _ = job_store.submit("evaluate", "run1", {"x": 21})
    runner.wake()
    done = runner.wait(job["job_id"], 30)
    assert done["status"] == "succeeded" and done["result"] == {"y": 42}
    assert done["worker"].startswith(runner.worker_id)
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]


def test_pipeline_error_fails_with_its_message(job_store, runner_factory):
    def reject(job):
        raise InvalidInput("the data folder has no test split")

    runner = runner_factory(reject).start()
    job, _ = job_store.submit("evaluate", "run1", {})
    done = runner.wait(job["job_id"], 30)
    assert done["status"] == "failed" and done["error"] == "the data folder has no test split"


def test_a_failure_names_the_stage_it_failed_in_however_soon_after_the_last(
    job_store, runner_factory
):
    def load(job, ctx):
        ctx.progress(0.03, "loading the model")
        ctx.progress(0.08, "loading the test split")  # at once: one word is the same
        raise InvalidInput("test/normal has no readable images")

    runner = runner_factory(load).start()
    job, _ = job_store.submit("evaluate", "run1", {})
    done = runner.wait(job["job_id"], 30)
    assert done["progress"]["stage"] == "failed while loading the test split"


def test_an_outage_an_operator_must_mend_fails_at_once_not_after_retries(job_store, runner_factory):
    def misconfigured(job):
        raise ServiceUnavailable("the MLflow tracking URI file:/x is a file store").needs_operator()

    runner = runner_factory(misconfigured).start()
    job, _ = job_store.submit("evaluate", "run1", {})
    done = runner.wait(job["job_id"], 30)
    assert (done["status"], done["attempts"]) == ("failed", 1)


def test_unexpected_error_is_an_internal_error_and_the_runner_goes_on(job_store, runner_factory):
    def handler(job):
        return {"inverse": 1 / job["inputs"]["x"]}

    runner = runner_factory(handler).start()
    bad, _ = job_store.submit("evaluate", "run1", {"x": 0})
    good, _ = job_store.submit("evaluate", "run2", {"x": 4})
    failed = runner.wait(bad["job_id"], 30)
    assert failed["error"] == "internal error: ZeroDivisionError: division by zero"
    assert runner.wait(good["job_id"], 30)["result"] == {"inverse": 0.25}
    assert runner.running


def test_handler_must_return_a_dict(job_store, runner_factory):
    runner = runner_factory(lambda job: [1, 2]).start()
    job, _ = job_store.submit("evaluate", "run1", {})
    done = runner.wait(job["job_id"], 30)
    assert done["status"] == "failed" and "returned list, not a dict" in done["error"]


def test_heartbeat_stays_fresh_while_the_handler_runs(job_store, runner_factory):
    started, release = threading.Event(), threading.Event()

    def slow(job):
        started.set()
        release.wait(30)
        return {}

    runner = runner_factory(slow).start()
    job, _ = job_store.submit("evaluate", "run1", {})
    assert started.wait(30)
    first = job_store.get(job["job_id"])["heartbeat_at"]
    deadline = time.monotonic() + 30
    while job_store.get(job["job_id"])["heartbeat_at"] == first and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    assert job_store.get(job["job_id"])["heartbeat_at"] > first
    assert runner.wait(job["job_id"], 30)["status"] == "succeeded"


def test_start_requeues_a_job_left_running_by_a_dead_worker(job_store, runner_factory):
    job, _ = job_store.submit("evaluate", "run1", {"x": 1})
    job_store.claim_next("evaluate", "dead-worker")
    old = utcnow() - timedelta(minutes=5)
    job_store.col.update_one({"_id": job["job_id"]}, {"$set": {"heartbeat_at": old}})
    runner = runner_factory(double, stale_after=60).start()
    done = runner.wait(job["job_id"], 30)
    assert done["status"] == "succeeded" and "dead-worker" in done["note"]


def test_wait_returns_the_unfinished_job_after_the_timeout(job_store, runner_factory):
    runner = runner_factory(double)  # not started: nothing runs the job
    job, _ = job_store.submit("evaluate", "run1", {"x": 1})
    assert runner.wait(job["job_id"], 0.2)["status"] == "queued"


def test_wake_skips_the_poll_interval(job_store, runner_factory):
    runner = runner_factory(double, poll_interval=120).start()
    time.sleep(0.2)  # the worker is now waiting out its poll interval
    job, _ = job_store.submit("evaluate", "run1", {"x": 1})
    runner.wake()
    assert runner.wait(job["job_id"], 30)["status"] == "succeeded"


def test_stop_ends_every_thread(runner_factory):
    runner = runner_factory(double).start()
    assert runner.running
    runner.stop()
    assert not runner.running


def test_two_runners_run_each_job_exactly_once(job_store, store_settings, runner_factory):
    calls: list[str] = []
    lock = threading.Lock()

    def record(job):
        with lock:
            calls.append(job["job_id"])
        return {}

    ids = [job_store.submit("evaluate", f"run{i}", {})[0]["job_id"] for i in range(24)]
    # Each runner has its own client (the embedded store: its own lock objects), like replicas.
    stores = [job_store, JobStore(get_database(store_settings))]
    runners = [
        runner_factory(record, store=store, worker_id=f"r{i}", concurrency=2).start()
        for i, store in enumerate(stores)
    ]
    for job_id in ids:
        assert runners[0].wait(job_id, 60)["status"] == "succeeded"
    assert sorted(calls) == sorted(ids)


def test_runner_survives_a_store_outage(tmp_path, runner_factory):
    folder = tmp_path / "outage"
    store = JobStore(EmbeddedDatabase(folder, lock_timeout=0.2))
    job, _ = store.submit("evaluate", "run1", {"x": 5})
    # Another process writing for long: every write of the runner times out meanwhile.
    blocker = sqlite3.connect(store.db.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    runner = runner_factory(double, store=store).start()
    time.sleep(1.0)
    assert runner.running and store.get(job["job_id"])["status"] == "queued"
    blocker.execute("ROLLBACK")
    blocker.close()
    assert runner.wait(job["job_id"], 30)["result"] == {"y": 10}


def pid_or_reject(job: dict) -> dict:
    """Module-level, so that a spawned worker process can unpickle it."""
    if job["inputs"].get("reject"):
        raise InvalidInput("rejected in the worker process")
    return {"pid": os.getpid()}


def warn_and_succeed(job: dict) -> dict:
    """Module-level (a spawned worker unpickles it): logs one warning, as a handler's module may."""
    logging.getLogger("jobs.handler").warning("a warning from worker %d", os.getpid())
    return {}


def test_a_worker_process_logs_in_the_one_format(job_store, runner_factory, capfd):
    runner = runner_factory(warn_and_succeed, isolate=True).start()
    job, _ = job_store.submit("evaluate", "run1", {})
    runner.wait(job["job_id"], 300)
    [line] = [x for x in capfd.readouterr().err.splitlines() if "a warning from worker" in x]
    assert re.fullmatch(r"\S+Z WARNING jobs\.handler a warning from worker \d+", line), line


def test_isolated_handler_runs_in_a_worker_process_and_keeps_error_messages(
    job_store, runner_factory
):
    runner = runner_factory(pid_or_reject, isolate=True).start()
    ok, _ = job_store.submit("evaluate", "run1", {})
    rejected, _ = job_store.submit("evaluate", "run2", {"reject": True})
    done = runner.wait(ok["job_id"], 300)
    assert done["status"] == "succeeded" and done["result"]["pid"] != os.getpid()
    failed = runner.wait(rejected["job_id"], 60)
    assert failed["status"] == "failed" and failed["error"] == "rejected in the worker process"


def kill_own_process(job: dict) -> dict:
    """Module-level, for a spawned worker: dies as the out-of-memory killer would end it."""
    os.kill(os.getpid(), 9)
    return {}


def test_a_worker_killed_alone_fails_its_job_saying_how_to_submit_it_again(
    job_store, runner_factory
):
    runner = runner_factory(kill_own_process, isolate=True).start()
    job, _ = job_store.submit("evaluate", "run1", {})
    failed = runner.wait(job["job_id"], 300)
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert failed["error"].startswith("the worker process was killed (signal 9: out of memory?)")
    assert "submit it again once more memory is free" in failed["error"]


def test_a_published_result_is_recorded_after_a_long_store_outage_not_run_again(
    tmp_path, runner_factory, monkeypatch
):
    monkeypatch.setattr(jobs.runner, "RECORD_BACKOFF_S", (0.02, 0.5))  # the same tries, sooner
    store = JobStore(EmbeddedDatabase(tmp_path / "outage", lock_timeout=0.2))
    job, _ = store.submit("evaluate", "run1", {"x": 5})
    blocker = sqlite3.connect(store.db.path, isolation_level=None, check_same_thread=False)
    runs = []

    def publish_then_lose_the_store(job: dict) -> dict:
        runs.append(job["job_id"])  # the result is out (as an evaluation's is in MLflow)
        if len(runs) == 1:
            blocker.execute("BEGIN IMMEDIATE")  # every write of the runner fails meanwhile
        return {"y": 10}

    runner = runner_factory(publish_then_lose_the_store, store=store, stale_after=1.0).start()
    deadline = time.monotonic() + 30
    while not runs and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(sum(min(0.02 * 2**n, 0.5) for n in range(1, RECORD_TRIES)) + 3)  # past giving up
    blocker.execute("ROLLBACK")
    blocker.close()
    assert runner.wait(job["job_id"], 30)["status"] == "succeeded"
    time.sleep(1.5)  # a wrongly recovered job would be claimed and run again by now
    assert runs == [job["job_id"]]


def test_an_unexpected_error_quoting_a_uri_fails_without_its_credentials(job_store, runner_factory):
    def handler(job):
        raise RuntimeError("API request to http://audituser:s3cretPW@mlflow:5000/api failed")

    runner = runner_factory(handler).start()
    job, _ = job_store.submit("evaluate", "run1", {})
    failed = runner.wait(job["job_id"], 30)
    assert failed["error"] == (
        "internal error: RuntimeError: API request to http://***@mlflow:5000/api failed"
    )


def test_the_default_retries_outlast_an_mlflow_restart_of_40_s_by_minutes(job_store, tmp_path):
    settings = make_settings(tmp_path)  # the defaults of JOB_MAX_ATTEMPTS and JOB_RETRY_DELAY_S
    runner = JobRunner(
        job_store,
        "evaluate",
        lambda job: {},
        max_attempts=settings.job_max_attempts,
        retry_delay=settings.job_retry_delay_s,
    )
    window = sum(runner.retry_wait(n) for n in range(1, runner.max_attempts))
    assert 120 <= window <= 300  # long enough for a restart, short enough for an MLflow gone


def test_each_attempt_logs_its_start_and_end_with_job_and_run(job_store, runner_factory, caplog):
    def reject(job):
        raise InvalidInput("the data folder has no test split")

    caplog.set_level("INFO", logger="jobs")
    runner = runner_factory(double).start()
    good, _ = job_store.submit("evaluate", "run1", {"x": 1})
    runner.wake()
    runner.wait(good["job_id"], 30)
    runner.stop()  # the next job is the failing runner's
    failing = runner_factory(reject).start()
    bad, _ = job_store.submit("evaluate", "run2", {"x": 2})
    failing.wake()
    failing.wait(bad["job_id"], 30)
    failing.stop()  # the job is stored failed before its line is logged: the thread ends after
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "jobs.runner"]
    assert ("INFO", f"evaluate job {good['job_id']} (run run1) attempt 1 started") in lines
    [(level, ended)] = [x for x in lines if x[1].startswith(f"evaluate job {good['job_id']}")
                        and "succeeded" in x[1]]  # fmt: skip
    assert level == "INFO" and ended.endswith(" s")
    assert ("WARNING", f"evaluate job {bad['job_id']} (run run2) attempt 1 failed: the data "
                       "folder has no test split") in lines  # fmt: skip
