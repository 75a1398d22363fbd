"""The MongoDB store: the database and document helpers.

``get_database(settings)`` returns a pymongo ``Database`` when ``MONGO_URI`` is set, otherwise an
``EmbeddedDatabase`` in ``settings.store_dir``: the same API subset on one SQLite file, safe for
several threads and processes (see ``jobs.embedded`` for why it is not montydb).
``jobs.selections.SelectionStore`` and ``jobs.jobstore.JobStore`` are written against the
pymongo API that both share.
"""

import hashlib
import json
import logging
import re
import sqlite3
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import parse_qs, urlsplit

import pymongo
from pymongo.errors import ConfigurationError, PyMongoError

from common import ServiceUnavailable, Settings, StartupError, redact_uri
from jobs.embedded import EmbeddedDatabase, database_file
from jobs.fileformat import StoreFormatError, check_format
from jobs.pages import quick_check

log = logging.getLogger(__name__)

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
"""A job's status: the one declaration (the API model, the store and the dashboard use it)."""
STATUSES: tuple[str, ...] = get_args(Status)
FINAL_STATUSES = ("succeeded", "failed", "cancelled")
STORE_ERRORS = (PyMongoError, sqlite3.Error)
"""Exceptions that mean "the store is down or busy", not "the job is bad"."""


class StoreDamaged(SystemExit):
    """The embedded store's file is damaged: a ``SystemExit`` (as ``InsecureToken``), so that a
    service stops at start-up with one line saying so instead of a traceback."""

    def __str__(self) -> str:
        return str(self.code)


class StoreIncompatible(SystemExit):
    """The embedded store's file is of another format (a newer version's): a ``SystemExit``, so
    that a service stops at start-up with one line instead of failing every write."""

    def __str__(self) -> str:
        return str(self.code)


EMPTY_STORE_GRACE_S = 5.0
"""An empty store file older than this is refused at start (``check_store``); a younger one may
be a store another service is creating this moment."""


def store_file(settings: Settings) -> Path:
    """The embedded store's file (``EmbeddedDatabase.path`` of these settings)."""
    return database_file(settings.store_dir, settings.mongo_db)


def check_store(settings: Settings) -> None:
    """Stop a service at its start, with one line, when the embedded store cannot work: its
    folder is a file or not writable (``StartupError``: the store keeps its write-ahead log
    beside its file), its file is damaged anywhere (``StoreDamaged``; SQLite's
    ``quick_check``, milliseconds for a store of job records), or of another format than this
    version's (``StoreIncompatible``: ``jobs.fileformat``). MongoDB down passes: the service
    starts and ``/ready`` answers 503 until it is back."""
    if settings.mongo_uri:
        return
    folder = Path(settings.store_dir)
    if folder.exists() and not folder.is_dir():
        raise StartupError(
            f"STORE_DIR {folder} is a file, not a folder: set STORE_DIR to a writable folder for "
            "the embedded store, or MONGO_URI to a MongoDB server"
        )
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    try:  # a real write: permissions, a read-only mount (root too), a file on the way
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise StartupError(
            f"STORE_DIR {folder} cannot be written by this service ({existing}: "
            f"{exc.strerror or exc}): the embedded store writes its file and write-ahead log "
            "there; make it writable, set STORE_DIR to a writable folder, or MONGO_URI to a "
            "MongoDB server"
        ) from exc
    path = store_file(settings)
    if not path.is_file():
        return
    # Empty and not being made right now: what a failed copy or restore leaves; SQLite would
    # take it for a new store and the job history and audit trail would start afresh unsaid
    stat = path.stat()
    if stat.st_size == 0 and time.time() - stat.st_mtime > EMPTY_STORE_GRACE_S:
        raise StoreDamaged(
            f"the embedded store {path} is empty (0 bytes), as a copy or restore that failed "
            "leaves it: restore it and its -wal file from a backup, or delete it to start an "
            "empty store (job records and selections start afresh)"
        )
    try:
        problem = quick_check(path, "ro", 3)
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):
            raise StoreDamaged(str(damaged(settings, exc))) from exc
        return
    if problem is not None:
        raise StoreDamaged(str(damaged(settings, problem)))
    try:
        check_format(path)
    except StoreFormatError as exc:
        raise StoreIncompatible(str(exc)) from exc
    except sqlite3.OperationalError:  # busy: the store's own opening checks it again
        pass


