"""The predictor's ``/metrics`` (``predictor.metrics`` beside ``service.metrics``): the served
version, the predictions and images it answered, the /predict requests by status."""

import requests
from prometheus_client.parser import text_string_to_metric_families

from dashboard.choose import choose_run
from predictor.app import create_app
from tests.conftest import LiveServer
from tests.predictor.conftest import AUTH, post_images, wait_ready


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    answer = requests.get(f"{url}/metrics", headers=AUTH, timeout=30)
    assert answer.status_code == 200, answer.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset({"service": "predictor", **labels}.items())))


def test_metrics_show_the_served_version_and_what_it_predicted(
    predictor, settings, served_runs, demo_data
):
    assert requests.get(f"{predictor}/metrics", timeout=30).status_code == 401
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    images = sorted((demo_data / "test").rglob("*.png"))[:2]
    assert post_images(predictor, images).status_code == 200
    samples = scrape(predictor)
    model = {"model": settings.model_name}
    assert value(samples, "mlpipeline_model_loaded") == 1
    served = {**model, "alias": settings.model_alias, "problem": "false"}
    assert value(samples, "mlpipeline_served_model_version", **served) == 1
    assert value(samples, "mlpipeline_predictions_total", **model, version="1") == 1
    assert value(samples, "mlpipeline_predicted_images_total", **model, version="1") == 2
    predict = {"route": "/predict", "method": "POST"}
    assert value(samples, "mlpipeline_http_requests_total", **predict, status="200") == 1


def test_without_a_model_metrics_say_none_is_loaded(settings, unreachable_uri):
    alone = settings.model_copy(update={"mlflow_tracking_uri": unreachable_uri})
    with LiveServer(create_app(alone)) as server:
        refused = requests.post(f"{server.url}/predict", files=[("files", ("a.png", b"x"))],
                                headers=AUTH, timeout=30)  # fmt: skip
        assert refused.status_code == 503
        samples = scrape(server.url)
    assert value(samples, "mlpipeline_model_loaded") == 0
    assert not any(name == "mlpipeline_served_model_version" for name, _ in samples)
    predict = {"route": "/predict", "method": "POST", "status": "503"}
    assert value(samples, "mlpipeline_http_requests_total", **predict) == 1
