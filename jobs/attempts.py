"""The writes of one attempt at a job: heartbeats, progress, publishing, its outcome, a retry.

Each matches the attempt's ``lease``: an attempt whose job was taken over or cancelled writes
nothing. ``recover_stale`` requeues (once) or fails the jobs of attempts that stopped
heartbeating.
"""

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from common import Conflict, utcnow
from jobs.store import FINAL_STATUSES, _out, plain

log = logging.getLogger("jobs.jobstore")

_ACTIVE = ["queued", "running"]
_OUTAGE_NOTE = re.compile(r"attempt \d+ met an outage, retrying in [^:]* s: (?P<error>.*)", re.S)
"""The note of ``AttemptRecords.retry``."""


# An attempt holds its run's publishing turn (``start_publishing``) through ``publish_key``, which
# a unique index keeps to one job per kind and run; every end of the attempt removes it.
TURN_ENDS = {"publish_key": ""}
PUBLISH_TURN_WAIT_S = 120.0
"""How long ``start_publishing`` waits for another job of the run to end its publishing."""


def _progress(fraction: float, stage: str) -> dict:
    return {"fraction": round(float(fraction), 4), "stage": str(stage)[:200]}


def _failed_progress(progress: object) -> dict:
    """A failed job's progress: the fraction it reached, and the stage it failed in."""
    found = progress if isinstance(progress, dict) else {}
    fraction, stage = found.get("fraction"), found.get("stage")
    if not isinstance(fraction, int | float) or isinstance(fraction, bool):
        fraction = 0  # a damaged record's
    return _progress(fraction, f"failed while {stage}" if isinstance(stage, str) else "failed")


def _succeeded_note(note: object, attempts: object) -> str | None:
    """A succeeded job's ``note``: the last requeue's note (an outage's "retrying in 20 s", a
    stopped worker) told as history, so that it no longer reads as current; None without one."""
    if not isinstance(note, str) or not note:
        return None
    outage = _OUTAGE_NOTE.match(note)
    why = f"an outage ({outage['error']})" if outage else note.removeprefix("requeued: ")
    return f"succeeded on attempt {attempts}, after {why}"[:1000]


def _requeued(now, note: str, stage: str = "queued", not_before=None) -> dict:
    """The fields of a job given back to the queue, due at ``not_before`` (default: now)."""
    return {
        "status": "queued", "worker": None, "lease": None, "not_before": not_before or now,
        "updated_at": now, "note": note, "progress": _progress(0, stage), "publishing": False,
    }  # fmt: skip


