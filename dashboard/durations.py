"""When a run started and how long it ran, as the leaderboard shows them: a run that the next
trainer found dead (``pipeline.ended``) ran until its last progress report, not until then."""

import json
from datetime import UTC, datetime

from runs import contract


def when(ms: int | None) -> str:
    """``2026-12-05 21:30`` (UTC) of a time in ms since the epoch; ``–`` without one."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") if ms else "–"


def last_report(tags: dict[str, str]) -> tuple[datetime, dict] | None:
    """The trainer's last progress report (``pipeline.progress``): when (with its time zone)
    and the report itself (epoch, epochs, member, members); None without a readable one."""
    try:
        report = json.loads(tags[contract.PROGRESS_TAG])
        at = datetime.fromisoformat(report["at"])
    except (KeyError, TypeError, ValueError):
        return None
    return (at, report) if at.tzinfo else None


def _last_report_ms(tags: dict[str, str]) -> int | None:
    """When the trainer last reported progress, in ms."""
    found = last_report(tags)
    return None if found is None else round(found[0].timestamp() * 1000)


def duration(run: dict) -> str:
    """``2 min 38 s`` from the run's start and end (``running`` when it has no end).

    A run whose trainer died is marked KILLED by the next trainer on its checkpoint folder
    (``pipeline.ended``), maybe hours later: its end time is then, not when it stopped. It
    shows how long it trained up to its last progress report, ``≥ 12 s``, or ``unknown``
    without one (killed in its first epoch).
    """
    if not run["start_time"]:
        return "–"
    end = run["end_time"]
    if run["status"] == "KILLED" and contract.ENDED_TAG in run["tags"]:
        end = _last_report_ms(run["tags"])
        if end is None:
            return "unknown (killed)"
        return f"≥ {_span(max(0, round((end - run['start_time']) / 1000)))} (killed)"
    if not end:
        return "running" if run["status"] == "RUNNING" else "–"
    return _span(max(0, round((end - run["start_time"]) / 1000)))


def _span(seconds: int) -> str:
    """``12 s``, ``2 min 38 s``, ``3 h 05 min``."""
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
