"""The MongoDB store: job records of the evaluator and explainer, and the model-selection trail.

``get_database(settings)`` returns a pymongo ``Database`` when ``MONGO_URI`` is set, otherwise an
``EmbeddedDatabase`` in ``settings.store_dir``: the same API subset on one SQLite file, safe for
several threads and processes (see ``jobs.embedded`` for why it is not montydb).
``JobStore`` and ``SelectionStore`` are written against the pymongo API that both share.
"""

import contextlib
import hashlib
import json
import logging
import re
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo import ReturnDocument
from pymongo.errors import ConfigurationError, DuplicateKeyError, PyMongoError

from common import InvalidInput, NotFound, ServiceUnavailable, Settings
from jobs.embedded import EmbeddedDatabase
from runs import contract

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "succeeded", "failed")
FINAL_STATUSES = ("succeeded", "failed")
_UNSET_FIELDS = ("started_at", "finished_at", "heartbeat_at", "worker", "note", "error", "result")
STORE_ERRORS = (PyMongoError, sqlite3.Error)
"""Exceptions that mean "the store is down or busy", not "the job is bad"."""


def redact_uri(uri: str) -> str:
    """``uri`` with any ``user:password@`` replaced by ``***@``."""
    return re.sub(r"^([a-z0-9+.-]+://)[^@/]*@", r"\1***@", uri, flags=re.IGNORECASE)


def utcnow() -> datetime:
    """Now in UTC, truncated to milliseconds (what MongoDB stores)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def get_database(settings: Settings, check: bool = True):
    """The store's database: MongoDB at ``settings.mongo_uri``, else the embedded store.

    Args:
        settings: Uses ``mongo_uri``, ``mongo_db`` and ``store_dir``.
        check: Ping MongoDB now (a service passes False so that it starts while MongoDB is down
            and answers 503 until it is back).

    Raises:
        ServiceUnavailable: MongoDB does not answer within 3 s, or the store folder is unusable.
    """
    if not settings.mongo_uri:
        try:
            return EmbeddedDatabase(settings.store_dir, settings.mongo_db)
        except (OSError, sqlite3.Error) as exc:
            raise ServiceUnavailable(
                f"the embedded store in {settings.store_dir} cannot be opened ({exc}); "
                "set STORE_DIR to a writable folder or MONGO_URI to a MongoDB server."
            ) from exc
    uri = redact_uri(settings.mongo_uri)
    try:
        client = pymongo.MongoClient(
            settings.mongo_uri, serverSelectionTimeoutMS=3000, tz_aware=True
        )
        db = client[settings.mongo_db]
        if check:
            db.command("ping")
    except ConfigurationError as exc:
        raise ServiceUnavailable(
            f"MONGO_URI ({uri}) is not a valid MongoDB URI ({exc}); fix it, for example "
            "mongodb://host:27017, or unset it to use the embedded store."
        ) from exc
    except PyMongoError as exc:
        raise mongo_unavailable(uri, exc) from exc
    return db


def mongo_unavailable(uri: str, exc: Exception) -> ServiceUnavailable:
    """The error for an unreachable MongoDB at ``uri`` (credentials already hidden)."""
    return ServiceUnavailable(
        f"MongoDB at {uri} is unreachable ({type(exc).__name__}); start MongoDB or fix MONGO_URI "
        "(unset it to use the embedded store)."
    )


def plain(value: Any) -> Any:
    """``value`` as JSON-able plain data (numpy scalars and arrays, tuples, paths, ...)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, datetime):
        return obj.isoformat()
    return str(obj)


