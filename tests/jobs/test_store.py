"""The store contract, run on every backend (embedded always, MongoDB when MONGO_URI is set)."""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np
import pytest

from common import Conflict, InvalidInput, NotFound, ServiceUnavailable, utcnow
from jobs import JobStore, SelectionStore, get_database
from jobs.store import STORE_ERRORS
from runs import schemas
from tests.conftest import free_port, unreachable_mongo
from tests.jobs.conftest import make_settings


def test_submit_records_a_queued_job_as_in_the_contract(job_store):
    job, reused = job_store.submit("evaluate", "run1", {"batch_size": 8, "data_dir": "d"})
    assert not reused
    assert job["status"] == "queued"
    assert len(job["job_id"]) == 32 and int(job["job_id"], 16) >= 0
    assert (job["kind"], job["run_id"]) == ("evaluate", "run1")
    assert job["inputs"] == {"batch_size": 8, "data_dir": "d"}
    assert job["created_at"].tzinfo is not None and job["created_at"].utcoffset() == timedelta(0)
    assert job["started_at"] is job["finished_at"] is job["error"] is job["result"] is None
    assert "_id" not in job and "active_key" not in job
    assert job_store.get(job["job_id"]) == job


def test_inputs_key_is_sha256_of_canonical_json(job_store):
    job, _ = job_store.submit("evaluate", "run1", {"b": 2, "a": [1, 2]})
    canonical = '{"inputs":{"a":[1,2],"b":2},"kind":"evaluate","run_id":"run1"}'
    assert job["inputs_key"] == hashlib.sha256(canonical.encode()).hexdigest()


def test_same_inputs_in_another_order_return_the_queued_job(job_store):
    first, _ = job_store.submit("evaluate", "run1", {"a": 1, "b": 2})
    again, reused = job_store.submit("evaluate", "run1", {"b": 2, "a": 1})
    assert reused and again["job_id"] == first["job_id"]


def test_running_job_is_returned_even_with_force(job_store):
    first, _ = job_store.submit("evaluate", "run1", {})
    job_store.claim_next("evaluate", "w1")
    again, reused = job_store.submit("evaluate", "run1", {}, force=True)
    assert reused and again["job_id"] == first["job_id"] and again["status"] == "running"


def test_succeeded_job_is_reused_unless_forced(job_store):
    first, _ = job_store.submit("evaluate", "run1", {})
    job_store.claim_next("evaluate", "w1")
    job_store.succeed(first["job_id"], {"accuracy": 0.9})
    again, reused = job_store.submit("evaluate", "run1", {})
    assert reused and again["job_id"] == first["job_id"] and again["result"] == {"accuracy": 0.9}
    forced, reused = job_store.submit("evaluate", "run1", {}, force=True)
    assert not reused and forced["job_id"] != first["job_id"] and forced["status"] == "queued"


def test_the_newest_succeeded_job_is_reused(job_store):
    ids = []
    for force in (False, True):  # evaluated, then evaluated again on purpose
        job, _ = job_store.submit("evaluate", "run1", {}, force=force)
        job_store.claim_next("evaluate", "w1")
        job_store.succeed(job["job_id"], {"n": len(ids)})
        ids.append(job["job_id"])
    again, reused = job_store.submit("evaluate", "run1", {})
    assert reused and again["job_id"] == ids[1] and again["result"] == {"n": 1}


def test_reusing_a_succeeded_job_takes_no_write_lock(tmp_path):
    db = get_database(make_settings(tmp_path))  # embedded: the lock is its own
    store = JobStore(db)
    first, _ = store.submit("evaluate", "run1", {})
    store.claim_next("evaluate", "w1")
    store.succeed(first["job_id"], {})
    db.lock_timeout = 0.2
    with ThreadPoolExecutor(1) as pool, db.atomic():  # another thread's write under way
        again, reused = pool.submit(store.submit, "evaluate", "run1", {}).result(timeout=5)
    assert reused and again["job_id"] == first["job_id"]


