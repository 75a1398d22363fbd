"""One log format for every process of the pipeline, on standard error (what ``kubectl logs``,
Docker and ``make demo``'s ``logs/<service>.log`` keep)::

    2026-12-07T00:12:03.123Z WARNING jobs.runner evaluate job 3f2a... (run 9c1e...) failed ...

the time in UTC (ISO 8601, ``Z``: the time zone of job records, API answers and the dashboard),
the level, the logger and the message; one line per event, but for a bug's traceback. The level
is the setting ``LOG_LEVEL`` (INFO). ``configure_logging`` puts uvicorn's own lines (its access
lines included) in this format too, so a service's output parses one way.
"""

import logging
import re
import sys
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# uvicorn configures these before it imports the app; their handlers are kept, with this format
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
OWN_LOGGERS = ("augmenter", "common", "dashboard", "dataloader", "evaluator", "explainer", "jobs",
               "launcher", "mlpipeline_model", "predictor", "runs", "service",
               "trainer")  # fmt: skip
"""The pipeline's packages, whose loggers take ``LOG_LEVEL`` as it is; other libraries' stay at
INFO or above: pymongo's DEBUG lines carry the documents it sends (names, reasons, paths)."""


CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Characters that end a line, steer a terminal (C0 and C1 controls) or reorder the text shown
(bidirectional overrides); a tab is kept."""


def _escaped(found: re.Match) -> str:
    return found.group().encode("unicode_escape").decode("ascii")


class UtcFormatter(logging.Formatter):
    """``FORMAT`` with ``asctime`` as ``2026-12-07T00:12:03.123Z`` (UTC, whatever ``TZ`` says)."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802
        # Messages quote what others wrote (file and class names, MLflow tags, job errors): a
        # line break in one would start a line that reads as another event, so control
        # characters are written escaped (a traceback, added after this, keeps its lines).
        record.message = CONTROL.sub(_escaped, record.message)
        return super().formatMessage(record)


class _Handler(logging.StreamHandler):
    """The root handler ``configure_logging`` installs (told apart from others by its class),
    writing to the ``sys.stderr`` of the moment (as ``logging.lastResort`` does): one replaced
    since, as a test's capture does, is not written to once closed."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """Log at ``level`` and above (the pipeline's own loggers; others at INFO and above), in
    ``FORMAT``, to standard error: the root logger gets one handler (a second call replaces it,
    with the new level) and uvicorn's handlers the format.
    Loggers that keep their own handlers (MLflow's, Streamlit's) are left as they are."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler()
    handler.setFormatter(UtcFormatter())
    root.addHandler(handler)
    root.setLevel(max(logging.getLevelName(level), logging.INFO))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for own in logger.handlers:
            own.setFormatter(UtcFormatter())
        if logger.handlers:
            logger.setLevel(level)
