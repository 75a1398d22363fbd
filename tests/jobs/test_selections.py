"""Seals of the audit trail (``jobs.seal`` through ``SelectionStore``): records edited, removed,
added by hand or sealed under another token are named; on the embedded store, and on a real
MongoDB when ``MONGO_URI`` is set."""

from datetime import timedelta

from common import utcnow
from jobs import SelectionStore
from jobs.seal import (
    CHANGED,
    FOREIGN_TOKEN,
    MISSING_BEFORE,
    OTHER_TOKEN,
    UNSEALED,
    WITHOUT_TOKEN,
    fingerprint,
)
from runs import schemas

TOKEN = "a-long-random-deployment-token-0123456789"


def _record(store: SelectionStore, run_id: str, **fields) -> dict:
    return store.record(
        schemas.SelectionRecord(
            run_id=run_id,
            action="choose",
            model_uri="models:/m/1",
            experiment_id="1",
            metrics={"eval_auc": 0.91, "n": 3},
            reason="best AUC",
            **fields,
        )
    )


def test_each_record_links_the_one_before_and_all_check(db):
    store = SelectionStore(db, key=TOKEN)
    first, second = _record(store, "r1"), _record(store, "r2")
    assert first["previous_seal"] is None and second["previous_seal"] == first["seal"]
    assert store.problems(store.recent()) == {}


def test_a_field_edited_in_the_store_is_named(db):
    store = SelectionStore(db, key=TOKEN)
    _record(store, "r1")
    edited = _record(store, "r2")
    db["selections"].update_one({"_id": edited["selection_id"]}, {"$set": {"reason": "other"}})
    assert store.problems(store.recent()) == {edited["selection_id"]: CHANGED}


def test_a_seal_recomputed_without_the_token_does_not_check(db):
    store, forger = SelectionStore(db, key=TOKEN), SelectionStore(db)
    first = _record(store, "r1")
    forged = _record(forger, "r2")  # a writer without the token, claiming to have it
    db["selections"].update_one({"_id": forged["selection_id"]},
                                {"$set": {"sealed_with": first["sealed_with"]}})  # fmt: skip
    assert store.problems(store.recent()) == {forged["selection_id"]: CHANGED}


def test_records_swapped_in_the_trails_order_are_named(db):
    store = SelectionStore(db, key=TOKEN)
    first, second = _record(store, "r1"), _record(store, "r2")
    col = db["selections"]
    seqs = {doc["_id"]: doc["seq"] for doc in col.find({})}
    col.update_many({"_id": first["selection_id"]}, {"$set": {"seq": seqs[second["selection_id"]]}})
    col.update_many({"_id": second["selection_id"]}, {"$set": {"seq": seqs[first["selection_id"]]}})
    problems = store.problems(store.recent())
    assert problems == {first["selection_id"]: CHANGED, second["selection_id"]: CHANGED}


def test_another_tokens_seal_after_this_tokens_first_record_is_no_rotation(db):
    store = SelectionStore(db, key=TOKEN)
    _record(store, "r1")
    tokenless = _record(SelectionStore(db), "r2")  # a CLI run without PIPELINE_API_TOKEN
    claimed = _record(store, "r3")
    db["selections"].update_many({"_id": claimed["selection_id"]}, {"$set": {"sealed_with": "x"}})
    assert store.problems(store.recent()) == {
        tokenless["selection_id"]: WITHOUT_TOKEN,
        claimed["selection_id"]: FOREIGN_TOKEN,
    }


def test_a_record_no_pipeline_writes_is_named_not_a_crash(db):
    store = SelectionStore(db, key=TOKEN)
    odd = _record(store, "r1")
    db["selections"].update_many({"_id": odd["selection_id"]}, {"$set": {"seal": "é" * 64}})
    assert store.problems(store.recent()) == {odd["selection_id"]: CHANGED}


def test_a_removed_record_is_named_by_the_one_after_it_also_beyond_those_shown(db):
    store = SelectionStore(db, key=TOKEN)
    ids = [_record(store, f"r{i}")["selection_id"] for i in range(4)]
    db["selections"].delete_many({"_id": ids[1]})
    assert store.problems(store.recent()) == {ids[2]: MISSING_BEFORE}
    # the newest alone: its link is found in the store, beyond the records asked about
    assert store.problems(store.recent(1)) == {}
    assert store.problems(store.recent(2)) == {ids[2]: MISSING_BEFORE}


def test_a_record_added_without_a_seal_after_sealing_began_is_named(db):
    store = SelectionStore(db, key=TOKEN)
    _record(store, "r1")
    db["selections"].insert_one({"_id": "added", "run_id": "r9", "action": "choose",
                                 "selected_at": utcnow() + timedelta(seconds=1),
                                 "seq": 10**20})  # fmt: skip
    assert store.problems(store.recent()) == {"added": UNSEALED}


def test_a_record_added_without_a_seal_and_backdated_is_named(db):
    store = SelectionStore(db, key=TOKEN)
    _record(store, "r1")
    db["selections"].insert_one({"_id": "added", "run_id": "r9", "action": "choose",
                                 "selected_at": utcnow() - timedelta(days=30),
                                 "seq": 10**20})  # fmt: skip
    assert store.problems(store.recent()) == {"added": UNSEALED}


def test_records_from_before_seals_pass_unchecked(db):
    old = {"_id": "old", "run_id": "r0", "action": "choose", "seq": 1}
    db["selections"].insert_one({**old, "selected_at": utcnow() - timedelta(days=1)})
    store = SelectionStore(db, key=TOKEN)
    _record(store, "r1")
    recent = store.recent()
    assert [r["selection_id"] for r in recent][1] == "old"
    assert store.problems(recent) == {}


def test_records_sealed_under_a_former_token_declared_by_fingerprint_are_said_to_be_so(db):
    _record(SelectionStore(db, key=TOKEN), "r1")
    rotated = SelectionStore(db, key=TOKEN + "-rotated", former=[fingerprint(TOKEN)])
    [record] = rotated.recent()
    assert rotated.problems([record]) == {record["selection_id"]: OTHER_TOKEN}


def test_a_record_of_a_release_before_the_registry_is_listed_as_a_download(db):
    """It has no action: its download wrote run_id.txt, the choice then. Views of downloads show
    it; the choices that the trail and the chooser read (the registry's) do not."""
    store = SelectionStore(db, key=TOKEN)
    old = {"_id": "old", "run_id": "r0", "model_uri": "runs:/r0/model", "experiment_id": "1"}
    db["selections"].insert_one({**old, "selected_at": utcnow()})  # no action, seq nor seal
    _record(store, "r1")
    assert [r["run_id"] for r in store.recent(action="download")] == ["r0"]
    assert [r["run_id"] for r in store.recent(action="choose")] == ["r1"]
    assert [r["run_id"] for r in store.recent()] == ["r1", "r0"]