def test_failed_job_is_not_reused(job_store):
    first, _ = job_store.submit("evaluate", "run1", {})
    job_store.claim_next("evaluate", "w1")
    job_store.fail(first["job_id"], "bad data")
    again, reused = job_store.submit("evaluate", "run1", {})
    assert not reused and again["job_id"] != first["job_id"]


def test_other_kind_or_run_is_a_new_job(job_store):
    first, _ = job_store.submit("evaluate", "run1", {})
    assert not job_store.submit("explain", "run1", {})[1]
    assert not job_store.submit("evaluate", "run2", {})[1]
    assert job_store.get(first["job_id"])["status"] == "queued"


def test_active_for_finds_the_job_a_request_queued_until_it_finishes(job_store):
    request = {"data_dir": None, "batch_size": 8}
    job, _ = job_store.submit(
        "evaluate", "run1", {"data_dir": "/d", "batch_size": 8}, request=request
    )
    assert job_store.active_for("evaluate", "run1", request)["job_id"] == job["job_id"]
    assert "request_key" not in job_store.active_for("evaluate", "run1", request)
    assert job_store.active_for("evaluate", "run1", {**request, "batch_size": 9}) is None
    assert job_store.active_for("explain", "run1", request) is None
    claimed = job_store.claim_next("evaluate", "w1")
    assert job_store.active_for("evaluate", "run1", request)["status"] == "running"
    job_store.succeed(job["job_id"], {}, claimed["lease"])
    assert job_store.active_for("evaluate", "run1", request) is None


def test_claim_takes_the_oldest_queued_job_of_its_kind(job_store):
    jobs = [job_store.submit("evaluate", f"run{i}", {})[0] for i in range(3)]
    job_store.submit("explain", "run0", {})
    claimed = job_store.claim_next("evaluate", "w1")
    assert claimed["job_id"] == jobs[0]["job_id"]
    assert claimed["status"] == "running" and claimed["worker"] == "w1"
    assert claimed["started_at"] == claimed["heartbeat_at"] >= jobs[0]["created_at"]
    assert [job_store.claim_next("evaluate", "w1")["job_id"] for _ in range(2)] == [
        j["job_id"] for j in jobs[1:]
    ]
    assert job_store.claim_next("evaluate", "w1") is None


def test_a_damaged_queued_record_is_failed_and_the_queue_moves_on(job_store):
    bad, _ = job_store.submit("evaluate", "run1", {"n": 1})
    good, _ = job_store.submit("evaluate", "run2", {"n": 2})
    job_store.col.update_one({"_id": bad["job_id"]}, {"$set": {"attempts": "x"}})  # by hand
    assert job_store.claim_next("evaluate", "w1") is None  # failed, not claimed
    failed = job_store.get(bad["job_id"])
    assert failed["status"] == "failed" and "record in the job store is damaged" in failed["error"]
    assert job_store.claim_next("evaluate", "w1")["job_id"] == good["job_id"]


def test_a_claim_failing_on_a_sound_record_fails_no_job(job_store, monkeypatch):
    job, _ = job_store.submit("evaluate", "run1", {"n": 1})

    def bug(*args):
        raise RuntimeError("a bug in the claim")

    monkeypatch.setattr(job_store, "_claim", bug)
    with pytest.raises(RuntimeError, match="a bug in the claim"):
        job_store.claim_next("evaluate", "w1")
    assert job_store.get(job["job_id"])["status"] == "queued"


