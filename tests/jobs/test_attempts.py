"""Attempts, leases, retries, cancelling and the queue limit in the job store (each backend)."""

import sqlite3
from datetime import timedelta

import pytest

from common import Conflict, TooManyRequests, utcnow
from jobs import JobStore
from jobs.embedded import EmbeddedDatabase


def test_each_claim_is_a_new_attempt_with_a_new_lease(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    first = job_store.claim_next("evaluate", "w1")
    job_store.release(job["job_id"], first["lease"], "shutting down")
    second = job_store.claim_next("evaluate", "w2")
    assert first["lease"] and second["lease"] and first["lease"] != second["lease"]


def test_a_taken_over_attempt_cannot_heartbeat_report_or_finish(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    old = job_store.claim_next("evaluate", "w1")
    job_store.col.update_one(
        {"_id": job["job_id"]}, {"$set": {"heartbeat_at": utcnow() - timedelta(minutes=5)}}
    )
    job_store.recover_stale("evaluate", 60)
    new = job_store.claim_next("evaluate", "w2")
    job_id = job["job_id"]
    assert not job_store.heartbeat(job_id, old["lease"])
    assert not job_store.report_progress(job_id, old["lease"], 0.5, "predicting")
    assert "another attempt" in job_store.lost_reason(job_id, old["lease"])
    with pytest.raises(Conflict):
        job_store.succeed(job_id, {"stale": True}, old["lease"])
    assert job_store.lost_reason(job_id, new["lease"]) is None
    assert job_store.succeed(job_id, {"fresh": True}, new["lease"])["attempts"] == 2


def test_progress_is_stored_on_the_job(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    assert job["progress"] == {"fraction": 0.0, "stage": "queued"}
    claimed = job_store.claim_next("evaluate", "w1")
    assert job_store.report_progress(job["job_id"], claimed["lease"], 0.25, "predicting 2/8")
    assert job_store.get(job["job_id"])["progress"] == {"fraction": 0.25, "stage": "predicting 2/8"}
    done = job_store.succeed(job["job_id"], {}, claimed["lease"])
    assert done["progress"] == {"fraction": 1.0, "stage": "done"}


def test_retry_requeues_the_job_not_before_its_backoff(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    claimed = job_store.claim_next("evaluate", "w1")
    again = job_store.retry(job["job_id"], claimed["lease"], "MLflow is down", 600, 3)
    assert again["status"] == "queued" and "MLflow is down" in again["note"]
    assert again["not_before"] > utcnow() + timedelta(seconds=500)
    assert job_store.claim_next("evaluate", "w1") is None


def test_retry_after_the_last_attempt_fails_naming_the_outage(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    for _ in range(2):
        claimed = job_store.claim_next("evaluate", "w1")
        job_store.retry(job["job_id"], claimed["lease"], "MLflow at http://x is unreachable", 0, 2)
    failed = job_store.get(job["job_id"])
    assert failed["status"] == "failed"
    assert failed["error"].startswith("MLflow at http://x is unreachable (gave up after 2")
    assert failed["note"] is None  # not the last retry's "retrying in 0 s"


def test_a_job_failed_after_its_retries_no_longer_shows_its_start_as_progress(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    claimed = job_store.claim_next("evaluate", "w1")
    job_store.retry(job["job_id"], claimed["lease"], "MLflow is down", 0, 1)
    failed = job_store.get(job["job_id"])
    assert failed["progress"] == {"fraction": 0.0, "stage": "failed while starting"}


def test_a_failed_job_keeps_the_fraction_it_reached_and_names_the_stage(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    claimed = job_store.claim_next("evaluate", "w1")
    job_store.report_progress(job["job_id"], claimed["lease"], 0.45, "predicting 6/14")
    failed = job_store.fail(job["job_id"], "the model does not load", claimed["lease"])
    assert failed["progress"] == {"fraction": 0.45, "stage": "failed while predicting 6/14"}


def test_a_job_failed_after_its_worker_died_twice_names_the_stage_it_died_in(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    for worker in ("w1", "w2"):
        claimed = job_store.claim_next("evaluate", worker)
        job_store.report_progress(job["job_id"], claimed["lease"], 0.5, "explaining 4/8")
        old = utcnow() - timedelta(minutes=5)
        job_store.col.update_one({"_id": job["job_id"]}, {"$set": {"heartbeat_at": old}})
        job_store.recover_stale("evaluate", 60)
    failed = job_store.get(job["job_id"])
    assert failed["progress"] == {"fraction": 0.5, "stage": "failed while explaining 4/8"}


def test_a_job_that_succeeds_after_an_outage_tells_the_outage_as_history(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    claimed = job_store.claim_next("evaluate", "w1")
    job_store.retry(job["job_id"], claimed["lease"], "MLflow is down", 0, 3)
    claimed = job_store.claim_next("evaluate", "w1")
    done = job_store.succeed(job["job_id"], {}, claimed["lease"])
    assert done["note"] == "succeeded on attempt 2, after an outage (MLflow is down)"


def test_a_job_that_succeeds_after_its_worker_stopped_no_longer_says_requeued(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    job_store.claim_next("evaluate", "w1")
    old = utcnow() - timedelta(minutes=5)
    job_store.col.update_one({"_id": job["job_id"]}, {"$set": {"heartbeat_at": old}})
    job_store.recover_stale("evaluate", 60)
    claimed = job_store.claim_next("evaluate", "w2")
    done = job_store.succeed(job["job_id"], {}, claimed["lease"])
    assert done["note"].startswith("succeeded on attempt 2, after worker w1 stopped (no heartbeat")


def test_cancel_a_queued_job(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    assert job_store.cancel(job["job_id"])["status"] == "cancelled"
    assert job_store.claim_next("evaluate", "w1") is None


def test_cancel_a_running_job_ends_its_lease(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    claimed = job_store.claim_next("evaluate", "w1")
    job_store.cancel(job["job_id"])
    assert job_store.lost_reason(job["job_id"], claimed["lease"]) == (
        f"job {job['job_id']} was cancelled"
    )
    assert not job_store.heartbeat(job["job_id"], claimed["lease"])


def test_cancelling_a_finished_job_is_a_conflict(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    claimed = job_store.claim_next("evaluate", "w1")
    job_store.succeed(job["job_id"], {}, claimed["lease"])
    with pytest.raises(Conflict, match="has already succeeded; only queued or running jobs"):
        job_store.cancel(job["job_id"])


def test_a_publishing_attempt_cannot_be_cancelled_until_it_is_requeued(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    claimed = job_store.claim_next("evaluate", "w1")
    assert job_store.start_publishing(job["job_id"], claimed["lease"]) is None
    with pytest.raises(Conflict, match="is publishing its result"):
        job_store.cancel(job["job_id"])
    job_store.retry(job["job_id"], claimed["lease"], "MLflow refused the upload", 0, 3)
    assert job_store.cancel(job["job_id"])["status"] == "cancelled"  # nothing was published


def test_a_try_given_back_at_shutdown_gets_a_result_folder_of_its_own(job_store):
    from runs import job_result_id

    job, _ = job_store.submit("evaluate", "run1", {})
    first = job_store.claim_next("evaluate", "w1")
    job_store.release(job["job_id"], first["lease"], "the service shut down")
    second = job_store.claim_next("evaluate", "w1")
    assert second["attempts"] == first["attempts"] == 1  # a shutdown costs no attempt
    assert job_result_id(second) != job_result_id(first)


def test_cancelled_inputs_can_be_submitted_again(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    job_store.cancel(job["job_id"])
    again, reused = job_store.submit("evaluate", "run1", {})
    assert not reused and again["job_id"] != job["job_id"]


def test_a_full_queue_refuses_submissions_with_retry_after(job_store):
    for i in range(3):
        job_store.submit("evaluate", f"run{i}", {}, max_queued=3)
    with pytest.raises(TooManyRequests, match="MAX_QUEUED_JOBS=3") as err:
        job_store.submit("evaluate", "run9", {}, max_queued=3)
    assert err.value.retry_after > 0
    assert job_store.submit("explain", "run9", {}, max_queued=3)[0]["status"] == "queued"


def test_a_full_queue_still_returns_an_equal_job(job_store):
    first, _ = job_store.submit("evaluate", "run1", {}, max_queued=1)
    assert job_store.submit("evaluate", "run1", {}, max_queued=1) == (first, True)


def test_probe_writes_and_reads_the_store(job_store):
    job_store.probe()
    assert job_store.db["probes"].count_documents({}) == 0


def test_a_deleted_embedded_store_file_refuses_writes(tmp_path):
    store = JobStore(EmbeddedDatabase(tmp_path / "store"))
    store.submit("evaluate", "run1", {})
    for path in (tmp_path / "store").iterdir():
        path.unlink()
    with pytest.raises(sqlite3.OperationalError, match="was deleted or replaced"):
        store.submit("evaluate", "run2", {})
    with pytest.raises(sqlite3.OperationalError, match="was deleted or replaced"):
        store.probe()
