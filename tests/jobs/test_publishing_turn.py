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


def test_a_turn_held_past_the_wait_is_this_attempts_reason_to_stop(job_store):
    first = _publishing(job_store, "run1", {"tta": "none"})
    second = _publishing(job_store, "run1", {"tta": "both"})
    assert job_store.start_publishing(*first) is None
    reason = job_store.start_publishing(*second, wait_s=0.2, poll_s=0.05)
    assert reason.startswith(f"job {first[0]} of run run1 has been publishing its result for")


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