def test_heartbeat_only_for_the_claiming_attempt(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    claimed = job_store.claim_next("evaluate", "w1")
    assert not job_store.heartbeat(job["job_id"], "another-lease")
    assert job_store.heartbeat(job["job_id"], claimed["lease"])
    assert job_store.get(job["job_id"])["heartbeat_at"] >= claimed["heartbeat_at"]


def test_succeed_stores_plain_result(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    job_store.claim_next("evaluate", "w1")
    done = job_store.succeed(job["job_id"], {"auc": np.float32(0.5), "cm": np.eye(2, dtype=int)})
    assert done["status"] == "succeeded" and done["finished_at"] >= done["started_at"]
    assert job_store.get(job["job_id"])["result"] == {"auc": 0.5, "cm": [[1, 0], [0, 1]]}


def test_fail_records_the_error(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    job_store.claim_next("evaluate", "w1")
    failed = job_store.fail(job["job_id"], "the data folder is missing")
    assert failed["status"] == "failed" and failed["error"] == "the data folder is missing"


def test_a_job_cannot_finish_twice(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    job_store.claim_next("evaluate", "w1")
    job_store.succeed(job["job_id"], {})
    with pytest.raises(Conflict, match="already succeeded"):
        job_store.fail(job["job_id"], "late")
    assert job_store.get(job["job_id"])["status"] == "succeeded"


def test_unknown_job_is_not_found(job_store):
    with pytest.raises(NotFound, match="'nope' does not exist"):
        job_store.get("nope")


def test_list_before_a_creation_time_is_the_next_page(job_store):
    jobs = [job_store.submit("evaluate", "run1", {"i": i})[0] for i in range(3)]
    newest = job_store.list("evaluate", limit=2)
    assert [j["job_id"] for j in newest] == [jobs[2]["job_id"], jobs[1]["job_id"]]
    rest = job_store.list("evaluate", limit=2, before=newest[-1]["job_id"])
    assert [j["job_id"] for j in rest] == [jobs[0]["job_id"]]


def test_list_filters_newest_first(job_store):
    ids = [job_store.submit("evaluate", f"run{i % 2}", {"i": i})[0]["job_id"] for i in range(5)]
    job_store.submit("explain", "run0", {})
    assert [j["job_id"] for j in job_store.list(kind="evaluate")] == ids[::-1]
    assert [j["job_id"] for j in job_store.list(kind="evaluate", run_id="run0")] == ids[::2][::-1]
    assert len(job_store.list(limit=2)) == 2
    job_store.claim_next("evaluate", "w")
    assert [j["job_id"] for j in job_store.list(status="running")] == [ids[0]]


def test_list_rejects_unknown_status(job_store):
    with pytest.raises(InvalidInput, match="unknown job status 'done'"):
        job_store.list(status="done")


def _age_heartbeat(job_store, job_id, seconds):
    old = utcnow() - timedelta(seconds=seconds)
    job_store.col.update_one({"_id": job_id}, {"$set": {"heartbeat_at": old}})


def test_stale_job_is_requeued_once_then_failed(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    job_store.claim_next("evaluate", "dead-worker")
    _age_heartbeat(job_store, job["job_id"], 120)
    assert job_store.recover_stale("evaluate", 60) == 1
    requeued = job_store.get(job["job_id"])
    assert requeued["status"] == "queued" and "dead-worker" in requeued["note"]

    job_store.claim_next("evaluate", "dead-again")
    _age_heartbeat(job_store, job["job_id"], 120)
    assert job_store.recover_stale("evaluate", 60) == 1
    failed = job_store.get(job["job_id"])
    assert failed["status"] == "failed"
    assert failed["error"].startswith("worker died while running (no heartbeat since ")


def test_a_job_retried_for_outages_is_still_requeued_once_when_its_worker_dies(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    for _ in range(2):  # two attempts met an outage and were put back to wait
        attempt = job_store.claim_next("evaluate", "w1")
        job_store.retry(job["job_id"], attempt["lease"], "MLflow down", 0, max_attempts=4)
    job_store.claim_next("evaluate", "dies")
    _age_heartbeat(job_store, job["job_id"], 120)
    assert job_store.recover_stale("evaluate", 60) == 1
    assert job_store.get(job["job_id"])["status"] == "queued"


def test_a_stale_job_whose_worker_still_runs_is_requeued_without_counting_a_death(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    job_store.claim_next("evaluate", "host:123:abc/1")
    _age_heartbeat(job_store, job["job_id"], 120)  # its heartbeats could not be written
    assert job_store.recover_stale("evaluate", 60, alive=lambda worker: True) == 1
    requeued = job_store.get(job["job_id"])
    assert requeued["status"] == "queued" and "whose process still runs" in requeued["note"]
    job_store.claim_next("evaluate", "dies")
    _age_heartbeat(job_store, job["job_id"], 120)
    assert job_store.recover_stale("evaluate", 60, alive=lambda worker: False) == 1
    assert job_store.get(job["job_id"])["status"] == "queued"  # its first death: requeued


def test_fresh_running_job_is_left_alone(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    job_store.claim_next("evaluate", "w1")
    assert job_store.recover_stale("evaluate", 60) == 0
    assert job_store.get(job["job_id"])["status"] == "running"


def _selection(run_id: str, action: str, **fields) -> schemas.SelectionRecord:
    uri = f"models:/m/{run_id}" if action == "choose" else f"runs:/{run_id}/model"
    return schemas.SelectionRecord(
        run_id=run_id, action=action, model_uri=uri, experiment_id="1", **fields
    )


def test_selections_are_recorded_newest_first(db):
    selections = SelectionStore(db)
    first = selections.record(_selection("r1", "download", metrics={"eval_auc": 0.9}))
    second = selections.record(
        _selection("r2", "choose", registered_model="m", version="3", alias="champion",
                   reason="best AUC", selected_by="alice")
    )  # fmt: skip
    assert first["selected_at"].tzinfo is not None and first["selected_by"] is None
    recent = selections.recent()
    assert [s["run_id"] for s in recent] == ["r2", "r1"]
    assert recent[0] == second and "_id" not in recent[0]
    assert (second["version"], second["alias"], second["reason"]) == ("3", "champion", "best AUC")


def test_selections_can_be_listed_by_action(db):
    selections = SelectionStore(db)
    selections.record(_selection("r1", "choose"))
    selections.record(_selection("r2", "download"))
    assert [s["run_id"] for s in selections.recent(action="choose")] == ["r1"]
    assert [s["run_id"] for s in selections.recent(action="download")] == ["r2"]


def test_concurrent_submissions_of_the_same_inputs_make_one_job(job_store):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: job_store.submit("evaluate", "r", {}), range(16)))
    assert len({job["job_id"] for job, _ in results}) == 1
    assert sum(not reused for _, reused in results) == 1


def test_a_duplicate_key_without_an_active_job_is_tried_a_bounded_number_of_times(job_store):
    # A unique index this version does not create: every new job collides with the failed one,
    # which holds no active_key, so each try finds no active job to answer with.
    job_store.col.create_index("kind", unique=True)
    job_store.fail(job_store.submit("evaluate", "r1", {})[0]["job_id"], "boom")
    with pytest.raises(ServiceUnavailable, match=r"refused a new evaluate job .* 3 times"):
        job_store.submit("evaluate", "r2", {})


def test_unreachable_mongodb_names_it_and_hides_the_password(tmp_path):
    settings = make_settings(tmp_path, mongo_uri=unreachable_mongo("bob:s3cret@"))
    with pytest.raises(ServiceUnavailable) as err:
        get_database(settings)
    message = str(err.value)
    assert "MongoDB at mongodb://***@127.0.0.1" in message and "MONGO_URI" in message
    assert "s3cret" not in message and "bob" not in message


def test_store_folder_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    settings = make_settings(tmp_path, store_dir=tmp_path / "file")
    with pytest.raises(ServiceUnavailable, match=r"embedded store in .*file cannot be opened"):
        get_database(settings)


def test_submit_rejects_a_missing_run_id(job_store):
    with pytest.raises(InvalidInput, match="run_id must be a non-empty string"):
        job_store.submit("evaluate", "", {})


def test_malformed_mongo_uri_is_a_clear_error(tmp_path):
    settings = make_settings(tmp_path, mongo_uri="mongodb://u:pw@")
    with pytest.raises(ServiceUnavailable, match="not a valid MongoDB URI") as err:
        get_database(settings)
    assert "pw" not in str(err.value)


def test_result_of_an_attempt_whose_job_was_recovered_is_dropped(job_store):
    job, _ = job_store.submit("evaluate", "run1", {})
    slow = job_store.claim_next("evaluate", "slow-worker")
    _age_heartbeat(job_store, job["job_id"], 120)
    job_store.recover_stale("evaluate", 60)
    new = job_store.claim_next("evaluate", "new-worker")
    with pytest.raises(Conflict, match="now running under another attempt"):
        job_store.succeed(job["job_id"], {"late": True}, slow["lease"])
    done = job_store.succeed(job["job_id"], {"fresh": True}, new["lease"])
    assert done["result"] == {"fresh": True}


def test_submit_to_an_unreachable_mongodb_is_a_store_outage(tmp_path):
    settings = make_settings(tmp_path, mongo_uri=unreachable_mongo())
    store = JobStore(get_database(settings, check=False))
    with pytest.raises(STORE_ERRORS):
        store.submit("evaluate", "run1", {})


def test_each_opening_of_one_mongodb_shares_its_client(tmp_path):
    """The dashboard opens the store at every page view: one connection pool and set of
    monitor threads per process, not one per view left open."""
    settings = make_settings(tmp_path, mongo_uri=unreachable_mongo())
    first, second = (get_database(settings, check=False) for _ in range(2))
    assert first.client is second.client


@pytest.mark.parametrize(
    ("option", "seconds"), [("", 3.0), ("?serverselectiontimeoutms=250", 0.25)]
)
def test_an_outage_is_declared_after_the_uris_server_selection_timeout(tmp_path, option, seconds):
    # pymongo would let a keyword given beside the URI win over its option (the default 3 s)
    settings = make_settings(tmp_path, mongo_uri=f"mongodb://127.0.0.1:{free_port()}/{option}")
    assert get_database(settings, check=False).client.options.server_selection_timeout == seconds


def test_a_damaged_tries_field_is_failed_at_its_claim_too(job_store):
    bad, _ = job_store.submit("evaluate", "run1", {"n": 1})
    job_store.col.update_one({"_id": bad["job_id"]}, {"$set": {"tries": "x"}})
    assert job_store.claim_next("evaluate", "w1") is None
    assert "tries is 'x'" in job_store.get(bad["job_id"])["error"]


def test_a_job_queued_before_tries_existed_gets_a_new_result_folder(job_store):
    from runs import job_result_id

    job, _ = job_store.submit("evaluate", "run1", {})
    # As an older version left it: two attempts made (folders -1 and -2), no tries, no publishing.
    job_store.col.update_one(
        {"_id": job["job_id"]}, {"$set": {"attempts": 2}, "$unset": {"tries": "", "publishing": ""}}
    )
    claimed = job_store.claim_next("evaluate", "w1")
    assert job_result_id(claimed) == f"{job['job_id']}-3"
    assert job_store.cancel(job["job_id"])["status"] == "cancelled"  # no publishing field: not one


def test_a_running_record_without_a_heartbeat_does_not_stop_recovery(job_store):
    broken, _ = job_store.submit("evaluate", "run1", {"n": 1})
    stale, _ = job_store.submit("evaluate", "run2", {"n": 2})
    for _ in range(2):
        job_store.claim_next("evaluate", "w1")
    job_store.col.update_one({"_id": broken["job_id"]}, {"$set": {"heartbeat_at": None}})
    old = utcnow() - timedelta(seconds=600)
    job_store.col.update_one({"_id": stale["job_id"]}, {"$set": {"heartbeat_at": old}})
    job_store.recover_stale("evaluate", 30, gone=lambda worker: True)
    assert job_store.get(stale["job_id"])["status"] == "queued"
    assert "no heartbeat since unknown" not in job_store.get(stale["job_id"])["note"]
    assert job_store.get(broken["job_id"])["status"] == "queued"
