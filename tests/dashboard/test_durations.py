"""How long a run ran, as the leaderboard shows it."""

import json
from datetime import UTC, datetime

from dashboard import durations
from runs import contract


def test_a_finished_run_lasts_from_its_start_to_its_end():
    run = {"status": "FINISHED", "start_time": 1_000, "end_time": 159_000, "tags": {}}
    assert durations.duration(run) == "2 min 38 s"


def _found_dead(progress_at: int | None) -> dict:
    """A run started at t = 1,700,000,000 s, its trainer killed, marked KILLED 635 s later by the
    next trainer (``trainer.mlflow_run.close_abandoned``); ``progress_at``: its last report."""
    start = 1_700_000_000_000
    run = {"status": "KILLED", "start_time": start, "end_time": start + 635_000,
           "tags": {"pipeline.stage": "training"}}  # fmt: skip
    run["tags"][contract.ENDED_TAG] = "its trainer (process 7 on host) ended without marking"
    if progress_at is not None:
        at = datetime.fromtimestamp(start / 1000 + progress_at, UTC)
        report = {"at": at.isoformat(timespec="seconds"), "epoch": 1, "epochs": 40}
        run["tags"][contract.PROGRESS_TAG] = json.dumps(report)
    return run


def test_a_run_found_dead_lasts_until_its_last_report_not_until_it_was_found():
    assert durations.duration(_found_dead(progress_at=12)) == "≥ 12 s (killed)"


def test_a_run_found_dead_before_its_first_report_has_no_known_duration():
    assert durations.duration(_found_dead(progress_at=None)) == "unknown (killed)"
