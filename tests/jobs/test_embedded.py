"""The embedded store: its pymongo subset behaves as MongoDB does, and processes share it safely.

This module imports little, so that the processes it spawns start quickly.
"""

import multiprocessing
import os
import shutil
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import APIRouter
from pymongo.errors import DuplicateKeyError

from common import ServiceUnavailable, Settings
from jobs import JobStore, SelectionStore, create_job_app, get_database
from jobs.embedded import EmbeddedDatabase
from runs.schemas import SelectionRecord


@pytest.fixture
def col(tmp_path):
    col = EmbeddedDatabase(tmp_path / "store")["things"]
    for i, (colour, size) in enumerate([("red", 1), ("blue", 2), (None, 3), ("red", 4)]):
        doc = {"_id": f"t{i}", "size": size, "meta": {"n": i}}
        if colour is not None:
            doc["colour"] = colour
        col.insert_one(doc)
    return col


def ids(docs) -> list[str]:
    return [d["_id"] for d in docs]


def test_equality_and_comparisons(col):
    assert ids(col.find({"colour": "red"}, sort=[("size", 1)])) == ["t0", "t3"]
    assert ids(col.find({"size": {"$gt": 1, "$lte": 3}}, sort=[("size", 1)])) == ["t1", "t2"]
    assert ids(col.find({"meta.n": 3})) == ["t3"]


def test_missing_fields_match_null_ne_and_nin_as_in_mongodb(col):
    assert ids(col.find({"colour": None})) == ["t2"]
    assert ids(col.find({"colour": {"$ne": "red"}}, sort=[("size", 1)])) == ["t1", "t2"]
    assert ids(col.find({"colour": {"$in": ["blue", None]}}, sort=[("size", 1)])) == ["t1", "t2"]
    assert ids(col.find({"colour": {"$nin": ["red"]}}, sort=[("size", 1)])) == ["t1", "t2"]
    assert ids(col.find({"colour": {"$exists": False}})) == ["t2"]


def test_sort_descending_and_limit(col):
    assert ids(col.find({}, sort=[("size", -1)], limit=2)) == ["t3", "t2"]


def test_find_one_and_update_returns_before_or_after(col):
    before = col.find_one_and_update({"_id": "t0"}, {"$set": {"size": 10}, "$inc": {"meta.n": 5}})
    assert before["size"] == 1
    after = col.find_one_and_update({"_id": "t0"}, {"$unset": {"colour": ""}}, return_document=True)
    assert after == {"_id": "t0", "size": 10, "meta": {"n": 5}}
    assert col.find_one_and_update({"_id": "none"}, {"$set": {"size": 1}}) is None


def test_update_many_counts_matches(col):
    assert col.update_many({"colour": "red"}, {"$set": {"colour": "green"}}).modified_count == 2
    assert col.count_documents({"colour": "green"}) == 2


def test_datetimes_round_trip_as_aware_utc(col):
    when = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    col.insert_one({"_id": "d", "at": when, "nested": [{"at": when}]})
    doc = col.find_one("d")
    assert doc["at"] == when and doc["at"].tzinfo is not None and doc["nested"][0]["at"] == when
    assert ids(col.find({"at": {"$lt": when + timedelta(seconds=1)}})) == ["d"]


def test_unique_index_rejects_duplicates_but_not_missing_values(col):
    col.create_index("colour_key", unique=True, sparse=True)
    col.insert_one({"_id": "a", "colour_key": "k"})
    col.insert_one({"_id": "b"})
    col.insert_one({"_id": "c"})
    with pytest.raises(DuplicateKeyError):
        col.insert_one({"_id": "d", "colour_key": "k"})
    with pytest.raises(DuplicateKeyError):
        col.insert_one({"_id": "a"})


def test_unsupported_operators_say_so(col):
    with pytest.raises(NotImplementedError, match=r"does not support \$regex"):
        col.find({"colour": {"$regex": "r.*"}})
    with pytest.raises(NotImplementedError, match=r"does not support \$push"):
        col.update_one({"_id": "t0"}, {"$push": {"tags": "x"}})
    with pytest.raises(NotImplementedError, match="no aggregate"):
        col.aggregate([])


def test_upsert_says_that_it_is_not_supported(col):
    with pytest.raises(NotImplementedError, match=r"does not support upsert=True"):
        col.update_one({"_id": "new"}, {"$set": {"size": 1}}, upsert=True)
    col.update_one({"_id": "t0"}, {"$set": {"size": 9}}, upsert=False)  # the default: fine


