"""``GET /metrics`` of a job service (``service.metrics``, ``jobs.jobmetrics``), scraped over real
HTTP from the toy app: requests by route template, the queue counted in the store, attempt
outcomes, the token, and a store outage that leaves the scrape answering."""

from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LiveServer, unreachable_mongo
from tests.jobs.conftest import JOB_RELEASED, make_settings, make_toy_app, wait_until

TOKEN = "metrics-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERVICE = "toy service"  # service_app's title in lower case


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """The samples of ``url``'s ``/metrics``: (name, labels) → value."""
    answer = requests.get(f"{url}/metrics", headers=AUTH, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset({"service": SERVICE, **labels}.items())))


def requests_of(samples: dict, route: str, method: str, status: str) -> float | None:
    labels = {"route": route, "method": method, "status": status}
    return value(samples, "mlpipeline_http_requests_total", **labels)


@pytest.fixture
def toy(tmp_path) -> Iterator[str]:
    """The toy job service with the token, over real HTTP; its held jobs end with the test."""
    JOB_RELEASED.clear()
    settings = make_settings(tmp_path, pipeline_api_token=TOKEN)
    with LiveServer(make_toy_app(settings)) as live:
        try:
            yield live.url
        finally:
            JOB_RELEASED.set()  # before the server stops: its shutdown waits for the job


def post_toy(url: str, x: int, wait: float = 0, **extra) -> dict:
    body = {"run_id": "ab12", "x": x, **extra}
    answer = requests.post(f"{url}/toy?wait={wait}", json=body, headers=AUTH, timeout=60)
    assert answer.status_code in (200, 202), answer.text
    return answer.json()


def test_requests_are_counted_by_route_template_and_a_finished_job_by_outcome(toy):
    job = post_toy(toy, 1, wait=30)
    assert job["status"] == "succeeded"
    assert requests.get(f"{toy}/jobs/{job['job_id']}", headers=AUTH, timeout=30).ok
    assert requests.get(f"{toy}/no/such/path", headers=AUTH, timeout=30).status_code == 404
    assert requests.get(f"{toy}/health", timeout=30).ok
    # the attempt is counted just after the job is stored (what the wait returned on)
    counted = lambda: value(scrape(toy), "mlpipeline_job_attempts_total", outcome="succeeded")  # noqa: E731
    wait_until(lambda: counted() == 1, 30, "the attempt counted")
    samples = scrape(toy)
    assert requests_of(samples, "/toy", "POST", "200") == 1
    assert requests_of(samples, "/jobs/{job_id}", "GET", "200") == 1
    assert requests_of(samples, "unmatched", "GET", "404") == 1
    routes = {dict(labels).get("route") for name, labels in samples}
    assert "/health" not in routes  # answered by HealthFastPath, before any counting
    assert not any(job["job_id"] in str(route) for route in routes)
    duration = "mlpipeline_http_request_duration_seconds_count"
    assert value(samples, duration, route="/jobs/{job_id}") == 1
    attempts = "mlpipeline_job_attempts_total"
    assert value(samples, attempts, outcome="succeeded") == 1
    assert value(samples, attempts, outcome="failed") == 0
    assert value(samples, attempts, outcome="requeued") == 0


def test_a_failing_job_counts_a_failed_attempt(toy):
    assert post_toy(toy, -1, wait=30)["status"] == "failed"  # x < 0: the user's mistake
    # counted just after the job is stored (what the wait returned on)
    counted = lambda: value(scrape(toy), "mlpipeline_job_attempts_total", outcome="failed")  # noqa: E731
    wait_until(lambda: counted() == 1, 30, "the attempt counted")
    samples = scrape(toy)
    assert value(samples, "mlpipeline_job_attempts_total", outcome="failed") == 1
    assert value(samples, "mlpipeline_job_attempts_total", outcome="succeeded") == 0


def test_queued_and_running_jobs_are_counted_in_the_store_at_each_scrape(toy):
    post_toy(toy, 2, held=True)  # runs until released; concurrency 1: the next one waits
    wait_until(lambda: value(scrape(toy), "mlpipeline_jobs", status="running") == 1, 30, "run")
    post_toy(toy, 3)
    samples = scrape(toy)
    assert value(samples, "mlpipeline_jobs", status="running") == 1
    assert value(samples, "mlpipeline_jobs", status="queued") == 1
    JOB_RELEASED.set()
    idle = {"running": 0.0, "queued": 0.0}
    counted = lambda: {s: value(scrape(toy), "mlpipeline_jobs", status=s) for s in idle}  # noqa: E731
    wait_until(lambda: counted() == idle, 30, "both jobs finished")


def test_metrics_need_the_token_and_a_refusal_is_counted_under_its_route(toy):
    assert requests.get(f"{toy}/metrics", timeout=30).status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * len(TOKEN)}
    assert requests.get(f"{toy}/metrics", headers=wrong, timeout=30).status_code == 401
    refused = requests.post(f"{toy}/toy", json={"run_id": "ab12", "x": 1}, timeout=30)
    assert refused.status_code == 401
    assert requests.request("PROPFIND", f"{toy}/toy", timeout=30).status_code == 401
    samples = scrape(toy)
    assert requests_of(samples, "/metrics", "GET", "401") == 2
    assert requests_of(samples, "/toy", "POST", "401") == 1
    assert requests_of(samples, "/toy", "other", "401") == 1  # a method no route takes: one label


def test_a_store_outage_leaves_metrics_answering_without_the_queue(tmp_path):
    settings = make_settings(tmp_path, pipeline_api_token=TOKEN, mongo_uri=unreachable_mongo())
    with LiveServer(make_toy_app(settings)) as live:
        samples = scrape(live.url)  # the count waits out pymongo's server selection
    assert value(samples, "mlpipeline_metrics_store_errors_total") == 1
    assert not any(name == "mlpipeline_jobs" for name, _ in samples)
    assert value(samples, "mlpipeline_job_attempts_total", outcome="succeeded") == 0
