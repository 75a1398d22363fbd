from datetime import UTC, datetime, timedelta

from common import utcnow


def test_now_is_utc_to_the_millisecond_as_mongodb_keeps_it():
    before = datetime.now(UTC)
    now = utcnow()
    assert now.tzinfo is UTC and now.microsecond % 1000 == 0
    assert before - timedelta(milliseconds=1) <= now <= datetime.now(UTC)