def test_failed_write_leaves_nothing_behind(col):
    with pytest.raises(DuplicateKeyError), col.database.atomic():
        col.insert_one({"_id": "new"})
        col.insert_one({"_id": "t0"})
    assert col.find_one("new") is None


def _claim_all(folder: str, worker: str, queue, start) -> None:
    """Claim jobs from the embedded store in ``folder`` until none is left (in a new process)."""
    store = JobStore(EmbeddedDatabase(folder))
    start.wait(120)  # both processes (and the reader) begin together, after their imports
    claimed = []
    while (job := store.claim_next("evaluate", worker)) is not None:
        claimed.append(job["job_id"])
        time.sleep(0.005)  # some work, so that the two processes' claims interleave
    queue.put(claimed)


def test_two_processes_claim_each_job_exactly_once_while_a_third_reads(tmp_path):
    folder = str(tmp_path / "store")
    store = JobStore(EmbeddedDatabase(folder))
    ids = {store.submit("evaluate", f"run{i}", {})[0]["job_id"] for i in range(120)}
    ctx = multiprocessing.get_context("spawn")
    queue, start = ctx.Queue(), ctx.Barrier(3)
    procs = [ctx.Process(target=_claim_all, args=(folder, f"p{i}", queue, start)) for i in range(2)]
    for proc in procs:
        proc.start()
    seen: list[int] = []
    stop = threading.Event()

    def read() -> None:  # every read during the claims sees every job, none half-written
        while not stop.is_set():
            seen.append(len(store.list(limit=1000)))

    start.wait(300)
    reader = threading.Thread(target=read)
    reader.start()
    try:
        claimed = [queue.get(timeout=300) for _ in procs]
    finally:
        stop.set()
        reader.join()
        for proc in procs:
            proc.join(30)
    together = claimed[0] + claimed[1]
    assert len(together) == len(ids) and set(together) == ids
    assert all(c for c in claimed), "both processes should have claimed jobs"
    assert all(j["status"] == "running" for j in store.list(limit=1000))
    assert seen and set(seen) == {len(ids)}


def test_after_a_checkpoint_the_store_file_alone_holds_every_record(tmp_path):
    db = EmbeddedDatabase(tmp_path / "live", "pipeline")
    db["jobs"].insert_one({"_id": "j1", "status": "succeeded"})
    db.checkpoint()
    backup = tmp_path / "backup"
    backup.mkdir()
    shutil.copy(db.path, backup / db.path.name)  # the main file only, as a backup takes it
    assert EmbeddedDatabase(backup, "pipeline")["jobs"].find_one({"_id": "j1"})["status"] == (
        "succeeded"
    )


def test_a_damaged_store_file_says_so_and_how_to_recover(tmp_path):
    (tmp_path / "pipeline.sqlite3").write_bytes(os.urandom(4096))
    settings = Settings(store_dir=tmp_path, mongo_db="pipeline", mongo_uri=None)
    with pytest.raises(ServiceUnavailable, match=r"pipeline.sqlite3 is damaged .*restore them"):
        get_database(settings)


def test_a_service_on_a_damaged_store_file_stops_with_one_line(tmp_path):
    (tmp_path / "pipeline.sqlite3").write_bytes(os.urandom(4096))
    settings = Settings(store_dir=tmp_path, mongo_db="pipeline", mongo_uri=None)
    with pytest.raises(SystemExit, match=r"pipeline.sqlite3 is damaged") as stopped:
        create_job_app("toy", "Toy", APIRouter(), lambda job: {}, settings=settings)
    assert "\n" not in str(stopped.value)


def test_a_service_on_an_empty_store_file_left_by_a_failed_restore_stops_with_one_line(tmp_path):
    empty = tmp_path / "pipeline.sqlite3"
    empty.write_bytes(b"")
    os.utime(empty, (time.time() - 3600, time.time() - 3600))  # not a store made this moment
    settings = Settings(store_dir=tmp_path, mongo_db="pipeline", mongo_uri=None)
    with pytest.raises(SystemExit, match=r"pipeline.sqlite3 is empty \(0 bytes\), as a copy"):
        create_job_app("toy", "Toy", APIRouter(), lambda job: {}, settings=settings)


def test_an_empty_store_file_just_made_is_a_new_store(tmp_path):
    (tmp_path / "pipeline.sqlite3").write_bytes(b"")  # another service creating it now
    settings = Settings(store_dir=tmp_path, mongo_db="pipeline", mongo_uri=None)
    create_job_app("toy", "Toy", APIRouter(), lambda job: {}, settings=settings)


