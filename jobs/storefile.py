"""The embedded store's file: its start-up check, its opening, and what its failures say.

What only the embedded store (one SQLite file, ``jobs.embedded``) needs, apart from the seam that
tells it from MongoDB (``jobs.backend.EmbeddedBackend`` calls these): the messages name the file
or its folder and what an operator does about it, never a record's content.
"""

import re
import sqlite3
import tempfile
import time
from pathlib import Path

from common import ServiceUnavailable, Settings, StartupError
from jobs.embedded import EmbeddedDatabase, database_file
from jobs.fileformat import StoreFormatError, check_format
from jobs.pages import quick_check


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
"""An empty store file older than this is refused at start (``check_file``); a younger one may
be a store another service is creating this moment."""


def store_file(settings: Settings) -> Path:
    """The embedded store's file (``EmbeddedDatabase.path`` of these settings)."""
    return database_file(settings.store_dir, settings.mongo_db)


def check_file(settings: Settings) -> None:
    """Stop a service at its start, with one line, when the embedded store cannot work: its
    folder is a file or not writable (``StartupError``: the store keeps its write-ahead log
    beside its file), its file is damaged anywhere (``StoreDamaged``; SQLite's
    ``quick_check``, milliseconds for a store of job records), or of another format than this
    version's (``StoreIncompatible``: ``jobs.fileformat``)."""
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


def open_file(settings: Settings) -> EmbeddedDatabase:
    """The embedded store in ``settings.store_dir``.

    Raises:
        ServiceUnavailable: The file is of another format, damaged, or cannot be opened.
    """
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


def is_damage(exc: Exception) -> bool:
    """Whether an SQLite error says the store's file is damaged (not busy, full or read-only,
    and not one record edited by hand: "malformed JSON", "Could not decode" of one value)."""
    text = str(exc)
    return "database disk image is malformed" in text or "file is not a database" in text


def without_content(text: str) -> str:
    """An SQLite error's text without the value it quotes (a record's content)."""
    return re.sub(r" with text '.*", " (its text left out)", text, flags=re.DOTALL)


def damaged(settings: Settings, exc: Exception | str) -> ServiceUnavailable:
    """The error for a damaged store file: how to restore it (never a record's content)."""
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


def file_unavailable(settings: Settings, exc: Exception) -> ServiceUnavailable:
    """The user-facing error for a failed operation on the embedded store: read-only, busy, of
    another format, gone, damaged, a record that is not JSON, or anything else."""
    where = f"the embedded store in {settings.store_dir}"
    text = without_content(str(exc))  # never a record's content in an answer
    if "readonly" in text or "read-only" in text:
        return ServiceUnavailable(
            f"{where} is read-only ({text}): the service cannot record jobs; make STORE_DIR and "
            "its files writable by the service's user, or set MONGO_URI to a MongoDB server."
        ).needs_operator()
    if "locked" in text:
        return ServiceUnavailable(
            f"{where} is busy ({text}): another process holds its write lock too long; retry, "
            "or set MONGO_URI to a MongoDB server."
        )
    if isinstance(exc, StoreFormatError):  # names the file and what to do
        return ServiceUnavailable(text).needs_operator()
    if "deleted or replaced" in text:
        return ServiceUnavailable(f"{where} is gone: {text}").needs_operator()
    if is_damage(exc):  # the restore advice, and no record's content in the answer
        return damaged(settings, exc)
    if "malformed JSON" in text or "Could not decode" in text:  # one record, or the file?
        name = store_file(settings)
        try:  # overwritten pages read as bad JSON too, and the one-record query then fails
            if found := quick_check(name, "ro", 1):
                return damaged(settings, f"database disk image is malformed ({found})")
        except sqlite3.DatabaseError as damage:  # not a database any more, or busy
            if is_damage(damage):
                return damaged(settings, damage)
        return ServiceUnavailable(
            f"{where}: a record is not valid JSON text ({text}), edited by hand or damaged; find "
            f'it with sqlite3 {name} "SELECT _id FROM jobs WHERE NOT json_valid(doc)" (and in '
            "selections), then fix or delete it"
        ).needs_operator()
    return ServiceUnavailable(
        f"{where} failed ({type(exc).__name__}: {text}); check STORE_DIR (disk full, "
        "permissions), or set MONGO_URI to a MongoDB server."
    )
