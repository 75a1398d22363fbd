"""Which store holds the job records: MongoDB at ``MONGO_URI``, else the embedded store.

The one place that tells the backends apart; the store's modules ask a ``Backend`` instead of
testing ``settings.mongo_uri`` or the database's type each on their own:

- ``backend(settings)``: the backend that ``settings`` name, for what needs the settings: its
  name (``/ready``'s ``store``), its location safe to show, opening it, its start-up check and
  the words for its outages.
- ``backend_of(db)``: the backend class of an opened database, for what only the database does:
  ``atomic(db)`` (several calls as one write), ``check_pages(db)`` and ``checkpoint(db)``.

A third backend is one more ``Backend`` subclass, and a line in each of the two functions.
"""

import threading
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pymongo
from pymongo.errors import ConfigurationError, PyMongoError

from common import ServiceUnavailable, Settings, redact_uri
from jobs import storefile
from jobs.embedded import EmbeddedDatabase


class Backend(ABC):
    """The store that ``settings`` name: what differs between MongoDB and the embedded store.

    The database hooks are static (``backend_of(db).atomic(db)``): a database opened elsewhere
    (a test's, a tool's) has no settings, only its type.
    """

    name: ClassVar[str]
    """What ``/ready`` reports as its ``store``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the store is, safe to show (credentials hidden)."""

    @abstractmethod
    def open(self, check: bool) -> Any:
        """The store's database (the pymongo ``Database`` API subset of ``jobs.embedded``).

        Args:
            check: Make sure now that it answers (a service passes False, so that it starts
                while its store is down and answers 503 until it is back).

        Raises:
            ServiceUnavailable: The store cannot be reached or opened.
        """

    @abstractmethod
    def check_at_start(self) -> None:
        """Stop a service at its start, with one line, when the store cannot work; a store that
        is only down passes (``/ready`` answers 503 until it is back)."""

    @abstractmethod
    def unavailable(self, exc: Exception) -> ServiceUnavailable:
        """The user-facing error for ``exc``, raised by an operation on this store."""

    @abstractmethod
    def late(self, within_s: float) -> ServiceUnavailable:
        """The error for a probe write that did not end within ``within_s`` seconds."""

    @staticmethod
    @abstractmethod
    def atomic(db: Any) -> AbstractContextManager:
        """Several calls on ``db`` as one write, across threads and processes."""

    @staticmethod
    @abstractmethod
    def check_pages(db: Any) -> None:
        """For ``/ready``: raise when ``db``'s file is damaged anywhere."""

    @staticmethod
    @abstractmethod
    def checkpoint(db: Any) -> None:
        """On stopping: leave every record of ``db`` in its file."""


SERVER_SELECTION_MS = 3000
"""How long a store call waits for an unreachable MongoDB before it is an outage (503), unless
``MONGO_URI`` sets ``serverSelectionTimeoutMS`` (a URI option wins over this default)."""

_clients: dict[str, pymongo.MongoClient] = {}
_clients_lock = threading.Lock()


class MongoBackend(Backend):
    """MongoDB at ``settings.mongo_uri``: its writes used here are atomic, and a unique index
    keeps one active job per inputs, so it needs no lock of its own."""

    name = "mongodb"

    @property
    def location(self) -> str:
        return redact_uri(self.settings.mongo_uri)

    def open(self, check: bool) -> Any:
        uri = self.location
        try:
            db = _mongo_client(self.settings.mongo_uri)[self.settings.mongo_db]
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

    def check_at_start(self) -> None:
        """Nothing: MongoDB down is an outage, answered 503 until it is back."""

    def unavailable(self, exc: Exception) -> ServiceUnavailable:
        return mongo_unavailable(self.location, exc)

    def late(self, within_s: float) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"MongoDB at {self.location} did not take a write within "
            f"{within_s:g} s; check that it runs and is not overloaded"
        )

    @staticmethod
    def atomic(db: Any) -> AbstractContextManager:
        """No lock: each write used here is atomic, and a unique index keeps one active job per
        inputs."""
        return nullcontext()

    @staticmethod
    def check_pages(db: Any) -> None:
        """Nothing: MongoDB checks its own files."""

    @staticmethod
    def checkpoint(db: Any) -> None:
        """Nothing: MongoDB keeps its own files."""


def mongo_unavailable(uri: str, exc: Exception) -> ServiceUnavailable:
    """The error for an unreachable MongoDB at ``uri`` (credentials already hidden)."""
    return ServiceUnavailable(
        f"MongoDB at {uri} is unreachable ({type(exc).__name__}); start MongoDB or fix MONGO_URI "
        "(unset it to use the embedded store)."
    )


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


class EmbeddedBackend(Backend):
    """The embedded store: one SQLite file in ``settings.store_dir`` (``jobs.embedded``), whose
    file this service checks, and whose writes of several calls need its transaction."""

    name = "embedded"

    @property
    def location(self) -> str:
        return str(self.settings.store_dir)

    def open(self, check: bool) -> EmbeddedDatabase:
        return storefile.open_file(self.settings)  # opening it checks it

    def check_at_start(self) -> None:
        storefile.check_file(self.settings)

    def unavailable(self, exc: Exception) -> ServiceUnavailable:
        return storefile.file_unavailable(self.settings, exc)

    def late(self, within_s: float) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"the embedded store in {self.location} did not take a write within "
            f"{within_s:g} s: another process holds its write lock; retry, or set MONGO_URI "
            "to a MongoDB server"
        )

    @staticmethod
    def atomic(db: EmbeddedDatabase) -> AbstractContextManager:
        return db.atomic()

    @staticmethod
    def check_pages(db: EmbeddedDatabase) -> None:
        db.check_pages()  # SQLite's quick_check, its verdict reused for a few seconds

    @staticmethod
    def checkpoint(db: EmbeddedDatabase) -> None:
        db.checkpoint()  # the write-ahead log folded in: a copy of the file holds every record


def backend(settings: Settings) -> Backend:
    """The backend that ``settings`` name: MongoDB when ``mongo_uri`` is set, else embedded."""
    if settings.mongo_uri:
        return MongoBackend(settings)
    return EmbeddedBackend(settings)


def backend_of(db: Any) -> type[Backend]:
    """The backend class of the opened database ``db``, for its static hooks. Not by an
    attribute: a pymongo ``Database`` answers any attribute with a collection."""
    if isinstance(db, EmbeddedDatabase):
        return EmbeddedBackend
    return MongoBackend
