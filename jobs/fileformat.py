"""The embedded store file's format: the marker that says which layout a file holds, checked by the
start-up check (``jobs.store.check_store``) and by ``EmbeddedDatabase`` when it opens a file.

A file records its format in SQLite's ``PRAGMA user_version``. Format 1 is every collection a
table ``(_id TEXT PRIMARY KEY, doc TEXT NOT NULL)`` of JSON documents. Files written before the
marker existed read 0: they are format 1 when every table has that layout, and get the marker
the first time a version that knows it opens them for writing.
"""

import sqlite3
from contextlib import closing
from pathlib import Path

STORE_FORMAT = 1
"""The format this version reads and writes; a newer version that changes the layout raises it."""

_LAYOUT = [("_id", "TEXT", 0, 1), ("doc", "TEXT", 1, 0)]  # (name, type, not null, primary key)


class StoreFormatError(sqlite3.DatabaseError):
    """The store file, or one of its tables, is not in the format this version writes."""


def format_problem(conn: sqlite3.Connection) -> str | None:
    """Why this version must not use the store file open on ``conn``, else None."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == STORE_FORMAT:
        return None
    if version != 0:
        return f"it is in format {version}, and this version reads format {STORE_FORMAT}"
    tables = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\' ORDER BY name"
    ).fetchall()
    for (table,) in tables:
        layout = conn.execute(
            'SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid', (table,)
        ).fetchall()
        if layout != _LAYOUT:
            columns = ", ".join(name for name, *_ in layout)
            return f"its table {table} has the columns ({columns}), not this version's (_id, doc)"
    return None


def refusal(path: Path, problem: str) -> str:
    """The one line that refuses the store file at ``path`` for ``problem``."""
    return (
        f"the embedded store {path} was written by another version of MLpipeline or another "
        f"program ({problem}); run the version that wrote it, or move the file and its -wal and "
        "-shm files aside (or set STORE_DIR to another folder) to start with an empty store"
    )


def check_format(path: Path) -> None:
    """Raise ``StoreFormatError`` when the existing store file at ``path`` is of another format
    (a read-only look: nothing is marked)."""
    uri = f"{Path(path).absolute().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=5.0)) as conn:
        problem = format_problem(conn)
    if problem is not None:
        raise StoreFormatError(refusal(path, problem))


def mark_format(conn: sqlite3.Connection, path: Path) -> None:
    """Check the format of the store file open on ``conn`` (in a write transaction) and mark an
    unmarked one, a new file or one written before the marker, as ``STORE_FORMAT``.

    Raises:
        StoreFormatError: The file is of another format, or has a table of another layout.
    """
    problem = format_problem(conn)
    if problem is not None:
        raise StoreFormatError(refusal(path, problem))
    if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
        conn.execute(f"PRAGMA user_version = {STORE_FORMAT}")
