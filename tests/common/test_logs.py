"""One log format for every process (``common.logs``): UTC times, level, logger, message."""

import logging
import re
import sys

import pytest
from pydantic import ValidationError

from common import Settings, configure_logging
from common.logs import OWN_LOGGERS, UtcFormatter

LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\w+) ([\w.]+) (.*)")


@pytest.fixture
def root_logging():
    """The root logger's handlers and level, and the pipeline's loggers' levels, put back
    after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    own = {name: logging.getLogger(name).level for name in OWN_LOGGERS}
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, was in own.items():
        logging.getLogger(name).setLevel(was)


def test_a_line_has_the_utc_time_level_logger_and_message(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # 5:30 ahead: the line stays in UTC
    record = logging.LogRecord("jobs.runner", logging.WARNING, __file__, 1, "job %s", ("j1",), None)
    record.created, record.msecs = 0.25, 250.0
    assert UtcFormatter().format(record) == "1970-01-01T00:00:00.250Z WARNING jobs.runner job j1"


def test_a_line_break_in_a_quoted_name_cannot_start_a_line_of_its_own():
    forged = "x.png\n2026-12-07T00:00:00.000Z INFO dashboard alias moved by admin\x1b[2K\x9b\u202e"
    record = logging.LogRecord("jobs.runner", logging.WARNING, __file__, 1, "skipped %s", (forged,),
                               None)  # fmt: skip
    [line] = UtcFormatter().format(record).splitlines()
    assert line.endswith("skipped x.png\\n2026-12-07T00:00:00.000Z INFO dashboard alias moved by "
                         "admin\\x1b[2K\\x9b\\u202e")  # fmt: skip


def test_a_traceback_keeps_its_lines():
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord("jobs", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = UtcFormatter().format(record).splitlines()
    assert lines[0].endswith("ERROR jobs failed")
    assert lines[1] == "Traceback (most recent call last):"


def test_configuring_twice_leaves_one_handler_at_the_new_level(root_logging, capsys):
    configure_logging("INFO")
    configure_logging("WARNING")
    logging.getLogger("jobs.runner").info("not shown")
    logging.getLogger("jobs.runner").warning("shown %d", 1)
    [line] = capsys.readouterr().err.splitlines()
    assert LINE.fullmatch(line).groups() == ("WARNING", "jobs.runner", "shown 1")


def test_debug_is_the_pipelines_own_not_every_librarys(root_logging):
    configure_logging("DEBUG")
    assert logging.getLogger("jobs.store").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("pymongo.command").isEnabledFor(logging.DEBUG)


def test_uvicorns_handlers_take_the_format(root_logging):
    access = logging.getLogger("uvicorn.access")
    handler = logging.StreamHandler()
    access.addHandler(handler)
    try:
        configure_logging("INFO")
        assert isinstance(handler.formatter, UtcFormatter)
    finally:
        access.removeHandler(handler)


def test_the_level_setting_takes_any_case_and_refuses_others(monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert Settings().log_level == "DEBUG"
    monkeypatch.setenv("LOG_LEVEL", "verbose")
    with pytest.raises(ValidationError, match="log_level"):
        Settings()


def test_every_package_of_the_pipeline_takes_the_level():
    from tests.test_layers import ALLOWED

    assert set(OWN_LOGGERS) == set(ALLOWED), "add the package to common.logs.OWN_LOGGERS"
