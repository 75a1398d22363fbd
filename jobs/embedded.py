"""The embedded document store: the subset of pymongo's API this project uses, on one SQLite file.

Why not montydb, the obvious embedded MongoDB: its SQLite engine opens a connection for every
call and decodes the whole collection for every query (measured: 44 ms per job submission, and
seconds at the 99th percentile with 50 concurrent clients, against 0.1 ms and ~20-50 ms here),
and its ``find_one_and_update`` is not atomic across processes (reported: two processes claiming
200 queued jobs claimed 392). Here each collection is a table of JSON documents with expression
indexes, every write runs in a ``BEGIN IMMEDIATE`` transaction (SQLite's own lock makes claims
atomic across processes; a per-file thread lock queues the threads of one process), and readers
use WAL snapshots, so they never block writers or see half a write.

Supported: ``insert_one``, ``find``/``find_one`` (filters with equality, ``$eq $ne $lt $lte $gt
$gte $in $nin $exists`` on top-level or dotted fields, ``sort``, ``limit``),
``find_one_and_update``/``update_one``/``update_many`` (``$set $unset $inc``), ``delete_many``,
``count_documents``, ``create_index`` (``unique``; missing values never collide) and, on the
database, ``db[name]``, ``command("ping")``, ``drop_collection`` and ``atomic()``. Anything else
raises ``NotImplementedError`` (an option such as ``upsert=True`` too). Datetimes are stored as
ISO-8601 UTC strings and read back as aware datetimes; a string that would read as one is stored
escaped, so it stays a string; ``true`` never matches 1, nor 1 ``true``; an update that changes
nothing is not counted as modified (``jobs.documents``). Range operators and sorting compare
across types in SQLite's order, unlike MongoDB: keep ranges to one type.
"""

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from pymongo.errors import DuplicateKeyError
from pymongo.results import DeleteResult, InsertOneResult, UpdateResult

from jobs.documents import NAME, apply_update, decode, encode, sql_field, sql_filter, sql_order
from jobs.fileformat import STORE_FORMAT, StoreFormatError, format_problem, mark_format, refusal
from jobs.pages import quick_check

_WRITE_LOCKS: dict[Path, threading.RLock] = {}  # one per file: threads queue here, not in SQLite
PAGE_CHECK_EVERY_S = 5.0
"""How long ``check_pages`` reuses its last verdict (a check reads the whole file: ~80 ms for
50,000 job records, 120 MB, from the page cache)."""

_DUPLICATE_KEY = ("SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE")

log = logging.getLogger(__name__)


