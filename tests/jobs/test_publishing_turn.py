"""One job per kind and run publishes at a time (``JobStore.start_publishing``), on each backend:
two evaluations of a run published at once by two replicas left the run's metrics of one and
its tags naming the other."""

import threading
import time

import pytest


def _publishing(job_store, run_id: str, inputs: dict, kind: str = "evaluate") -> tuple[str, str]:
    """A job of ``run_id`` claimed and about to publish: (job id, lease)."""
    job, _ = job_store.submit(kind, run_id, inputs)
    claimed = job_store.claim_next(kind, f"w-{job['job_id']}")
    assert claimed["job_id"] == job["job_id"]
    return job["job_id"], claimed["lease"]


def test_a_second_job_of_the_run_waits_for_the_first_to_finish_publishing(job_store):
    first = _publishing(job_store, "run1", {"tta": "none"})
    second = _publishing(job_store, "run1", {"tta": "both"})
    assert job_store.start_publishing(*first) is None
    waited: list = []
    thread = threading.Thread(
        target=lambda: waited.append(job_store.start_publishing(*second, wait_s=30, poll_s=0.05))
    )
    thread.start()
    time.sleep(0.4)
    assert waited == []  # still waiting for the turn
    job_store.succeed(first[0], {}, first[1])
    thread.join(10)
    assert waited == [None]


def test_a_turn_held_past_the_wait_fails_the_waiting_job_saying_so(job_store):
    """A stopped attempt records nothing: the job stayed running, was recovered, ran again."""
    first = _publishing(job_store, "run1", {"tta": "none"})
    second = _publishing(job_store, "run1", {"tta": "both"})
    assert job_store.start_publishing(*first) is None
    reason = job_store.start_publishing(*second, wait_s=0.2, poll_s=0.05)
    assert reason.startswith(f"job {first[0]} of run run1 has been publishing its result for")
    failed = job_store.get(second[0])
    assert (failed["status"], failed["error"]) == ("failed", reason)


def test_a_stopping_service_stops_the_wait(job_store):
    first = _publishing(job_store, "run1", {"tta": "none"})
    second = _publishing(job_store, "run1", {"tta": "both"})
    assert job_store.start_publishing(*first) is None
    reason = job_store.start_publishing(*second, wait_s=30, stopped=lambda: "shutting down")
    assert reason == "shutting down"


@pytest.mark.parametrize("end", ["retry", "release", "fail"])
def test_every_end_of_the_holding_attempt_frees_the_turn(job_store, end):
    first = _publishing(job_store, "run1", {"tta": "none"})
    second = _publishing(job_store, "run1", {"tta": "both"})
    assert job_store.start_publishing(*first) is None
    {"retry": lambda: job_store.retry(*first, "MLflow refused", 60, 3),
     "release": lambda: job_store.release(*first, "shutting down"),
     "fail": lambda: job_store.fail(first[0], "boom", first[1])}[end]()  # fmt: skip
    assert job_store.start_publishing(*second, wait_s=0) is None


def test_a_key_left_on_a_job_that_no_longer_runs_holds_no_turn(job_store):
    """A replica of a version before the key requeued or ended its holder without removing it."""
    first = _publishing(job_store, "run1", {"tta": "none"})
    second = _publishing(job_store, "run1", {"tta": "both"})
    assert job_store.start_publishing(*first) is None
    job_store.col.update_one({"_id": first[0]}, {"$set": {"status": "succeeded"}})
    assert job_store.start_publishing(*second, wait_s=5, poll_s=0.05) is None


@pytest.mark.parametrize(("run_id", "kind"), [("run2", "evaluate"), ("run1", "explain")])
def test_other_runs_and_kinds_publish_at_the_same_time(job_store, run_id, kind):
    first = _publishing(job_store, "run1", {})
    assert job_store.start_publishing(*first) is None
    other = _publishing(job_store, run_id, {}, kind)
    assert job_store.start_publishing(*other, wait_s=0) is None


def test_a_dead_workers_turn_ends_with_its_recovery(job_store):
    first = _publishing(job_store, "run1", {"tta": "none"})
    second = _publishing(job_store, "run1", {"tta": "both"})
    assert job_store.start_publishing(*first) is None
    dead = f"w-{first[0]}"
    assert job_store.recover_stale("evaluate", 3600, gone=lambda worker: worker == dead) == 1
    assert job_store.start_publishing(*second, wait_s=0) is None


def test_a_job_cancelled_while_it_waits_stops_waiting(job_store):
    first = _publishing(job_store, "run1", {"tta": "none"})
    second = _publishing(job_store, "run1", {"tta": "both"})
    assert job_store.start_publishing(*first) is None
    job_store.cancel(second[0])
    reason = job_store.start_publishing(*second, wait_s=30, poll_s=0.05)
    assert reason == f"job {second[0]} was cancelled"
