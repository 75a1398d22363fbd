"""Documents of the embedded store (``jobs.documents``) come back and match as in MongoDB: run on
every backend (embedded always, MongoDB when MONGO_URI is set)."""

from datetime import UTC, datetime

import pytest

DATE_LIKE = "2026-01-01T00:00:00.000000+00:00"


@pytest.fixture
def col(db):
    col = db["things"]
    col.insert_one({"_id": "one", "n": 1})
    col.insert_one({"_id": "true", "n": True})
    return col


def ids(docs) -> list[str]:
    return sorted(d["_id"] for d in docs)


def test_strings_that_look_like_dates_or_escapes_come_back_as_they_were(col):
    text = {"date": DATE_LIKE, "nested": [{"date": DATE_LIKE}], "escape": "\ue000x"}
    col.insert_one({"_id": "s", **text})
    assert col.find_one({"_id": "s"}) == {"_id": "s", **text}


def test_a_date_like_string_is_found_by_itself_and_not_by_the_date(col):
    col.insert_one({"_id": "s", "reason": DATE_LIKE})
    col.insert_one({"_id": "d", "reason": datetime(2026, 1, 1, tzinfo=UTC)})
    assert ids(col.find({"reason": DATE_LIKE})) == ["s"]
    assert ids(col.find({"reason": datetime(2026, 1, 1, tzinfo=UTC)})) == ["d"]


def test_a_date_like_string_set_by_an_update_stays_a_string(col):
    col.update_one({"_id": "one"}, {"$set": {"reason": DATE_LIKE}})
    assert col.find_one({"_id": "one"})["reason"] == DATE_LIKE


def test_a_number_does_not_match_a_bool_nor_a_bool_a_number(col):
    assert ids(col.find({"n": 1})) == ["one"]
    assert ids(col.find({"n": True})) == ["true"]
    assert ids(col.find({"n": {"$gte": 1}})) == ["one"]


def test_ne_and_in_keep_numbers_and_bools_apart(col):
    assert ids(col.find({"n": {"$ne": 1}})) == ["true"]
    assert ids(col.find({"n": {"$ne": True}})) == ["one"]
    assert ids(col.find({"n": {"$in": [True]}})) == ["true"]
    assert ids(col.find({"n": {"$in": [1, "x"]}})) == ["one"]
    assert ids(col.find({"n": {"$nin": [1]}})) == ["true"]


def test_unsetting_a_field_under_a_missing_parent_adds_no_parent(col):
    col.update_one({"_id": "one"}, {"$unset": {"x.y": ""}})
    assert col.find_one({"_id": "one"}) == {"_id": "one", "n": 1}


def test_an_update_counts_as_modified_only_when_it_changes_the_document(col):
    same = col.update_one({"_id": "one"}, {"$set": {"n": 1}})
    assert (same.matched_count, same.modified_count) == (1, 0)
    to_bool = col.update_one({"_id": "one"}, {"$set": {"n": True}})  # 1 is not True
    assert to_bool.modified_count == 1