def inputs_key(kind: str, run_id: str, inputs: dict) -> str:
    """sha256 of the canonical JSON of ``kind``, ``run_id`` and ``inputs``."""
    canonical = json.dumps(
        {"kind": kind, "run_id": run_id, "inputs": plain(inputs)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


_seq_lock = threading.Lock()
_last_seq = 0


def _next_seq() -> int:
    """Nanoseconds since the epoch, strictly increasing in this process: orders jobs created in
    the same millisecond (``created_at`` has millisecond precision, like MongoDB's dates)."""
    global _last_seq
    with _seq_lock:
        _last_seq = max(_last_seq + 1, time.time_ns())
        return _last_seq


def _out(doc: dict | None, id_name: str = "job_id") -> dict | None:
    """A stored document as a plain dict: ``job_id`` instead of ``_id``, no internal fields."""
    if doc is None:
        return None
    doc = dict(doc)
    doc[id_name] = str(doc.pop("_id"))
    doc.pop("active_key", None)
    doc.pop("seq", None)
    for key, value in doc.items():
        if isinstance(value, datetime):  # naive from some drivers, bson's FixedOffset from others
            doc[key] = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return doc


class JobStore:
    """Job records in the collection ``jobs`` (documents as in docs/contracts.md)."""

    def __init__(self, db) -> None:
        self.db = db
        self.col = db["jobs"]
        # Several calls as one write on the embedded store; MongoDB needs no lock (its writes used
        # here are atomic, and a unique index keeps one active job per inputs). Not getattr: a
        # pymongo Database answers any attribute with a collection.
        self._atomic = db.atomic if isinstance(db, EmbeddedDatabase) else contextlib.nullcontext
        self._indexed = False

    def ensure_indexes(self) -> None:
        """Create the indexes (once per store object)."""
        if self._indexed:
            return
        self.col.create_index([("kind", 1), ("status", 1), ("seq", 1)])
        self.col.create_index([("run_id", 1), ("seq", -1)])
        self.col.create_index([("inputs_key", 1), ("status", 1)])
        self.col.create_index([("status", 1), ("heartbeat_at", 1)])
        # At most one queued/running job per inputs: ``active_key`` exists only while active.
        self.col.create_index("active_key", unique=True, sparse=True)
        self._indexed = True

    def submit(
        self, kind: str, run_id: str, inputs: dict, force: bool = False
    ) -> tuple[dict, bool]:
        """Queue a job, or return an equal one: ``(job, reused)``.

        A succeeded job with the same inputs is reused unless ``force``; a queued or running job
        with the same inputs is always returned instead of a duplicate.
        """
        if not isinstance(run_id, str) or not run_id:
            raise InvalidInput(f"run_id must be a non-empty string, got {run_id!r}.")
        if not isinstance(inputs, dict):
            raise InvalidInput(f"job inputs must be a JSON object, got {type(inputs).__name__}.")
        self.ensure_indexes()
        inputs = plain(inputs)
        key = inputs_key(kind, run_id, inputs)
        with self._atomic():
            # Reuse the newest unfailed job with these inputs (an active one even with force).
            same = self.col.find({"inputs_key": key, "status": {"$ne": "failed"}})
            same = sorted(same, key=lambda d: d["seq"], reverse=True)
            for doc in same:
                if doc["status"] != "succeeded" or not force:
                    return _out(doc), True
            now = utcnow()
            doc = {
                "_id": uuid.uuid4().hex,
                "kind": kind,
                "run_id": run_id,
                "inputs": inputs,
                "inputs_key": key,
                "active_key": key,
                "status": "queued",
                "created_at": now,
                "seq": _next_seq(),
                "updated_at": now,
                "attempts": 0,
                **dict.fromkeys(_UNSET_FIELDS),
            }
            try:
                self.col.insert_one(doc)
            except DuplicateKeyError:  # another replica queued the same inputs just now
                active = self.col.find_one({"active_key": key})
                if active is None:  # ... and it has already finished: look again
                    return self.submit(kind, run_id, inputs, force)
                return _out(active), True
        return _out(doc), False

    def claim_next(self, kind: str, worker_id: str) -> dict | None:
        """Atomically move the oldest queued job of ``kind`` to running for ``worker_id``."""
        if self.col.find_one({"kind": kind, "status": "queued"}) is None:
            return None  # a read takes no lock: idle workers polling do not slow submissions
        with self._atomic():  # the time is taken after any wait for the store's lock
            now = utcnow()
            running = {"status": "running", "worker": worker_id, "updated_at": now}
            doc = self.col.find_one_and_update(
                {"kind": kind, "status": "queued"},
                {
                    "$set": {**running, "started_at": now, "heartbeat_at": now},
                    "$inc": {"attempts": 1},
                },
                sort=[("seq", 1)],
                return_document=ReturnDocument.AFTER,
            )
        return _out(doc)

    def heartbeat(self, job_id: str, worker_id: str) -> bool:
        """Mark ``job_id`` alive; False when the job is no longer running for ``worker_id``."""
        with self._atomic():
            result = self.col.update_one(
                {"_id": job_id, "status": "running", "worker": worker_id},
                {"$set": {"heartbeat_at": utcnow()}},
            )
        return result.matched_count == 1

    def succeed(self, job_id: str, result: dict, worker_id: str | None = None) -> dict:
        """Record the result of a job (only if ``worker_id``, when given, still runs it)."""
        return self._finish(job_id, {"status": "succeeded", "result": plain(result)}, worker_id)

    def fail(self, job_id: str, error: str, worker_id: str | None = None) -> dict:
        """Record why a job failed (only if ``worker_id``, when given, still runs it)."""
        return self._finish(job_id, {"status": "failed", "error": str(error)}, worker_id)

    def _finish(self, job_id: str, fields: dict, worker_id: str | None) -> dict:
        query = {"_id": job_id, "status": {"$in": ["queued", "running"]}}
        if worker_id is not None:
            query.update(status="running", worker=worker_id)
        with self._atomic():
            now = utcnow()
            doc = self.col.find_one_and_update(
                query,
                {
                    "$set": {**fields, "finished_at": now, "updated_at": now},
                    "$unset": {"active_key": ""},
                },
                return_document=ReturnDocument.AFTER,
            )
        if doc is None:
            now_job = self.get(job_id)
            status = now_job["status"]
            if status in FINAL_STATUSES:
                raise InvalidInput(f"job {job_id} is already {status}; it cannot finish twice.")
            raise InvalidInput(
                f"job {job_id} is now {status} for worker {now_job['worker']}, not {worker_id} "
                "(it was recovered as stale); this result is dropped."
            )
        return _out(doc)

    def get(self, job_id: str) -> dict:
        """The job ``job_id``; ``NotFound`` when there is none."""
        doc = self.col.find_one({"_id": job_id})
        if doc is None:
            raise NotFound(
                f"job {job_id!r} does not exist; list jobs with GET /jobs?run_id=<run id>."
            )
        return _out(doc)

    def list(
        self,
        kind: str | None = None,
        run_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
    ) -> list[dict]:
        """Jobs matching every given filter, newest first, at most ``limit`` (1-1000)."""
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"unknown job status {status!r}; use one of {', '.join(STATUSES)}.")
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be between 1 and 1000, got {limit}.")
        query = {k: v for k, v in (("kind", kind), ("run_id", run_id), ("status", status)) if v}
        docs = self.col.find(query, sort=[("seq", -1)], limit=limit)
        return [_out(doc) for doc in docs]

    def recover_stale(self, kind: str, older_than_s: float) -> int:
        """Requeue (once) or fail running jobs whose heartbeat is older than ``older_than_s``.

        Returns:
            How many jobs were requeued or failed.
        """
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        stale = {"kind": kind, "status": "running", "heartbeat_at": {"$lt": cutoff}}
        n = 0
        for doc in self.col.find(stale):
            since = doc["heartbeat_at"].replace(tzinfo=UTC).isoformat(timespec="seconds")
            now = utcnow()
            if doc.get("attempts", 1) <= 1:
                update = {
                    "status": "queued",
                    "worker": None,
                    "note": f"requeued: worker {doc.get('worker')} stopped (no heartbeat since "
                    f"{since})",
                    "updated_at": now,
                }
                unset = {}
            else:
                update = {
                    "status": "failed",
                    "error": f"worker died while running (no heartbeat since {since}); "
                    "it was already retried once, submit it again with force to retry.",
                    "finished_at": now,
                    "updated_at": now,
                }
                unset = {"active_key": ""}
            # The filter repeats the staleness test so that two recovering replicas act once.
            changed = self.col.update_one(
                {**stale, "_id": doc["_id"]},
                {"$set": update, **({"$unset": unset} if unset else {})},
            )
            n += changed.modified_count
        if n:
            log.warning("recovered %d stale %s job(s)", n, kind)
        return n


class SelectionStore:
    """The audit trail of model selections in the collection ``selections``."""

    def __init__(self, db) -> None:
        self.col = db["selections"]

    def record(self, record: contract.SelectionRecord) -> dict:
        """Store one choice or download; returns the stored document (``selection_id`` as id)."""
        doc = record.model_dump(mode="python")
        doc["_id"] = doc.pop("selection_id")
        doc["metrics"] = plain(doc["metrics"])
        doc["seq"] = _next_seq()
        self.col.insert_one(doc)
        return _out(doc, "selection_id")

    def recent(self, limit: int = 20, action: str | None = None) -> list[dict]:
        """The latest selections (only ``action`` ones when given), newest first."""
        query = {"action": action} if action else {}
        docs = self.col.find(query, sort=[("seq", -1)], limit=limit)
        return [_out(doc, "selection_id") for doc in docs]
