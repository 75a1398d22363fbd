"""The store of job records: the database and document helpers.

``get_database(settings)`` returns a pymongo ``Database`` when ``MONGO_URI`` is set, otherwise an
``EmbeddedDatabase`` in ``settings.store_dir``: the same API subset on one SQLite file, safe for
several threads and processes (see ``jobs.embedded`` for why it is not montydb). Which one, and
what differs between them, is ``jobs.backend``'s to say. ``jobs.selections.SelectionStore`` and
``jobs.jobstore.JobStore`` are written against the pymongo API that both share.
"""

import hashlib
import json
import logging
import sqlite3
import threading
import time
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pymongo.errors import PyMongoError

from common import Settings
from jobs.backend import backend, backend_of

log = logging.getLogger(__name__)

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
"""A job's status: the one declaration (the API model, the store and the dashboard use it)."""
STATUSES: tuple[str, ...] = get_args(Status)
FINAL_STATUSES = ("succeeded", "failed", "cancelled")
STORE_ERRORS = (PyMongoError, sqlite3.Error)
"""Exceptions that mean "the store is down or busy", not "the job is bad"."""


def check_store(settings: Settings) -> None:
    """Stop a service at its start, with one line, when its store cannot work (for the embedded
    store: ``jobs.storefile.check_file``). MongoDB down passes: the service starts and ``/ready``
    answers 503 until it is back."""
    backend(settings).check_at_start()


def check_pages(db) -> None:
    """For ``/ready``: raise when the embedded store's file is damaged anywhere (SQLite's
    ``quick_check``, its verdict reused for a few seconds); MongoDB checks its own files."""
    backend_of(db).check_pages(db)


def checkpoint(db) -> None:
    """On stopping: the embedded store folds its write-ahead log into its file (a copy of the
    file alone then holds every record); MongoDB needs nothing."""
    backend_of(db).checkpoint(db)


def get_database(settings: Settings, check: bool = True):
    """The store's database: MongoDB at ``settings.mongo_uri``, else the embedded store.

    Args:
        settings: Uses ``mongo_uri``, ``mongo_db`` and ``store_dir``.
        check: Ping MongoDB now (a service passes False so that it starts while MongoDB is down
            and answers 503 until it is back).

    Raises:
        ServiceUnavailable: MongoDB does not answer within ``SERVER_SELECTION_MS``
            (``jobs.backend``; or the URI's ``serverSelectionTimeoutMS``), or the store folder
            is unusable.
    """
    return backend(settings).open(check)


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


def request_key(kind: str, run_id: str, request: dict) -> str:
    """The key of a request body as sent (before its checks resolve defaults), apart from
    :func:`inputs_key` so that the two never match by accident."""
    return inputs_key(kind, run_id, {"request_as_sent": request})


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
    doc.pop("publish_key", None)
    doc.pop("request_key", None)
    doc.pop("seq", None)
    for key, value in doc.items():
        if isinstance(value, datetime):  # naive from some drivers, bson's FixedOffset from others
            doc[key] = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return doc
