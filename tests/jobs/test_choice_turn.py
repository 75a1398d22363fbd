"""The choice's turn in the store (``SelectionStore.choice_turn``), on each backend: one choice
of a registered model at a time among every chooser sharing the store."""

import threading
import time
from datetime import timedelta

import pytest

from common import ServiceUnavailable, utcnow
from jobs import SelectionStore


@pytest.fixture
def selections(db) -> SelectionStore:
    return SelectionStore(db)


def test_a_second_turn_waits_for_the_first_to_end(selections):
    order: list[str] = []

    def second() -> None:
        with selections.choice_turn("clf"):
            order.append("b")

    with selections.choice_turn("clf"):
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.5)
        order.append("a")
    waiter.join(10)
    assert order == ["a", "b"]


def test_a_turn_held_too_long_says_so(selections):
    held = pytest.raises(ServiceUnavailable, match="held its turn")
    with selections.choice_turn("clf"), held, selections.choice_turn("clf", wait_s=0.3):
        pass


def test_a_dead_holders_turn_is_taken_once_its_hold_has_passed(selections):
    """A chooser killed in its turn removes nothing: its document stays until it expires."""
    locks = selections.col.database["locks"]
    left = {"_id": "choice:clf", "owner": "killed", "expires": utcnow() + timedelta(seconds=0.3)}
    locks.insert_one(left)
    held = pytest.raises(ServiceUnavailable, match="held its turn")
    with held, selections.choice_turn("clf", wait_s=0.1):
        pass
    time.sleep(0.4)
    with selections.choice_turn("clf", wait_s=5):
        assert locks.find_one({"_id": "choice:clf"})["owner"] != "killed"


def test_turns_of_other_models_do_not_wait(selections):
    with selections.choice_turn("clf"), selections.choice_turn("other", wait_s=0):
        pass


def test_a_turn_held_longer_than_its_hold_is_renewed_not_taken(selections):
    """A choice's MLflow calls on a slow server outlasted the hold: another choice took the turn
    in the middle of it."""
    with selections.choice_turn("clf", hold_s=0.4):
        time.sleep(1.0)
        held = pytest.raises(ServiceUnavailable, match="held its turn")
        with held, selections.choice_turn("clf", wait_s=0.5, hold_s=0.4):
            pass