def is_damage(exc: Exception) -> bool:
    """Whether an SQLite error says the store's file is damaged (not busy, full or read-only,
    and not one record edited by hand: "malformed JSON", "Could not decode" of one value)."""
    text = str(exc)
    return "database disk image is malformed" in text or "file is not a database" in text


def without_content(text: str) -> str:
    """An SQLite error's text without the value it quotes (a record's content)."""
    return re.sub(r" with text '.*", " (its text left out)", text, flags=re.DOTALL)


def damaged(settings: Settings, exc: Exception | str) -> ServiceUnavailable:
    name = store_file(settings)
    why = without_content(str(exc))
    return ServiceUnavailable(
        f"the embedded store {name} is damaged ({why}); stop the services that use it, move it "
        "and its -wal and -shm files aside, and restore them from a backup (or start with an "
        "empty store: job records and selections start afresh)."
    ).needs_operator()


def _unopenable(settings: Settings, exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"the embedded store in {settings.store_dir} cannot be opened ({exc}); "
        "set STORE_DIR to a writable folder or MONGO_URI to a MongoDB server."
    ).needs_operator()


def check_pages(db) -> None:
    """For ``/ready``: raise when the embedded store's file is damaged anywhere (SQLite's
    ``quick_check``, its verdict reused for a few seconds); MongoDB checks its own files."""
    if isinstance(db, EmbeddedDatabase):
        db.check_pages()


def checkpoint(db) -> None:
    """On stopping: the embedded store folds its write-ahead log into its file (a copy of the
    file alone then holds every record); MongoDB needs nothing."""
    if isinstance(db, EmbeddedDatabase):
        db.checkpoint()


def get_database(settings: Settings, check: bool = True):
    """The store's database: MongoDB at ``settings.mongo_uri``, else the embedded store.

    Args:
        settings: Uses ``mongo_uri``, ``mongo_db`` and ``store_dir``.
        check: Ping MongoDB now (a service passes False so that it starts while MongoDB is down
            and answers 503 until it is back).

    Raises:
        ServiceUnavailable: MongoDB does not answer within ``SERVER_SELECTION_MS`` (or the
            URI's ``serverSelectionTimeoutMS``), or the store folder is unusable.
    """
    if not settings.mongo_uri:
        try:
            return EmbeddedDatabase(settings.store_dir, settings.mongo_db)
        except StoreFormatError as exc:
            raise ServiceUnavailable(str(exc)).needs_operator() from exc
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise _unopenable(settings, exc) from exc
            raise damaged(settings, exc) from exc
        except (OSError, sqlite3.Error) as exc:
            raise _unopenable(settings, exc) from exc
    uri = redact_uri(settings.mongo_uri)
    try:
        db = _mongo_client(settings.mongo_uri)[settings.mongo_db]
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


_clients: dict[str, pymongo.MongoClient] = {}
_clients_lock = threading.Lock()


SERVER_SELECTION_MS = 3000
"""How long a store call waits for an unreachable MongoDB before it is an outage (503), unless
``MONGO_URI`` sets ``serverSelectionTimeoutMS`` (a URI option wins over this default)."""


def _mongo_client(uri: str) -> pymongo.MongoClient:
    """One client per URI and process, as pymongo asks: a client holds a connection pool and
    monitor threads until it is closed, and the dashboard opens the store at every page view
    (a client each leaked them). It reconnects by itself after an outage.

    Raises:
        ConfigurationError: ``uri`` is no MongoDB URI (nothing is kept).
    """
    with _clients_lock:
        client = _clients.get(uri)
        if client is None:
            # pymongo lets a keyword win over the URI's option: passed only when the URI has none.
            query = parse_qs(urlsplit(uri).query)
            timeout = (
                {}
                if any(k.lower() == "serverselectiontimeoutms" for k in query)
                else {"serverSelectionTimeoutMS": SERVER_SELECTION_MS}
            )
            client = pymongo.MongoClient(uri, tz_aware=True, **timeout)
            _clients[uri] = client
        return client


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
