"""Seals under former tokens (``jobs.seal``, ``SelectionStore(former=...)``): which tokens sealed
the trail before a rotation comes from the operator (``PIPELINE_PREVIOUS_TOKENS``), never from the
records' own ``sealed_with``: a record rewritten in the store and made to name another token, or
moved before where this token's records begin, fails instead of passing for a rotation."""

import pytest

from common import Settings
from jobs import SelectionStore
from jobs.seal import (
    CHANGED,
    FOREIGN_TOKEN,
    OTHER_TOKEN,
    UNDECLARED_TOKEN,
    WITHOUT_TOKEN,
    fingerprint,
    seal,
)
from tests.jobs.test_selections import TOKEN, _record

FORMER = "a-former-deployment-token-rotated-since-0123"
FAKE = "0123456789ab"  # the auditor's made-up fingerprint


def _rewrite(db, selection_id: str, **fields) -> None:
    """An edit in the store by whoever can write it but holds no token."""
    changes = {"selected_by": "mallory", "reason": "rewritten", **fields}
    db["selections"].update_one({"_id": selection_id}, {"$set": changes})


def _ids(store: SelectionStore) -> list[str]:
    return [r["selection_id"] for r in reversed(store.recent())]  # oldest first


def test_every_record_rewritten_under_a_made_up_token_fails(db):
    store = SelectionStore(db, key=TOKEN)
    ids = [_record(store, f"r{i}")["selection_id"] for i in range(3)]
    for selection_id in ids:
        _rewrite(db, selection_id, sealed_with=FAKE)
    assert store.problems(store.recent()) == dict.fromkeys(ids, UNDECLARED_TOKEN)


def test_the_oldest_records_rewritten_under_a_made_up_token_fail_the_newest_checks(db):
    store = SelectionStore(db, key=TOKEN)
    ids = [_record(store, f"r{i}")["selection_id"] for i in range(3)]
    for selection_id in ids[:2]:  # where this token's records begin moves to the newest
        _rewrite(db, selection_id, sealed_with=FAKE)
    assert store.problems(store.recent()) == dict.fromkeys(ids[:2], UNDECLARED_TOKEN)


def test_a_record_inserted_before_the_trail_under_a_made_up_token_fails(db):
    store = SelectionStore(db, key=TOKEN)
    first = _record(store, "r1")
    forged = {"_id": "forged", "run_id": "r0", "action": "choose", "seq": 1,
              "selected_at": first["selected_at"], "sealed_with": FAKE,
              "previous_seal": None}  # fmt: skip
    db["selections"].insert_one({**forged, "seal": seal({**forged, "selection_id": "forged"}, "x")})
    assert store.problems(store.recent()) == {"forged": UNDECLARED_TOKEN}


def test_a_rotation_not_declared_fails(db):
    _record(SelectionStore(db, key=FORMER), "r1")
    rotated = SelectionStore(db, key=TOKEN)
    [old] = _ids(rotated)
    _record(rotated, "r2")
    assert rotated.problems(rotated.recent()) == {old: UNDECLARED_TOKEN}


def test_records_before_a_token_was_set_fail_unless_declared(db):
    _record(SelectionStore(db), "r1")  # `make demo`, without a token
    [old] = _ids(SelectionStore(db))
    assert SelectionStore(db, key=TOKEN).problems(SelectionStore(db).recent()) == {
        old: UNDECLARED_TOKEN
    }
    declared = SelectionStore(db, key=TOKEN, former=["none"])
    assert declared.problems(declared.recent()) == {old: OTHER_TOKEN}


def test_a_declared_rotation_whose_former_token_is_kept_checks(db):
    old = [_record(SelectionStore(db, key=FORMER), f"r{i}")["selection_id"] for i in range(2)]
    rotated = SelectionStore(db, key=TOKEN, former=[FORMER])
    _record(rotated, "r2")
    assert len(old) == 2 and rotated.problems(rotated.recent()) == {}


def test_a_record_under_a_kept_former_token_edited_since_fails(db):
    old = _record(SelectionStore(db, key=FORMER), "r1")["selection_id"]
    rotated = SelectionStore(db, key=TOKEN, former=[FORMER])
    _record(rotated, "r2")
    _rewrite(db, old)
    assert rotated.problems(rotated.recent()) == {old: CHANGED}


def test_records_rewritten_to_pass_for_a_kept_former_tokens_fail(db):
    _record(SelectionStore(db, key=FORMER), "r0")
    store = SelectionStore(db, key=TOKEN, former=[FORMER])
    ids = [_record(store, f"r{i}")["selection_id"] for i in range(1, 4)]
    for selection_id in ids[:2]:  # hidden behind a boundary moved to the newest
        _rewrite(db, selection_id, sealed_with=fingerprint(FORMER))
    assert store.problems(store.recent()) == dict.fromkeys(ids[:2], CHANGED)


def test_a_declared_former_token_after_this_tokens_first_record_is_no_rotation(db):
    store = SelectionStore(db, key=TOKEN, former=[FORMER])
    _record(store, "r1")
    late = _record(SelectionStore(db, key=FORMER), "r2")  # a CLI still on the former token
    tokenless = _record(SelectionStore(db), "r3")
    assert SelectionStore(db, key=TOKEN, former=[FORMER, "none"]).problems(store.recent()) == {
        late["selection_id"]: FOREIGN_TOKEN,
        tokenless["selection_id"]: WITHOUT_TOKEN,
    }


def test_the_setting_lists_former_tokens_and_fingerprints(monkeypatch):
    monkeypatch.setenv("PIPELINE_PREVIOUS_TOKENS", f" {FORMER} ,{FAKE},\n")
    assert Settings(_env_file=None).previous_tokens() == [FORMER, FAKE]
    monkeypatch.setenv("PIPELINE_PREVIOUS_TOKENS", "")  # as Compose passes it unset
    assert Settings(_env_file=None).previous_tokens() == []


def test_the_setting_refuses_an_entry_neither_token_nor_fingerprint_and_hides_it(monkeypatch):
    from pydantic import ValidationError

    from common.settings import settings_problem

    monkeypatch.setenv("PIPELINE_PREVIOUS_TOKENS", f"{FORMER},short-secret")
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None)
    said = settings_problem(raised.value)
    assert "PIPELINE_PREVIOUS_TOKENS=(hidden)" in said and "short-secret" not in said
    assert FORMER not in said