class AttemptRecords:
    """The attempt writes of ``jobs.JobStore`` (which provides ``col``, ``_atomic`` and ``get``)."""

    def _attempt(self, job_id: str, lease: str) -> dict:
        return {"_id": job_id, "status": "running", "lease": lease}

    def heartbeat(self, job_id: str, lease: str) -> bool:
        """Mark the attempt alive; False when the job is no longer running under ``lease``."""
        with self._atomic():
            beat = {"$set": {"heartbeat_at": utcnow()}}
            result = self.col.update_one(self._attempt(job_id, lease), beat)
        return result.matched_count == 1

    def report_progress(self, job_id: str, lease: str, fraction: float, stage: str) -> bool:
        """Store the attempt's progress; False when it no longer holds the job."""
        with self._atomic():
            fields = {"progress": _progress(fraction, stage), "updated_at": utcnow()}
            result = self.col.update_one(self._attempt(job_id, lease), {"$set": fields})
        return result.matched_count == 1

    def lost_reason(self, job_id: str, lease: str) -> str | None:
        """None while ``lease`` holds the running job, else why this attempt must stop."""
        doc = self.col.find_one({"_id": job_id})
        if doc is None:
            return f"job {job_id} no longer exists"
        if doc["status"] == "running" and doc.get("lease") == lease:
            return None
        if doc["status"] == "cancelled":
            return f"job {job_id} was cancelled"
        return (
            f"job {job_id} is {doc['status']} under another attempt (this one was taken over "
            "after it stopped heartbeating)"
        )

    def start_publishing(
        self,
        job_id: str,
        lease: str,
        wait_s: float = PUBLISH_TURN_WAIT_S,
        poll_s: float = 0.2,
        stopped: Callable[[], str | None] = lambda: None,
    ) -> str | None:
        """Mark the attempt as publishing its result, from which point the job can no longer be
        cancelled (``JobStore.cancel``); None when marked, else why this attempt must stop.

        It also takes the run's publishing turn: one job of a kind per run publishes at a time
        (two evaluations of a run published at once, by two replicas, left the run's metrics of
        one and its tags naming the other: MLflow keeps the metric stamped last and the tag
        written last). A turn held by another job is waited for, up to ``wait_s`` or until
        ``stopped`` gives a reason (the service stopping); it ends with that job's outcome, or with
        its recovery when its worker died. A wait that runs out fails this job, saying so."""
        job = self.col.find_one({"_id": job_id}) or {}
        key = f"{job.get('kind')}:{job.get('run_id')}"
        deadline, cleared = time.monotonic() + wait_s, False
        while True:
            try:
                with self._atomic():
                    marked = self.col.update_one(
                        self._attempt(job_id, lease),
                        {"$set": {"publishing": True, "publish_key": key, "updated_at": utcnow()}},
                    )
            except DuplicateKeyError:  # another job of the run is publishing
                if not cleared:  # a key left on a job that no longer runs (requeued or ended
                    # by a replica of a version before the key) holds no turn
                    self.col.update_many(
                        {"publish_key": key, "status": {"$ne": "running"}}, {"$unset": TURN_ENDS}
                    )
                    cleared = True
                    continue
                if reason := self.lost_reason(job_id, lease) or stopped():  # cancelled, taken
                    return reason  # over, or the service stops
                if time.monotonic() >= deadline:
                    holder = (self.col.find_one({"publish_key": key}) or {}).get("_id")
                    error = (
                        f"job {holder} of run {job.get('run_id')} has been publishing its result "
                        f"for over {wait_s:g} s, and results of one run are published one at a "
                        "time; submit this job again once it has ended"
                    )
                    self.fail(job_id, error, lease)  # recorded: a stopped attempt records none
                    return error
                time.sleep(poll_s)
                continue
            return None if marked.matched_count == 1 else self.lost_reason(job_id, lease)

    def succeed(self, job_id: str, result: dict, lease: str | None = None) -> dict:
        """Record the result of a job (only if ``lease``, when given, still holds it); a note
        left by a requeue becomes history ("succeeded on attempt 4, after an outage (...)")."""
        job = self.col.find_one({"_id": job_id}) or {}  # none: ``_finish`` says so
        fields = {"status": "succeeded", "result": plain(result), "progress": _progress(1, "done")}
        fields["note"] = _succeeded_note(job.get("note"), job.get("attempts"))
        return self._finish(job_id, fields, lease)

    def fail(self, job_id: str, error: str, lease: str | None = None) -> dict:
        """Record why a job failed (only if ``lease``, when given, still holds it); its progress
        keeps the fraction reached and says the stage it failed in."""
        job = self.col.find_one({"_id": job_id}) or {}  # none: ``_finish`` says so
        # No ``note``: an earlier retry's "retrying in 20 s" would outlive the retries.
        fields = {"status": "failed", "error": str(error), "note": None}
        fields["progress"] = _failed_progress(job.get("progress"))
        return self._finish(job_id, fields, lease)

    def _finish(self, job_id: str, fields: dict, lease: str | None) -> dict:
        query = {"_id": job_id, "status": {"$in": _ACTIVE}}
        if lease is not None:
            query = self._attempt(job_id, lease)
        with self._atomic():
            now = utcnow()
            doc = self.col.find_one_and_update(
                query,
                {
                    "$set": {**fields, "finished_at": now, "updated_at": now, "publishing": False},
                    "$unset": {"active_key": "", **TURN_ENDS},
                },
                return_document=ReturnDocument.AFTER,
            )
        if doc is None:
            now_job = self.get(job_id)
            status = now_job["status"]
            if status in FINAL_STATUSES:
                raise Conflict(f"job {job_id} is already {status}; it cannot finish twice.")
            raise Conflict(
                f"job {job_id} is now {status} under another attempt (this one was taken over "
                "after it stopped heartbeating); this result is dropped."
            )
        return _out(doc)

    def retry(self, job_id: str, lease: str, error: str, delay_s: float, max_attempts: int) -> dict:
        """Requeue an attempt that met an outage, due after ``delay_s``; fail the job instead
        once it has had ``max_attempts`` attempts."""
        job = self.get(job_id)
        if job["attempts"] >= max_attempts:
            return self.fail(
                job_id,
                f"{error} (gave up after {job['attempts']} attempts; submit it again once the "
                "service is back)",
                lease,
            )
        note = f"attempt {job['attempts']} met an outage, retrying in {delay_s:g} s: {error}"
        with self._atomic():
            now = utcnow()
            later = now + timedelta(seconds=delay_s)
            doc = self.col.find_one_and_update(
                self._attempt(job_id, lease),
                {"$set": _requeued(now, note, "waiting to retry", later), "$unset": TURN_ENDS},
                return_document=ReturnDocument.AFTER,
            )
        if doc is None:
            raise Conflict(f"job {job_id} is no longer held by this attempt; not requeued.")
        return _out(doc)

    def release(self, job_id: str, lease: str, note: str) -> bool:
        """Give a running attempt back to the queue at once (the service is shutting down)."""
        with self._atomic():
            now = utcnow()
            result = self.col.update_one(
                self._attempt(job_id, lease),
                {"$set": _requeued(now, note), "$inc": {"attempts": -1}, "$unset": TURN_ENDS},
            )
        return result.matched_count == 1

    def recover_stale(
        self,
        kind: str,
        older_than_s: float,
        gone: Callable[[str], bool] | None = None,
        alive: Callable[[str], bool] | None = None,
    ) -> int:
        """Requeue (once) or fail running jobs whose heartbeat is older than ``older_than_s``,
        or whose ``worker`` is ``gone`` (its process is known to have ended: no need to wait).
        A stale job whose worker is known ``alive`` (a thread of the recovering runner itself) did
        not die (its heartbeats could not be written: the store was full or down): it is
        requeued without counting as a death.

        A requeued job gets a new lease at its next claim, so the stale attempt, should its
        worker still be alive, can no longer record anything.

        Returns:
            How many jobs were requeued or failed.
        """
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        stale = {"kind": kind, "status": "running", "heartbeat_at": {"$lt": cutoff}}
        found = {doc["_id"]: (doc, stale) for doc in self.col.find(stale)}
        if gone is not None:
            for doc in self.col.find({"kind": kind, "status": "running"}):
                if doc["_id"] not in found and gone(str(doc.get("worker") or "")):
                    # Matched by its lease: the attempt whose process ended, and no later one.
                    found[doc["_id"]] = (doc, {"status": "running", "lease": doc.get("lease")})
        n = 0
        for doc, still in found.values():
            beat = doc.get("heartbeat_at")
            if isinstance(beat, datetime):
                since = beat.replace(tzinfo=UTC).isoformat(timespec="seconds")
            else:  # a damaged record: recovered like the others, not a failure of every round
                since = "unknown"
            why = f"no heartbeat since {since}"
            if still is not stale:
                why = f"its process has ended; last heartbeat at {since}"
            now = utcnow()
            # Counted apart from ``attempts``, which outage retries raise too: a job that met an
            # outage and then lost its worker has not been recovered from a death before.
            worker = str(doc.get("worker") or "")
            if still is stale and alive is not None and alive(worker):
                note = (
                    f"requeued: {why} from worker {worker}, whose process still runs (its "
                    "heartbeats could not be stored: was the job store full or down?)"
                )
                update, unset = _requeued(now, note), TURN_ENDS
            elif not doc.get("recoveries"):
                note = f"requeued: worker {doc.get('worker')} stopped ({why})"
                update, unset = {**_requeued(now, note), "recoveries": 1}, TURN_ENDS
            else:
                error = (
                    f"worker died while running ({why}); it was already "
                    "requeued once after a worker stopped, submit it again with force to retry."
                )
                update = {"status": "failed", "lease": None, "error": error, "note": error,
                          "progress": _failed_progress(doc.get("progress")),
                          "finished_at": now, "updated_at": now}  # fmt: skip
                unset = {"active_key": "", **TURN_ENDS}
            # The filter repeats the test so that two recovering replicas act once.
            changed = self.col.update_one(
                {**still, "_id": doc["_id"]},
                {"$set": update, "$unset": unset},
            )
            if changed.modified_count:
                log.warning("%s job %s (run %s) %s", kind, doc["_id"], doc.get("run_id"),
                            update.get("error") or update["note"])  # fmt: skip
            n += changed.modified_count
        return n