class EmbeddedCollection:
    """A collection stored as the table ``name`` of the database's SQLite file."""

    def __init__(self, db: "EmbeddedDatabase", name: str) -> None:
        self.database = db
        self.name = name
        self._table = f'"{name}"'

    def insert_one(self, document: dict) -> InsertOneResult:
        document.setdefault("_id", uuid.uuid4().hex)
        doc = dict(document)
        with self.database.atomic() as conn:
            try:
                conn.execute(
                    f"INSERT INTO {self._table}(_id, doc) VALUES (?, ?)",
                    (doc.pop("_id"), encode(doc)),
                )
            except sqlite3.IntegrityError as exc:
                raise self._refused(exc) from exc
        return InsertOneResult(document["_id"], True)

    def _refused(self, exc: sqlite3.IntegrityError) -> Exception:
        """The error of a write that SQLite refused: ``DuplicateKeyError`` for a unique key (the
        ``_id`` or a unique index), as pymongo raises; any other constraint (``NOT NULL`` of a
        column this version does not write) means that the table is of another layout."""
        if exc.sqlite_errorname in _DUPLICATE_KEY:
            return DuplicateKeyError(f"duplicate key in {self.name}: {exc}")
        return StoreFormatError(
            refusal(self.database.path, f"its table {self.name} refused a record: {exc}")
        )

    def _rows(self, conn, filter, sort=None, limit=0) -> list[tuple[str, str]]:
        """The ``(_id, JSON text)`` of the matching rows."""
        where, params = sql_filter(filter)
        sql = f"SELECT _id, doc FROM {self._table} WHERE {where}{sql_order(sort)}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return conn.execute(sql, params).fetchall()

    def _select(self, conn, filter, sort=None, limit=0) -> list[dict]:
        return [_document(i, d) for i, d in self._rows(conn, filter, sort, limit)]

    def find(self, filter: dict | None = None, *, sort=None, limit: int = 0) -> list[dict]:
        """The matching documents (a list, not a cursor)."""
        return self._select(self.database.connection(), filter, sort, limit)

    def find_one(self, filter=None, *, sort=None) -> dict | None:
        if filter is not None and not isinstance(filter, dict):
            filter = {"_id": filter}
        found = self.find(filter, sort=sort, limit=1)
        return found[0] if found else None

    def count_documents(self, filter: dict) -> int:
        where, params = sql_filter(filter)
        sql = f"SELECT COUNT(*) FROM {self._table} WHERE {where}"
        return self.database.connection().execute(sql, params).fetchone()[0]

    def _update(self, filter, update, sort=None, limit=0) -> list[tuple[dict, dict, bool]]:
        """``(before, after, modified)`` of each matching document, updated in one transaction
        (one that the update leaves as it was is not written, and not ``modified``)."""
        with self.database.atomic() as conn:
            changed = []
            for _id, stored in self._rows(conn, filter, sort, limit):
                new = apply_update(stored, update)
                if new != stored:
                    try:
                        conn.execute(f"UPDATE {self._table} SET doc = ? WHERE _id = ?", (new, _id))
                    except sqlite3.IntegrityError as exc:
                        raise self._refused(exc) from exc
                changed.append((_document(_id, stored), _document(_id, new), new != stored))
            return changed

    def find_one_and_update(
        self,
        filter: dict,
        update: dict,
        *,
        sort=None,
        return_document: bool = False,
        **options,
    ) -> dict | None:
        """Atomically update the first match; the document before (or after) the update."""
        _refuse_options(options)
        changed = self._update(filter, update, sort, limit=1)
        if not changed:
            return None
        return changed[0][1] if return_document else changed[0][0]

    def update_one(self, filter: dict, update: dict, **options) -> UpdateResult:
        _refuse_options(options)
        return _update_result(self._update(filter, update, limit=1))

    def update_many(self, filter: dict, update: dict, **options) -> UpdateResult:
        _refuse_options(options)
        return _update_result(self._update(filter, update))

    def delete_many(self, filter: dict) -> DeleteResult:
        where, params = sql_filter(filter)
        with self.database.atomic() as conn:
            n = conn.execute(f"DELETE FROM {self._table} WHERE {where}", params).rowcount
        return DeleteResult({"n": n}, True)

    def create_index(self, keys, unique: bool = False, **_ignored) -> str:
        """An SQLite expression index (``sparse`` is implied: missing values never collide)."""
        if isinstance(keys, str):
            keys = [(keys, 1)]
        name = "_".join([self.name, *(k for k, _ in keys)]).replace(".", "_")
        columns = ", ".join(f"{sql_field(k)}{' DESC' if d < 0 else ''}" for k, d in keys)
        sql = f'CREATE {"UNIQUE " if unique else ""}INDEX IF NOT EXISTS "{name}"'
        with self.database.atomic() as conn:
            conn.execute(f"{sql} ON {self._table}({columns})")
        return name

    def __getattr__(self, name: str):
        raise NotImplementedError(f"the embedded store's collections have no {name}()")


def _document(_id: str, stored: str) -> dict:
    return {"_id": _id, **decode(json.loads(stored))}


def _update_result(changed: list[tuple[dict, dict, bool]]) -> UpdateResult:
    modified = sum(was_modified for *_, was_modified in changed)
    return UpdateResult({"n": len(changed), "nModified": modified}, True)


def _refuse_options(options: dict) -> None:
    """Raise ``NotImplementedError`` for a pymongo option the embedded store does not offer
    (``upsert=True``, ``projection``, ...); one left at its default is fine."""
    for name, value in options.items():
        if value not in (None, False):
            raise NotImplementedError(f"the embedded store does not support {name}={value!r}")


def database_file(folder: Path, name: str) -> Path:
    """The file of the embedded database ``name`` in ``folder``."""
    return Path(folder) / f"{name}.sqlite3"


