"""Errors that carry a user-facing message and map onto HTTP status codes.

Every service raises these for bad input or unavailable dependencies so that the API layer can
answer with the right status and the CLI can print one clear line instead of a traceback.
"""


class PipelineError(Exception):
    """Base class: ``str(error)`` is a message for the user, saying what is wrong and what to do."""

    status_code = 500


class InvalidInput(PipelineError):
    """The user's input cannot be processed (HTTP 422)."""

    status_code = 422


class NotFound(PipelineError):
    """A named thing (run, job, file) does not exist (HTTP 404)."""

    status_code = 404


class ServiceUnavailable(PipelineError):
    """A dependency (MLflow, MongoDB) cannot be reached (HTTP 503)."""

    status_code = 503
