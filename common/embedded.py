"""The embedded document store: montydb's SQLite engine made safe for threads and processes.

montydb alone is not safe across processes: its ``find_one_and_update`` reads and then writes
without a transaction (two processes claiming 200 queued jobs claimed 392), and two processes can
race to create a collection's table. Here every call holds a thread lock plus a
``filelock.FileLock`` in the store folder, so each call (and each ``atomic()`` block) runs alone.
"""

import threading
from pathlib import Path

import filelock


class _LockedCollection:
    """A montydb collection whose every call holds the store lock; ``find`` returns a list."""

    def __init__(self, collection, lock: "_StoreLock") -> None:
        self._col = collection
        self._lock = lock

    def find(self, *args, **kwargs) -> list[dict]:
        with self._lock:
            return list(self._col.find(*args, **kwargs))

    def create_index(self, *args, **kwargs) -> None:
        """montydb has no indexes; every query scans the collection."""

    def __getattr__(self, name: str):
        attr = getattr(self._col, name)
        if not callable(attr):
            return attr

        def locked(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return locked


class _StoreLock:
    """A thread lock plus an inter-process file lock; re-entrant within one thread."""

    def __init__(self, path: Path, timeout: float) -> None:
        self._thread_lock = threading.RLock()
        # thread_local=False: the RLock already keeps other threads out, and the file lock must
        # be re-entrant in the thread that holds it.
        self._file_lock = filelock.FileLock(
            path, timeout=timeout, thread_local=False, poll_interval=0.002
        )
        self.path = path
        self.timeout = timeout

    def __enter__(self) -> None:
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise filelock.Timeout(str(self.path))
        try:
            self._file_lock.acquire()
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *exc) -> None:
        self._file_lock.release()
        self._thread_lock.release()


class EmbeddedDatabase:
    """A montydb (SQLite) database in ``folder``, safe for several threads and processes.

    Offers the subset of pymongo's ``Database`` that this project uses: ``db[name]``,
    ``command("ping")``, ``drop_collection`` and ``atomic()`` (a context in which several calls
    run as one, used where MongoDB needs no lock).
    """

    def __init__(self, folder: str | Path, name: str = "mlpipeline", lock_timeout: float = 10.0):
        from montydb import MontyClient, set_storage

        self.folder = Path(folder).resolve()
        self.name = name
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = _StoreLock(self.folder / ".store.lock", lock_timeout)
        with self._lock:
            if not (self.folder / ".monty.storage").exists():
                set_storage(str(self.folder), storage="sqlite", use_bson=True)
            self._db = MontyClient(str(self.folder), tz_aware=True)[name]

    def __getitem__(self, name: str) -> _LockedCollection:
        return _LockedCollection(self._db[name], self._lock)

    def atomic(self):
        return self._lock

    def command(self, command: str) -> dict:
        if command != "ping":
            raise ValueError(f"the embedded store only answers 'ping', not {command!r}")
        with self._lock:
            self._db.list_collection_names()
        return {"ok": 1.0}

    def drop_collection(self, name: str) -> None:
        with self._lock:
            self._db.drop_collection(name)

    def __repr__(self) -> str:
        return f"EmbeddedDatabase({str(self.folder)!r}, {self.name!r})"
