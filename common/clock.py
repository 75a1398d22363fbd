"""The one "now" that records and tags store: UTC, truncated to milliseconds (what MongoDB keeps),
so that a time written to a record and to an MLflow tag compares equal when read back."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now in UTC, truncated to milliseconds."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
