"""The error answers as the OpenAPI schema lists them: their models and what each status means
(``error_responses(...)``: a route's ``responses`` entries)."""

from typing import Any

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """Every error answer: ``detail`` says what is wrong and how to fix it."""

    detail: str


class ValidationItem(BaseModel):
    """One field that failed validation."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationErrorOut(BaseModel):
    """422: a message (checks of the run and its data) or one item per malformed field."""

    detail: str | list[ValidationItem] = Field(description="why the request cannot be processed")


ERROR_DESCRIPTIONS = {
    401: "PIPELINE_API_TOKEN is set and the Bearer token is missing or wrong",
    403: "PIPELINE_API_TOKEN is unset and the request is addressed to a host name other than "
    "localhost (only localhost or an IP address is answered: DNS rebinding)",
    404: "no such run or job",
    408: "the request body did not arrive completely within BODY_TIMEOUT_S seconds",
    409: "the job has already finished",
    413: "request body larger than MAX_BODY_BYTES",
    422: "malformed request, or a run or data set that cannot be used (the detail says why)",
    429: "MAX_QUEUED_JOBS jobs of this kind are queued; retry after Retry-After seconds",
    503: "MLflow or the job store (MongoDB) is unreachable, or the request bodies in progress "
    "fill the service's MAX_BODY_BUFFER_BYTES (retry after Retry-After seconds)",
}


def error_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for ``statuses`` with their models; ``descriptions`` (keyed
    ``s404``, ...) replace the default wording of a status."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        model = ValidationErrorOut if status == 422 else ErrorOut
        description = descriptions.get(f"s{status}", ERROR_DESCRIPTIONS[status])
        out[status] = {"model": model, "description": description}
    return out
