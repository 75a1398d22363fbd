"""The choice's turn in the store (``SelectionStore.choice_turn``), on each backend: one choice
of a registered model at a time among every chooser sharing the store."""

import threading
import time

import pytest

from common import ServiceUnavailable
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
    selections.choice_turn("clf", hold_s=0.2).__enter__()  # never left: its process died
    time.sleep(0.3)
    with selections.choice_turn("clf", wait_s=5):
        pass


def test_turns_of_other_models_do_not_wait(selections):
    with selections.choice_turn("clf"), selections.choice_turn("other", wait_s=0):
        pass
