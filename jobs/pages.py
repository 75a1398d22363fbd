"""SQLite's page check of the embedded store's file, shared by the start-up check
(``jobs.store.check_store``) and the readiness probe (``EmbeddedDatabase.check_pages``)."""

import sqlite3
from contextlib import closing
from pathlib import Path


def quick_check(path: Path, mode: str, limit: int, timeout: float = 5.0) -> str | None:
    """SQLite's ``quick_check`` of the file at ``path`` on a connection of its own, opened
    ``mode`` (``ro``; ``rw``: never creating a file deleted meanwhile): None when the file is
    sound, else up to ``limit`` of its problems in one line. Opened as a file URI, so that a
    ``#`` or ``?`` in the path is part of it. SQLite's errors (busy, not a database) are raised."""
    uri = f"{Path(path).absolute().as_uri()}?mode={mode}"
    with closing(sqlite3.connect(uri, uri=True, timeout=timeout)) as conn:
        conn.execute("PRAGMA schema_version").fetchone()
        found = [row[0] for row in conn.execute(f"PRAGMA quick_check({int(limit)})")]
    if found == ["ok"]:
        return None
    return "; ".join(ln for p in found for ln in p.splitlines() if ln[:3] != "***")[:300]
