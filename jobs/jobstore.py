"""Job records of the evaluator and explainer in the collection ``jobs``.

A job is queued, then claimed by a runner: each claim is an *attempt* and carries a fresh
``lease`` token. Every later write of that attempt (heartbeat, progress, its outcome) matches the
lease, so an attempt whose job was taken over (its worker stopped heartbeating and the job was
requeued) or cancelled can neither mark the job done nor publish: its writes match nothing.
A job whose dependencies were down is requeued with a ``not_before`` time (backoff) until
``max_attempts``; the queue of each kind is bounded (``submit(max_queued=...)``).
"""

import functools
import logging
import uuid

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from common import Conflict, InvalidInput, NotFound, ServiceUnavailable, TooManyRequests, utcnow
from jobs.attempts import _ACTIVE, TURN_ENDS, AttemptRecords, _progress
from jobs.backend import backend_of
from jobs.store import (
    STATUSES,
    _next_seq,
    _out,
    inputs_key,
    plain,
    request_key,
)

log = logging.getLogger(__name__)

_UNSET_FIELDS = ("started_at", "finished_at", "heartbeat_at", "worker", "lease", "note")
_UNSET_FIELDS += ("error", "result")
_EPOCH = utcnow().replace(year=2000, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
QUEUE_FULL_RETRY_AFTER_S = 30
SUBMIT_TRIES = 3
"""Tries of a submission whose record the store refused as a duplicate of a job then gone."""
# What a claim reads and writes of a record; another type there marks the record damaged.
_FIELD_TYPES = {"kind": str, "run_id": str, "inputs": dict, "attempts": int, "seq": int}
_OPTIONAL_TYPES = {"tries": int}  # absent in records queued before it existed


# How a cancel refused for a job that has ended says so.
_ENDED = {
    "succeeded": "has already succeeded",
    "failed": "has already failed",
    "cancelled": "was already cancelled",
}


class JobStore(AttemptRecords):
    """Job records in the collection ``jobs`` (documents as in docs/contracts.md); the writes of
    an attempt are ``AttemptRecords``'."""

    def __init__(self, db) -> None:
        self.db = db
        self.col = db["jobs"]
        # Several calls as one write: the embedded store's transaction, no lock on MongoDB
        self._atomic = functools.partial(backend_of(db).atomic, db)
        self._indexed = False

    def ensure_indexes(self) -> None:
        """Create the indexes (once per store object); give old queued jobs a ``not_before``."""
        if self._indexed:
            return
        self.col.create_index([("kind", 1), ("status", 1), ("seq", 1)])
        # ``list`` (a service's ``GET /jobs``) newest first: a page reads its rows off an index
        # (without it, every page sorted all of the kind's jobs: 0.4 s per page at 100,000)
        self.col.create_index([("kind", 1), ("seq", -1)])
        self.col.create_index([("kind", 1), ("run_id", 1), ("seq", -1)])
        self.col.create_index([("run_id", 1), ("seq", -1)])
        self.col.create_index([("inputs_key", 1), ("status", 1)])
        self.col.create_index([("request_key", 1), ("status", 1)])
        self.col.create_index([("status", 1), ("heartbeat_at", 1)])
        # At most one queued/running job per inputs: ``active_key`` exists only while active.
        self.col.create_index("active_key", unique=True, sparse=True)
        # At most one job per kind and run publishes at a time (``start_publishing``).
        self.col.create_index("publish_key", unique=True, sparse=True)
        self.col.update_many(
            {"status": "queued", "not_before": {"$exists": False}},
            {"$set": {"not_before": _EPOCH}},
        )
        self._indexed = True

    def submit(
        self,
        kind: str,
        run_id: str,
        inputs: dict,
        force: bool = False,
        max_queued: int | None = None,
        request: dict | None = None,
    ) -> tuple[dict, bool]:
        """Queue a job, or return an equal one: ``(job, reused)``.

        A succeeded job with the same inputs is reused unless ``force``; a queued or running job
        with the same inputs is always returned instead of a duplicate. A new job records the
        key of ``request`` (the body as sent) for :meth:`active_for`.

        Raises:
            TooManyRequests: ``max_queued`` jobs of ``kind`` are already queued.
            ServiceUnavailable: The store refused the new record as a duplicate
                ``SUBMIT_TRIES`` times without holding a job it duplicates.
        """
        if not isinstance(run_id, str) or not run_id:
            raise InvalidInput(f"run_id must be a non-empty string, got {run_id!r}.")
        if not isinstance(inputs, dict):
            raise InvalidInput(f"job inputs must be a JSON object, got {type(inputs).__name__}.")
        self.ensure_indexes()
        inputs = plain(inputs)
        for _ in range(SUBMIT_TRIES):
            found = self._submit(kind, run_id, inputs, force, max_queued, request)
            if found is not None:
                return found
        raise ServiceUnavailable(
            f"the job store refused a new {kind} job for run {run_id} {SUBMIT_TRIES} times as a "
            "duplicate of an active job it does not hold (a unique index on the jobs collection "
            "that this version does not create?); remove that index, or retry."
        )

    def _submit(
        self,
        kind: str,
        run_id: str,
        inputs: dict,
        force: bool,
        max_queued: int | None,
        request: dict | None,
    ) -> tuple[dict, bool] | None:
        """One try of :meth:`submit`; None when another job won the race and has gone since."""
        key = inputs_key(kind, run_id, inputs)
        # An active job with these inputs is the answer, whatever ``force``: a read, no lock.
        active = self.col.find_one({"active_key": key})
        if active is not None and active["status"] in _ACTIVE:
            return _out(active), True
        if not force:  # asked again after success: a read too (the write lock queued these)
            done = {"inputs_key": key, "status": "succeeded"}
            for doc in self.col.find(done, sort=[("seq", -1)], limit=1):
                return _out(doc), True
        with self._atomic():
            # Reuse the newest unfailed job with these inputs (an active one even with force).
            same = self.col.find({"inputs_key": key, "status": {"$nin": ["failed", "cancelled"]}})
            same = sorted(same, key=lambda d: d["seq"], reverse=True)
            for doc in same:
                if doc["status"] != "succeeded" or not force:
                    return _out(doc), True
            if max_queued is not None:
                queued = self.col.count_documents({"kind": kind, "status": "queued"})
                if queued >= max_queued:
                    raise _queue_full(kind, queued, max_queued)
            now = utcnow()
            doc = {
                "_id": uuid.uuid4().hex,
                "kind": kind,
                "run_id": run_id,
                "inputs": inputs,
                "inputs_key": key,
                "active_key": key,
                "request_key": None if request is None else request_key(kind, run_id, request),
                "status": "queued",
                "created_at": now,
                "seq": _next_seq(),
                "updated_at": now,
                "not_before": now,
                "attempts": 0,
                "progress": _progress(0, "queued"),
                **dict.fromkeys(_UNSET_FIELDS),
            }
            try:
                self.col.insert_one(doc)
            except DuplicateKeyError:  # another replica queued the same inputs just now
                active = self.col.find_one({"active_key": key})
                if active is None:  # ... and it has already finished: look again
                    return None
                return _out(active), True
        return _out(doc), False

    def check_room(
        self,
        kind: str,
        run_id: str,
        max_queued: int,
        force: bool = False,
        request: dict | None = None,
    ) -> None:
        """Refuse a submission cheaply, before its checks run, when ``max_queued`` jobs of
        ``kind`` are queued and no job exists that :meth:`submit` could return instead: one
        queued by the same ``request`` (the body as sent) that has not failed or been cancelled,
        with ``force`` only a queued or running one (``force`` runs a succeeded job again).
        Without ``request`` any such job of ``run_id`` counts, its inputs being unknown until
        the checks run. Reads only; :meth:`submit` counts again under the lock.

        Raises:
            TooManyRequests: The queue is full and the submission would make a new job.
        """
        self.ensure_indexes()
        queued = self.col.count_documents({"kind": kind, "status": "queued"})
        if queued < max_queued:
            return
        status = {"$in": _ACTIVE} if force else {"$nin": ["failed", "cancelled"]}
        if request is None:
            answer = {"kind": kind, "run_id": run_id, "status": status}
        else:
            answer = {"request_key": request_key(kind, run_id, request), "status": status}
        if self.col.find_one(answer) is None:
            raise _queue_full(kind, queued, max_queued)

    def active_for(self, kind: str, run_id: str, request: dict) -> dict | None:
        """The queued or running job that this same request body queued, else None: a repeat
        needs neither the request's checks nor a new job (the job checks its inputs as it runs)."""
        self.ensure_indexes()
        key = request_key(kind, run_id, request)
        return _out(self.col.find_one({"request_key": key, "status": {"$in": _ACTIVE}}))

    def claim_next(self, kind: str, worker_id: str) -> dict | None:
        """Atomically start the next attempt of the oldest due queued job of ``kind``.

        The returned job carries a new ``lease``; pass it to every later call for this attempt.
        """
        self.ensure_indexes()  # also gives jobs queued by an older version a not_before
        due = {"kind": kind, "status": "queued", "not_before": {"$lte": utcnow()}}
        if self.col.find_one(due) is None:
            return None  # a read takes no lock: idle workers polling do not slow submissions
        try:
            return self._claim(due, worker_id)
        except Exception as exc:
            # A damaged record (edited by hand, another version's) must not block the queue: its
            # claim fails (TypeError here, OperationFailure on MongoDB) every time. Any other
            # failure (an outage, a bug) is raised: failing sound jobs one by one would empty it.
            if not self._fail_damaged(due, exc):
                raise
            return None

    def _claim(self, due: dict, worker_id: str) -> dict | None:
        with self._atomic():  # the time is taken after any wait for the store's lock
            now = utcnow()
            doc = self.col.find_one_and_update(
                {**due, "not_before": {"$lte": now}},
                {
                    "$set": {
                        "status": "running",
                        "worker": worker_id,
                        "lease": uuid.uuid4().hex,
                        "updated_at": now,
                        "started_at": now,
                        "heartbeat_at": now,
                        "progress": _progress(0, "starting"),
                    },
                    "$inc": {"attempts": 1, "tries": 1},
                },
                sort=[("seq", 1)],
                return_document=ReturnDocument.AFTER,
            )
        return _out(doc)

    def _fail_damaged(self, due: dict, exc: Exception) -> bool:
        """Fail the job ``claim_next`` would take next when its record is damaged, so the queue
        behind it moves on; False when it is not (the claim failed for another reason)."""
        for doc in self.col.find(due, sort=[("seq", 1)], limit=1):
            wrong = [f"{name} is {doc.get(name)!r}" for name, kind in _FIELD_TYPES.items()
                     if not isinstance(doc.get(name), kind)]  # fmt: skip
            wrong += [f"{name} is {doc[name]!r}" for name, kind in _OPTIONAL_TYPES.items()
                      if doc.get(name) is not None and not isinstance(doc[name], kind)]  # fmt: skip
            if not wrong:
                return False
            error = f"its record in the job store is damaged ({'; '.join(wrong)}: {exc!r})"
            log.error("job %s failed unclaimed: %s", doc["_id"], error)
            now = utcnow()
            self.col.update_one(
                {"_id": doc["_id"], "status": "queued"},
                {
                    "$set": {"status": "failed", "error": error, "finished_at": now},
                    "$unset": {"active_key": "", **TURN_ENDS},
                },
            )
            return True
        return False

    def cancel(self, job_id: str, kind: str | None = None) -> dict:
        """Cancel a queued or running job (a running attempt notices and stops), unless it is
        publishing its result: that result is about to be the run's current one.

        Raises:
            NotFound: No such job (of ``kind``, when given). Conflict: The job has already
                finished, or is publishing.
        """
        if kind is not None:
            self.get(job_id, kind)
        with self._atomic():
            now = utcnow()
            doc = self.col.find_one_and_update(
                {"_id": job_id, "status": {"$in": _ACTIVE}, "publishing": {"$ne": True}},
                {
                    "$set": {
                        "status": "cancelled",
                        "error": "cancelled on request (DELETE /jobs/<job id>)",
                        "finished_at": now,
                        "updated_at": now,
                    },
                    "$unset": {"active_key": "", **TURN_ENDS},
                },
                return_document=ReturnDocument.AFTER,
            )
        if doc is None:
            job = self.get(job_id)
            if job["status"] in _ACTIVE:  # publishing
                raise Conflict(
                    f"job {job_id} is publishing its result, which becomes the run's current "
                    "one in a moment: it can no longer be cancelled."
                )
            ended = _ENDED.get(job["status"], f"is {job['status']}")
            raise Conflict(f"job {job_id} {ended}; only queued or running jobs can be cancelled.")
        return _out(doc)

    def probe(self) -> None:
        """Write, read back and delete a probe record; raises the store's error if it cannot."""
        col = self.db["probes"]
        token = uuid.uuid4().hex
        col.insert_one({"_id": token, "at": utcnow()})
        try:
            if col.find_one({"_id": token}) is None:
                raise RuntimeError("a probe record written to the store could not be read back")
        finally:
            col.delete_many({"_id": token})

    def get(self, job_id: str, kind: str | None = None) -> dict:
        """The job ``job_id`` (of ``kind``, when given); ``NotFound`` when there is none."""
        doc = self.col.find_one({"_id": job_id})
        shown = job_id if len(job_id) <= 80 else f"{job_id[:80]}… ({len(job_id)} characters)"
        if doc is None:
            raise NotFound(
                f"job {shown!r} does not exist; list jobs with GET /jobs?run_id=<run id>."
            )
        if kind is not None and doc.get("kind") != kind:  # services may share one store
            raise NotFound(
                f"job {shown!r} is a {doc.get('kind')!r} job, not one of this service's "
                f"({kind!r}): ask the service that runs {doc.get('kind')!r} jobs."
            )
        return _out(doc)

    def get_many(self, job_ids: list[str]) -> dict[str, dict]:
        """The jobs among ``job_ids`` that exist, by id (one query)."""
        return {d["job_id"]: d for d in map(_out, self.col.find({"_id": {"$in": job_ids}}))}

    def list(
        self,
        kind: str | None = None,
        run_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[dict]:
        """Jobs matching every given filter, newest first, at most ``limit`` (1-1000); with
        ``before`` (a job id: the last of a page), only jobs created before that job."""
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"unknown job status {status!r}; use one of {', '.join(STATUSES)}.")
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be between 1 and 1000, got {limit}.")
        query = {k: v for k, v in (("kind", kind), ("run_id", run_id), ("status", status)) if v}
        if before is not None:  # by creation order: times of one millisecond are not an order
            ref = self.col.find_one({"_id": before, **({"kind": kind} if kind else {})})
            if ref is None or not isinstance(ref.get("seq"), int):
                raise NotFound(f"job {before[:80]!r} (before=) does not exist.")
            query["seq"] = {"$lt": ref["seq"]}
        docs = self.col.find(query, sort=[("seq", -1)], limit=limit)
        return [_out(doc) for doc in docs]


def _queue_full(kind: str, queued: int, max_queued: int) -> TooManyRequests:
    return TooManyRequests(
        f"the {kind} queue is full ({queued} jobs queued, MAX_QUEUED_JOBS={max_queued}); retry "
        "later, or cancel a queued job with DELETE /jobs/<job id>.",
        retry_after=QUEUE_FULL_RETRY_AFTER_S,
    )
