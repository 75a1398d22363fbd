import time

import pytest

from common import PipelineError, ServiceUnavailable, Settings
from dashboard.jobs import JobClient, job_id, progress_fraction


def _settings(url: str, token: str | None) -> Settings:
    return Settings(_env_file=None, evaluator_url=url, pipeline_api_token=token)


def test_service_down_says_how_to_start_it(unreachable_uri, dashboard_runs):
    client = JobClient(_settings(unreachable_uri, None), "evaluate", timeout=2)
    with pytest.raises(ServiceUnavailable, match=r"not reachable.*uvicorn evaluator\.app:app"):
        client.submit(dashboard_runs["pipeline"])


def test_wrong_token_says_which_variable_to_set(evaluator_service, dashboard_runs):
    client = JobClient(_settings(evaluator_service, "wrong"), "evaluate")
    with pytest.raises(PipelineError, match="PIPELINE_API_TOKEN"):
        client.submit(dashboard_runs["pipeline"])


def test_job_is_followed_to_its_end_with_the_token(evaluator_service, fresh_run):
    client = JobClient(
        _settings(evaluator_service, "s3cret-test-token-0123456789abcdef"), "evaluate"
    )
    job = client.submit(fresh_run)
    assert job["run_id"] == fresh_run
    deadline = time.monotonic() + 300  # 2 shared CPU cores: evaluation may queue behind others
    while job["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
        job = client.get(job_id(job), wait=5)
    assert job["status"] == "succeeded", job.get("error")
    assert progress_fraction(job) == 1.0
    assert client.latest(fresh_run)["job_id"] == job_id(job)
