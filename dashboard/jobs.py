"""Asking the evaluator and explainer for work over HTTP and following their jobs (no Streamlit)."""

import requests

from common import PipelineError, ServiceUnavailable, Settings
from launcher import EVALUATOR, EXPLAINER

FINAL_STATUSES = ("succeeded", "failed")

# kind -> (settings field with the base URL, endpoint, service)
SERVICES = {
    "evaluate": ("evaluator_url", "/evaluate", EVALUATOR),
    "explain": ("explainer_url", "/explain", EXPLAINER),
}


class JobClient:
    """Submits ``evaluate`` / ``explain`` jobs and polls ``/jobs/{id}``."""

    def __init__(self, settings: Settings, kind: str, timeout: float = 10.0) -> None:
        field, self.endpoint, self.service = SERVICES[kind]
        self.kind = kind
        self.base_url = getattr(settings, field).rstrip("/")
        self.timeout = timeout
        self.headers = {}
        if settings.pipeline_api_token:
            self.headers["Authorization"] = f"Bearer {settings.pipeline_api_token}"

    def _down(self, exc: Exception) -> ServiceUnavailable:
        command = " ".join(self.service.render(host="127.0.0.1"))
        return ServiceUnavailable(
            f"The {self.service.name} at {self.base_url} is not reachable "
            f"({type(exc).__name__}). Start it with `{command}` (or `make demo`), or set "
            f"{self.service.name.upper()}_URL to where it runs."
        )

    def _request(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = requests.request(
                method, self.base_url + path, headers=self.headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise self._down(exc) from exc
        if response.status_code in (401, 403):
            raise PipelineError(
                f"The {self.service.name} refused the request (HTTP {response.status_code}): set "
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

    def submit(self, run_id: str, inputs: dict | None = None) -> dict:
        """Start a job for ``run_id``; returns the job document (with ``job_id``)."""
        return self._request("POST", self.endpoint, json={"run_id": run_id, **(inputs or {})})

    def get(self, job_id: str, wait: float = 0) -> dict:
        """The job document, waiting up to ``wait`` seconds for it to change."""
        params = {"wait": wait} if wait else None
        return self._request("GET", f"/jobs/{job_id}", params=params)

    def latest(self, run_id: str) -> dict | None:
        """The newest job of this kind for ``run_id``, if any."""
        jobs = self._request("GET", "/jobs", params={"run_id": run_id})
        if isinstance(jobs, dict):
            jobs = jobs.get("jobs", [])
        jobs = [j for j in jobs if j.get("kind", self.kind) == self.kind]
        return max(jobs, key=lambda j: str(j.get("created_at", "")), default=None)


def job_id(job: dict) -> str:
    return str(job.get("job_id") or job.get("_id") or job.get("id"))


def progress_fraction(job: dict) -> float:
    """A 0–1 progress figure for a job document (uses its ``progress`` when the service sets it)."""
    if job.get("status") in FINAL_STATUSES:
        return 1.0
    progress = job.get("progress")
    if isinstance(progress, dict):
        progress = progress.get("fraction")
    if isinstance(progress, int | float):
        return max(0.0, min(1.0, float(progress)))
    return 0.1 if job.get("status") == "running" else 0.0