def store_of_400_records(folder, name: str = "pipeline") -> EmbeddedDatabase:
    """An embedded store of 400 evaluate job records, all in its main file (checkpointed)."""
    db = EmbeddedDatabase(folder, name)
    for i in range(400):
        db["jobs"].insert_one({"_id": f"j{i}", "kind": "evaluate", "note": "x" * 400})
    db.checkpoint()
    return db


def overwrite_pages(path) -> None:
    """Overwrite part of every page of the store file ``path`` but its first two (a disk error,
    a copy cut short and patched): it opens, and reading records fails."""
    with open(path, "r+b") as f:
        pages = os.path.getsize(path) // 4096
        for page in range(2, pages):
            f.seek(page * 4096 + 100)
            f.write(b"\xff" * 200)


def _damaged_inside(folder) -> Settings:
    """A store of 400 job records whose header is intact and whose later pages are overwritten."""
    overwrite_pages(store_of_400_records(folder).path)
    return Settings(store_dir=folder, mongo_db="pipeline", mongo_uri=None)


def test_a_store_damaged_inside_stops_the_service_with_one_line(tmp_path):
    settings = _damaged_inside(tmp_path)
    with pytest.raises(SystemExit, match=r"pipeline.sqlite3 is damaged .*restore them") as stopped:
        create_job_app("toy", "Toy", APIRouter(), lambda job: {}, settings=settings)
    assert "\n" not in str(stopped.value)


def test_a_store_damaged_inside_a_folder_named_with_hash_and_question_mark_stops_the_service(
    tmp_path,
):
    settings = _damaged_inside(tmp_path / "a#b?c")
    with pytest.raises(SystemExit, match=r"pipeline.sqlite3 is damaged"):
        create_job_app("toy", "Toy", APIRouter(), lambda job: {}, settings=settings)
    assert [p.name for p in tmp_path.iterdir()] == ["a#b?c"]  # no stray store file "a"


def test_the_page_check_reads_a_store_in_a_folder_named_with_hash_and_question_mark(tmp_path):
    db = store_of_400_records(tmp_path / "a#b?c")
    db.check_pages(max_age=0)  # intact
    overwrite_pages(db.path)
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        db.check_pages(max_age=0)
    assert [p.name for p in tmp_path.iterdir()] == ["a#b?c"]


def test_damage_met_while_serving_gives_the_restore_advice_without_record_text(tmp_path):
    from jobs.readiness import store_unavailable

    settings = _damaged_inside(tmp_path)
    with pytest.raises(Exception) as failed:  # whatever SQLite raises for it
        list(get_database(settings)["jobs"].find({}))
    answer = str(store_unavailable(settings, failed.value))
    assert "pipeline.sqlite3 is damaged" in answer and "restore them from a backup" in answer
    assert "x" * 20 not in answer  # no record's content


def test_a_store_found_damaged_takes_no_more_writes(tmp_path):
    db = store_of_400_records(tmp_path)
    overwrite_pages(db.path)
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        db.check_pages(max_age=0)  # the readiness probe's check: not ready
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):  # a job would be lost with it
        db["jobs"].insert_one({"_id": "j-new", "kind": "evaluate"})


def test_bad_json_read_from_a_damaged_store_gets_the_restore_advice(tmp_path):
    from jobs.readiness import store_unavailable

    settings = _damaged_inside(tmp_path)  # overwritten pages read as bad JSON text too
    answer = str(store_unavailable(settings, sqlite3.OperationalError("malformed JSON")))
    assert "pipeline.sqlite3 is damaged" in answer and "restore them from a backup" in answer
    assert "json_valid" not in answer  # whose query fails on a damaged file


def test_one_bad_record_is_not_called_a_damaged_store(tmp_path):
    import sqlite3

    from jobs.readiness import store_unavailable

    settings = Settings(store_dir=tmp_path, mongo_db="pipeline", mongo_uri=None)
    db = EmbeddedDatabase(tmp_path, "pipeline")
    db["jobs"].insert_one({"_id": "j1", "status": "queued"})
    with db.atomic() as conn:  # a record edited by hand into text that is not JSON
        conn.execute("""UPDATE jobs SET doc = '{"status": ' WHERE _id = 'j1'""")
    with pytest.raises(sqlite3.OperationalError) as failed:
        db["jobs"].find_one({"status": "queued"})
    answer = str(store_unavailable(settings, failed.value))
    assert "restore" not in answer  # not the whole store: the record, and how to find it
    assert "a record is not valid JSON text (malformed JSON)" in answer
    assert "WHERE NOT json_valid(doc)" in answer


