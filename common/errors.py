"""Errors that carry a user-facing message and map onto HTTP status codes.

Every service raises these for bad input or unavailable dependencies so that the API layer can
answer with the right status and the CLI can print one clear line instead of a traceback.

A message never carries credentials: each error's text passes through ``redact_uri`` when it is
made, whichever message (MLflow's own, with its request URL) it quotes.
"""

from common.redact import printable, redact_uri


class PipelineError(Exception):
    """Base class: ``str(error)`` is a message for the user, saying what is wrong and what to do."""

    status_code = 500

    def __init__(self, message: object = "", *args: object) -> None:
        if isinstance(message, str):  # a file name that is not UTF-8 would break a JSON answer
            message = redact_uri(printable(message))
        super().__init__(message, *args)


class InvalidInput(PipelineError):
    """The user's input cannot be processed (HTTP 422)."""

    status_code = 422


class NotFound(PipelineError):
    """A named thing (run, job, file) does not exist (HTTP 404)."""

    status_code = 404


class ServiceUnavailable(PipelineError):
    """A dependency (MLflow, MongoDB) cannot be reached (HTTP 503)."""

    status_code = 503
    retry_after: int | None = 10
    """``Retry-After`` seconds (about a restart of MLflow or MongoDB); None where waiting cannot
    help (an operator must act: a damaged store file), so no client retries for ever."""

    def needs_operator(self) -> "ServiceUnavailable":
        """This error, marked as one that retrying does not cure (``retry_after`` None)."""
        self.retry_after = None
        return self


class Conflict(PipelineError):
    """The request does not fit the thing's current state, e.g. cancelling a finished job (409)."""

    status_code = 409


class TooManyRequests(PipelineError):
    """A limit is reached, e.g. the job queue is full (HTTP 429 with ``Retry-After``)."""

    status_code = 429

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self):  # keep retry_after when pickled (worker processes)
        return (type(self), (str(self), self.retry_after))


class StartupError(SystemExit):
    """A service or CLI cannot start with its configuration; ``str()`` is the one line to show.

    A ``SystemExit``, so that ``uvicorn evaluator.app:app`` or ``python -m trainer`` stops with
    this line and exit status 1 instead of a traceback.
    """

    def __str__(self) -> str:
        return str(self.code)
