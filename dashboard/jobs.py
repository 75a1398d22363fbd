"""A typed client of the evaluator's and explainer's job API, and following a job (no Streamlit).

Jobs are parsed into ``Job``, the API's own ``jobs.JobOut`` widened by what the jobs issue adds to
the contract: ``progress`` (``{"fraction": 0–1, "stage": "attributions 5/16"}``) and the
``cancelled`` status. A service that does not report progress yet still parses (``progress`` is
``None``), and one that ignores ``?wait=`` is still polled at most once per ``MIN_INTERVAL_S``.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, ValidationError

from common import PipelineError, ServiceUnavailable, Settings
from jobs import FINAL_STATUSES, JobOut
from launcher import EVALUATOR, EXPLAINER

FINAL = frozenset(FINAL_STATUSES)
MIN_INTERVAL_S = 1.0  # never more than one request per second while following a job
WAIT_S = 1.0  # long-poll: the service answers at once on a change, else after this
MAX_FOLLOW_S = 30 * 60

# kind -> (settings field with the base URL, endpoint, service)
SERVICES = {
    "evaluate": ("evaluator_url", "/evaluate", EVALUATOR),
    "explain": ("explainer_url", "/explain", EXPLAINER),
}


class Progress(BaseModel):
    """How far a running job is: ``fraction`` 0–1 and a human ``stage``."""

    model_config = ConfigDict(extra="allow")

    fraction: float | None = None
    stage: str | None = None


class Job(JobOut):
    """``JobOut`` as the dashboard reads it: also ``progress`` and the ``cancelled`` status."""

    model_config = ConfigDict(extra="allow")

    status: str  # queued, running, succeeded, failed, cancelled
    progress: Progress | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    def fraction(self) -> float | None:
        """0–1 progress: 1 once finished, the service's figure while running, else ``None``."""
        if self.status == "succeeded":
            return 1.0
        if self.progress is not None and self.progress.fraction is not None:
            return max(0.0, min(1.0, self.progress.fraction))
        return None

    def elapsed_s(self, now: datetime | None = None) -> float:
        """Seconds since the job started (or was queued), until it finished or ``now``."""
        start = self.started_at or self.created_at
        end = self.finished_at or now or datetime.now(UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        return max(0.0, (end - start).total_seconds())

    def describe(self) -> str:
        """One line for a person: kind, status, stage, percentage and elapsed time."""
        parts = [f"{self.kind} job {self.job_id[:8]}: {self.status}"]
        if not self.finished and self.progress is not None and self.progress.stage:
            parts.append(self.progress.stage)
        fraction = self.fraction()
        if fraction is not None and not self.finished:
            parts.append(f"{fraction:.0%}")
        elif not self.finished and self.status == "running":
            parts.append("the service reports no progress")
        parts.append(f"{self.elapsed_s():.0f} s")
        return " · ".join(parts)


class JobClient:
    """Submits ``evaluate`` / ``explain`` jobs and reads ``/jobs/{id}`` as ``Job``."""

    def __init__(self, settings: Settings, kind: str, timeout: float = 10.0) -> None:
        field, self.endpoint, self.service = SERVICES[kind]
        self.kind = kind
        self.base_url = getattr(settings, field).rstrip("/")
        self.timeout = timeout
        self.headers = {}
        if settings.pipeline_api_token:
            self.headers["Authorization"] = f"Bearer {settings.pipeline_api_token}"

    def _down(self, exc: Exception) -> ServiceUnavailable:
        url = urlsplit(self.base_url)  # the command that serves where the dashboard looks
        host = url.hostname if url.hostname in ("127.0.0.1", "localhost") else "0.0.0.0"
        command = " ".join(self.service.render(host=host, port=url.port or self.service.port))
        return ServiceUnavailable(
            f"The {self.service.name} at {self.base_url} is not reachable "
            f"({type(exc).__name__}). Start it with `{command}` (or `make demo`), or set "
            f"{self.service.name.upper()}_URL to where it runs."
        )

    def _request(self, method: str, path: str, timeout: float = 0, **kwargs):
        try:
            response = requests.request(
                method,
                self.base_url + path,
                headers=self.headers,
                timeout=self.timeout + timeout,
                **kwargs,
            )
        except requests.RequestException as exc:
            raise self._down(exc) from exc
        if response.status_code == 401:
            raise PipelineError(
                f"The {self.service.name} refused the request (HTTP 401): set "
                "PIPELINE_API_TOKEN for the dashboard to the token the service uses."
            )
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise PipelineError(
                f"The {self.service.name} answered HTTP {response.status_code}: {detail}"
            )
        return response.json()

    def _job(self, document) -> Job:
        try:
            return Job.model_validate(document)
        except ValidationError as exc:
            raise PipelineError(
                f"The {self.service.name} at {self.base_url} answered something that is not a "
                f"job ({exc.error_count()} problems, first: {exc.errors()[0]['msg']})"
            ) from exc

    def submit(self, run_id: str, force: bool = False, inputs: dict | None = None) -> Job:
        """Start a job for ``run_id`` (``force``: even if an equal result exists)."""
        body = {"run_id": run_id, **(inputs or {})}
        if force:
            body["force"] = True
        return self._job(self._request("POST", self.endpoint, json=body))

    def get(self, job_id: str, wait: float = 0) -> Job:
        """The job, waiting up to ``wait`` seconds for it to change (``?wait=``)."""
        params = {"wait": wait} if wait else None
        return self._job(self._request("GET", f"/jobs/{job_id}", timeout=wait, params=params))


def follow(
    client: JobClient,
    job: Job,
    on_update: Callable[[Job], None] = lambda job: None,
    max_s: float = MAX_FOLLOW_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Job:
    """Long-poll ``job`` until it ends (or ``max_s`` passes), calling ``on_update`` on each answer.

    Each request asks the service to wait up to ``WAIT_S`` for a change; when it answers sooner
    without a change (or ignores ``wait``), the next request waits for the rest of
    ``MIN_INTERVAL_S``, so a job is never polled more than once per second.
    """
    start = clock()
    on_update(job)
    while not job.finished and clock() - start < max_s:
        asked = clock()
        job = client.get(job.job_id, wait=WAIT_S)
        on_update(job)
        rest = MIN_INTERVAL_S - (clock() - asked)
        if rest > 0 and not job.finished:
            sleep(rest)
    return job