def _store_file(folder, *tables: str, user_version: int = 0):
    """A store file made with SQLite alone (as another version would), with ``tables``."""
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(folder / "pipeline.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for sql in tables:
        conn.execute(sql)
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.close()
    return Settings(store_dir=folder, mongo_db="pipeline", mongo_uri=None)


_NEWER_JOBS = "CREATE TABLE jobs (_id TEXT PRIMARY KEY, doc TEXT NOT NULL, format INTEGER NOT NULL)"
_JOBS = "CREATE TABLE jobs (_id TEXT PRIMARY KEY, doc TEXT NOT NULL)"


def test_a_service_on_a_store_file_of_a_newer_format_stops_with_one_line(tmp_path):
    settings = _store_file(tmp_path, _JOBS, user_version=2)
    with pytest.raises(SystemExit, match=r"pipeline.sqlite3 .* in format 2.*reads format 1"):
        create_job_app("toy", "Toy", APIRouter(), lambda job: {}, settings=settings)


def test_a_service_on_a_store_table_of_another_layout_stops_with_one_line(tmp_path):
    settings = _store_file(tmp_path, _NEWER_JOBS)
    with pytest.raises(SystemExit, match=r"table jobs has the columns \(_id, doc, format\)") as e:
        create_job_app("toy", "Toy", APIRouter(), lambda job: {}, settings=settings)
    line = str(e.value)
    assert "\n" not in line and "move the file and its -wal and -shm files aside" in line


def test_opening_a_store_file_of_a_newer_format_says_so(tmp_path):
    settings = _store_file(tmp_path, _JOBS, user_version=2)
    with pytest.raises(ServiceUnavailable, match=r"in format 2, and this version reads format 1"):
        get_database(settings)


def test_a_store_file_written_before_the_format_marker_keeps_its_records_and_is_marked(tmp_path):
    settings = _store_file(tmp_path, _JOBS, "INSERT INTO jobs VALUES ('j1', '{\"kind\":\"toy\"}')")
    create_job_app("toy", "Toy", APIRouter(), lambda job: {}, settings=settings)  # starts
    db = get_database(settings)
    assert db["jobs"].find_one("j1") == {"_id": "j1", "kind": "toy"}
    assert db.connection().execute("PRAGMA user_version").fetchone()[0] == 1


def test_a_write_refused_by_another_constraint_than_a_unique_key_is_no_duplicate_key(tmp_path):
    db = EmbeddedDatabase(tmp_path, "pipeline")
    with db.atomic() as conn:  # a table made by another version after this one opened the file
        conn.execute(_NEWER_JOBS)
    with pytest.raises(sqlite3.DatabaseError, match="NOT NULL constraint failed") as refused:
        db["jobs"].insert_one({"_id": "j1", "kind": "toy"})
    assert not isinstance(refused.value, DuplicateKeyError)


def test_job_pages_and_the_trail_are_read_off_an_index_not_sorted(tmp_path):
    """A page of ``GET /jobs`` (and of the audit trail) reads its rows off an index: a sort of
    every job of the kind made each page cost more as jobs accumulated (0.4 s at 100,000)."""
    db = EmbeddedDatabase(tmp_path / "store")
    jobs, trail = JobStore(db), SelectionStore(db)
    for i in range(3):
        jobs.submit("evaluate", f"run{i}", {"i": i})
        trail.record(SelectionRecord(run_id=f"run{i}", action="choose", model_uri="models:/m/1",
                                     experiment_id="1", registered_model="m"))  # fmt: skip
    newest = jobs.list("evaluate", limit=1)[0]
    conn, statements = db.connection(), []
    conn.set_trace_callback(statements.append)
    jobs.list("evaluate", limit=50)
    jobs.list("evaluate", limit=50, before=newest["job_id"])
    jobs.list("evaluate", run_id="run1", limit=50)
    jobs.list("evaluate", status="queued", limit=50)
    trail.recent(20)
    trail.recent(50, action="choose")
    trail.recent(500, action="choose", model="m")
    conn.set_trace_callback(None)
    reads = [s for s in statements if s.startswith("SELECT _id, doc") and "ORDER BY" in s]
    assert len(reads) == 7
    for sql in reads:
        plan = " / ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "TEMP B-TREE" not in plan, f"{sql}\n{plan}"