class EmbeddedDatabase:
    """A database in ``folder/<name>.sqlite3``, safe for many threads and processes.

    Args:
        folder: Created when missing.
        name: Database name (the file name).
        lock_timeout: Seconds a write waits for another process's write before failing with
            ``sqlite3.OperationalError`` ("database is locked").
    """

    def __init__(self, folder: str | Path, name: str = "mlpipeline", lock_timeout: float = 10.0):
        if not NAME.match(name):
            raise ValueError(f"database name must be letters, digits and _, got {name!r}")
        self.folder = Path(folder).resolve()
        self.name = name
        self.lock_timeout = lock_timeout
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = database_file(self.folder, name)
        self._local = threading.local()
        self._tables: set[str] = set()
        self._write_lock = _WRITE_LOCKS.setdefault(self.path, threading.RLock())
        self._identity: tuple[int, int] | None = None
        self._pages_lock = threading.Lock()
        self._pages_verdict: tuple[float, str | None] = (float("-inf"), None)  # (when, problem)
        conn = self.connection()
        conn.execute("PRAGMA journal_mode=WAL")
        stat = os.stat(self.path)
        self._identity = (stat.st_dev, stat.st_ino)
        if conn.execute("PRAGMA user_version").fetchone()[0] != STORE_FORMAT:
            self._mark_format()

    def _mark_format(self) -> None:
        """Refuse a file of another format (``StoreFormatError``); mark a new file, or one
        written before the format marker, as this version's format."""
        try:
            with self.atomic() as conn:
                mark_format(conn, self.path)
        except sqlite3.OperationalError:  # read-only or busy: checked, and marked another time
            if (problem := format_problem(self.connection())) is not None:
                raise StoreFormatError(refusal(self.path, problem)) from None

    def check_file(self) -> None:
        """Raise ``sqlite3.OperationalError`` unless the file opened is still the one on disk.

        SQLite keeps using a deleted or replaced file through its open descriptors: every write
        would succeed and be lost at the next start. This check (a ``stat``) makes them fail.
        """
        if self._identity is None:
            return
        try:
            stat = os.stat(self.path)
            found = (stat.st_dev, stat.st_ino)
        except FileNotFoundError:
            found = None
        if found != self._identity:
            raise sqlite3.OperationalError(
                f"the store file {self.path} was deleted or replaced since the service opened "
                "it, so what it writes now would be lost; restart the service (it opens or "
                "creates the file again) and restore the file from a backup if you have one."
            )

    def check_pages(self, max_age: float = PAGE_CHECK_EVERY_S) -> None:
        """Raise ``sqlite3.DatabaseError`` when SQLite's ``quick_check`` finds the file damaged
        (pages overwritten: a probe's own table can be intact while job reads fail). The verdict
        is reused for ``max_age`` seconds, so that a readiness probe stays cheap; other errors
        (busy, read-only, deleted) are raised as met, never kept."""
        with self._pages_lock:  # concurrent probes share one check
            checked_at, problem = self._pages_verdict
            if time.monotonic() - checked_at >= max_age:
                self.check_file()
                problem = None
                try:  # a connection of its own: another's page cache could hide the damage
                    found = quick_check(self.path, "rw", 1, self.lock_timeout)
                    if found is not None:
                        problem = f"database disk image is malformed ({found})"
                except sqlite3.OperationalError:  # busy, read-only, I/O: not a verdict on pages
                    raise
                except sqlite3.DatabaseError as exc:  # SQLITE_CORRUPT, SQLITE_NOTADB
                    problem = str(exc)
                self._pages_verdict = (time.monotonic(), problem)
        if problem is not None:
            raise sqlite3.DatabaseError(problem)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; writes go through ``atomic()``), after checking
        that the file is still the one opened."""
        self.check_file()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.lock_timeout, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def atomic(self):
        """A write transaction; calls inside it (in this thread) run as one, across processes.
        Refused while the last page check (``check_pages``, the readiness probe's) found the
        file damaged: a job accepted and recorded there would be lost with it."""
        if (problem := self._pages_verdict[1]) is not None:
            raise sqlite3.DatabaseError(problem)
        conn = self.connection()
        if conn.in_transaction:  # nested: part of the enclosing transaction
            yield conn
            return
        if not self._write_lock.acquire(timeout=self.lock_timeout):
            raise sqlite3.OperationalError("database is locked (by another thread)")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            self._write_lock.release()

    def __getitem__(self, name: str) -> EmbeddedCollection:
        if not NAME.match(name):
            raise ValueError(f"collection name must be letters, digits and _, got {name!r}")
        if name not in self._tables:
            sql = f'CREATE TABLE IF NOT EXISTS "{name}" (_id TEXT PRIMARY KEY, doc TEXT NOT NULL)'
            with self.atomic() as conn:
                conn.execute(sql)
            self._tables.add(name)
        return EmbeddedCollection(self, name)

    get_collection = __getitem__

    def command(self, command: str) -> dict:
        if command != "ping":
            raise NotImplementedError(f"the embedded store answers only 'ping', not {command!r}")
        self.connection().execute("SELECT 1").fetchone()
        return {"ok": 1.0}

    def list_collection_names(self) -> list[str]:
        rows = self.connection().execute("SELECT name FROM sqlite_master WHERE type='table'")
        return [name for (name,) in rows]

    def drop_collection(self, name: str) -> None:
        with self.atomic() as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{name}"')
        self._tables.discard(name)

    def checkpoint(self) -> None:
        """Fold the write-ahead log (``<name>.sqlite3-wal``) into the main file and empty it, so
        that a copy of the main file alone (a backup of a stopped service) holds every record.
        Services call it when they stop; a failure (another process reading) is logged only."""
        try:
            self.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("could not fold %s-wal into the store file: %s", self.path, exc)

    def __repr__(self) -> str:
        return f"EmbeddedDatabase({str(self.folder)!r}, {self.name!r})"
