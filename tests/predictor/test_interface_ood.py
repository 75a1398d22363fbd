"""Clients that send images flagged ``out_of_distribution`` to a person do not lose the check
unasked: a version without it, after one with it, is served once its chooser confirmed it."""

import pytest

from dashboard.choose import choose_run
from tests.conftest import log_untrained_run
from tests.predictor.conftest import move_alias_by_hand, wait_ready
from tests.predictor.test_stale import wait_for


@pytest.fixture(scope="module")
def flagging_run(mlflow_server, demo_data) -> str:
    """A servable run of the demo data's classes whose model carries the check."""
    return log_untrained_run(mlflow_server, demo_data, seed=21, ood=True)


def test_a_version_without_the_check_is_not_served_until_chosen_as_such(
    predictor, settings, flagging_run, served_runs
):
    choose_run(flagging_run, "flags unusual images", settings, allow_unevaluated=True)
    assert wait_ready(predictor, "1")["ood_check"] is not None
    moved = move_alias_by_hand(settings, served_runs[0])  # same classes, no check
    ready = wait_for(predictor, stale=True)
    assert ready["version"] == "1" and ready["ood_check"] is not None  # still flagging
    assert (
        f"names version {moved}, which changes what clients of version 1 receive "
        "(out-of-distribution check → none: `out_of_distribution` and `ood_score` are null "
        "for every image" in ready["problem"]
    )

    choose_run(served_runs[0], "no check now", settings, allow_unevaluated=True,
               allow_interface_change=True)  # fmt: skip
    ready = wait_ready(predictor, moved)
    assert (ready["stale"], ready["problem"], ready["ood_check"]) == (False, None, None)
