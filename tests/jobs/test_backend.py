"""The store's backend seam (``jobs.backend``): which store the settings and a database name,
where it is (credentials hidden), its outage words, and the embedded store's write transaction."""

import sqlite3

import pymongo
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from jobs.backend import EmbeddedBackend, MongoBackend, backend, backend_of
from jobs.embedded import EmbeddedDatabase
from tests.jobs.conftest import make_settings

SECRET_URI = "mongodb://bob:s3cret@db.example:27017/jobs?authSource=admin&password=pw2"


def test_a_mongo_uri_names_mongodb_with_its_credentials_hidden(tmp_path):
    store = backend(make_settings(tmp_path, mongo_uri=SECRET_URI))
    assert isinstance(store, MongoBackend)
    assert store.name == "mongodb"
    assert store.location == "mongodb://***@db.example:27017/jobs?authSource=admin&password=***"
    down = str(store.unavailable(ServerSelectionTimeoutError("no server")))
    late = str(store.late(3.5))
    assert down == (
        f"MongoDB at {store.location} is unreachable (ServerSelectionTimeoutError); start "
        "MongoDB or fix MONGO_URI (unset it to use the embedded store)."
    )
    assert late == (
        f"MongoDB at {store.location} did not take a write within 3.5 s; check that it runs and "
        "is not overloaded"
    )
    assert not any(secret in text for text in (down, late) for secret in ("s3cret", "pw2"))


def test_a_mongodb_database_takes_no_lock_and_keeps_its_own_files(tmp_path):
    # connect=False: the client never reaches the host (none is needed for these hooks)
    client = pymongo.MongoClient("mongodb://bob:s3cret@db.example:27017", connect=False)
    try:
        db = client["jobs"]
        assert backend_of(db) is MongoBackend
        with MongoBackend.atomic(db) as held:
            assert held is None  # a no-op: no transaction to hold
        MongoBackend.check_pages(db)
        MongoBackend.checkpoint(db)
    finally:
        client.close()


def test_without_a_mongo_uri_the_store_is_the_embedded_one_in_its_folder(tmp_path):
    settings = make_settings(tmp_path)
    store = backend(settings)
    assert isinstance(store, EmbeddedBackend)
    assert store.name == "embedded"
    assert store.location == str(tmp_path / "store")
    assert str(store.late(3.5)) == (
        f"the embedded store in {tmp_path / 'store'} did not take a write within 3.5 s: another "
        "process holds its write lock; retry, or set MONGO_URI to a MongoDB server"
    )
    busy = str(store.unavailable(sqlite3.OperationalError("database is locked")))
    assert busy.startswith(f"the embedded store in {tmp_path / 'store'} is busy (database is")


def test_the_embedded_atomic_is_one_write_of_the_database(tmp_path):
    db = backend(make_settings(tmp_path)).open(check=True)
    assert isinstance(db, EmbeddedDatabase)
    hooks = backend_of(db)
    assert hooks is EmbeddedBackend
    col = db["jobs"]
    with pytest.raises(RuntimeError), hooks.atomic(db) as conn:
        assert conn.in_transaction
        col.insert_one({"_id": "a"})
        col.insert_one({"_id": "b"})
        raise RuntimeError("a failure between the two writes and the end")
    assert col.count_documents({}) == 0  # both rolled back, as one write
    with hooks.atomic(db):
        col.insert_one({"_id": "a"})
        col.insert_one({"_id": "b"})
    assert col.count_documents({}) == 2
    hooks.check_pages(db)  # intact
    hooks.checkpoint(db)
    assert not db.path.with_name(db.path.name + "-wal").stat().st_size  # folded into the file
