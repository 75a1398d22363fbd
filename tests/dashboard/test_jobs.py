import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from common import PipelineError, ServiceUnavailable, Settings
from dashboard.jobs import Job, JobClient, follow
from tests.conftest import LiveServer


def _settings(url: str, token: str | None) -> Settings:
    return Settings(_env_file=None, evaluator_url=url, pipeline_api_token=token)


def _job(**fields) -> Job:
    now = datetime.now(UTC)
    return Job.model_validate(
        {"job_id": "j" * 24, "kind": "explain", "run_id": "a" * 32, "status": "running",
         "inputs": {}, "created_at": now - timedelta(seconds=42), "url": "/jobs/x", **fields}
    )  # fmt: skip


def test_a_job_with_progress_says_stage_percentage_and_elapsed_time():
    job = _job(progress={"fraction": 0.3125, "stage": "attributions 5/16"})
    assert job.fraction() == 0.3125
    text = job.describe()
    assert "attributions 5/16" in text and "31%" in text and "42 s" in text


def test_a_job_without_progress_still_reads_and_says_so():
    job = _job()
    assert job.fraction() is None
    assert "reports no progress" in job.describe()
    assert _job(status="cancelled").finished  # a status the jobs issue adds


def test_service_down_says_how_to_start_it(unreachable_uri, dashboard_runs):
    client = JobClient(_settings(unreachable_uri, None), "evaluate", timeout=2)
    port = unreachable_uri.rsplit(":", 1)[1]
    with pytest.raises(
        ServiceUnavailable, match=rf"not reachable.*uvicorn evaluator\.app:app .*--port {port}`"
    ):
        client.submit(dashboard_runs["pipeline"])


def test_wrong_token_says_which_variable_to_set(evaluator_service, dashboard_runs):
    client = JobClient(_settings(evaluator_service, "wrong"), "evaluate")
    with pytest.raises(PipelineError, match="PIPELINE_API_TOKEN"):
        client.submit(dashboard_runs["pipeline"])


def test_a_403_says_the_services_reason_not_the_token_advice(dashboard_runs):
    """Without a token a service refuses a host name with 403 (``service.intake.local_host``):
    there is no token to set, and its detail says what to do."""
    refusing = FastAPI()
    said = "without PIPELINE_API_TOKEN this service answers only requests addressed to localhost"

    @refusing.post("/evaluate")
    def evaluate() -> JSONResponse:
        return JSONResponse({"detail": said}, status_code=403)

    with LiveServer(refusing) as service:
        client = JobClient(_settings(service.url, None), "evaluate")
        with pytest.raises(PipelineError, match="HTTP 403") as raised:
            client.submit(dashboard_runs["pipeline"])
    assert said in str(raised.value) and "for the dashboard" not in str(raised.value)


def test_a_job_is_followed_to_its_end_at_most_once_per_second(
    evaluator_service, fresh_run, monkeypatch
):
    client = JobClient(
        _settings(evaluator_service, "s3cret-test-token-0123456789abcdef"), "evaluate"
    )
    asked: list[float] = []
    request = JobClient._request

    def counted(self, method, path, *args, **kwargs):
        if path.startswith("/jobs/"):
            asked.append(time.monotonic())
        return request(self, method, path, *args, **kwargs)

    monkeypatch.setattr(JobClient, "_request", counted)
    job = client.submit(fresh_run)
    assert job.run_id == fresh_run
    seen: list[Job] = []
    job = follow(client, job, seen.append, max_s=300)
    assert job.status == "succeeded", job.error
    assert job.fraction() == 1.0
    assert len(asked) >= 1
    gaps = [b - a for a, b in itertools.pairwise(asked)]
    assert all(gap >= 0.95 for gap in gaps), gaps
