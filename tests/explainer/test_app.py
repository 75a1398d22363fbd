"""The HTTP API over real HTTP: a uvicorn server in a thread, a real MLflow server."""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests

from common import Settings
from explainer.app import create_app
from tests.conftest import LiveServer

TOKEN = "explainer-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_settings(tmp_path, tracking_uri: str, data_dir=None, **overrides) -> Settings:
    values = {
        "mlflow_tracking_uri": tracking_uri,
        "mongo_uri": None,
        "store_dir": tmp_path / "store",
        "data_dir": data_dir or tmp_path / "data",
        "pipeline_api_token": TOKEN,
    }
    return Settings(_env_file=None, **{**values, **overrides})


@pytest.fixture(scope="module")
def server(trained_run, data_root, tmp_path_factory) -> Iterator[str]:
    """The explainer on the trained run's MLflow server, with a token, over real HTTP; its
    DATA_DIR holds the trained run's data set."""
    tmp = tmp_path_factory.mktemp("explainer-app")
    settings = make_settings(tmp, trained_run.tracking_uri, data_dir=data_root)
    app = create_app(settings, {"poll_interval": 0.05, "heartbeat_interval": 0.5})
    with LiveServer(app) as live:
        yield live.url


def post(server: str, body: dict, wait: float = 0, headers=AUTH) -> requests.Response:
    return requests.post(f"{server}/explain", json=body, params={"wait": wait}, headers=headers)


def test_explain_with_wait_answers_the_finished_job(server, trained_run):
    body = {"run_id": trained_run.run_id, "n_samples": 2, "methods": ["gradcam"], "seed": 3}
    response = post(server, body, wait=300)
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["methods"] == ["gradcam"]
    assert set(job["result"]["deletion"]) == {"gradcam"}
    polled = requests.get(f"{server}{job['url']}", headers=AUTH).json()
    assert polled["job_id"] == job["job_id"] and polled["status"] == "succeeded"
    listed = requests.get(f"{server}/jobs", params={"run_id": trained_run.run_id}, headers=AUTH)
    assert job["job_id"] in [j["job_id"] for j in listed.json()]
    again = post(server, body, wait=0).json()
    assert again["reused"] and again["job_id"] == job["job_id"]


@pytest.mark.parametrize("n", [0, 65])
def test_n_samples_beyond_the_limit_is_422(server, trained_run, n):
    response = post(server, {"run_id": trained_run.run_id, "n_samples": n})
    assert response.status_code == 422
    assert "n_samples" in response.text


def test_unknown_method_is_422_listing_the_known_ones(server, trained_run):
    response = post(server, {"run_id": trained_run.run_id, "methods": ["lime"]})
    assert response.status_code == 422
    for known in ("shap", "integrated_gradients", "gradcam"):
        assert known in response.text


def test_an_unknown_field_is_422_naming_the_fields_the_body_has(server, trained_run):
    response = post(server, {"run_id": trained_run.run_id, "batch_size": 8})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "batch_size"]
    assert error["msg"].endswith(
        "the body's fields are run_id, data_dir, n_samples, methods, seed, force"
    )


def test_data_dir_explains_the_test_images_of_another_folder_under_data_dir(
    tmp_path, trained_run, demo_data
):
    shutil.copytree(demo_data, tmp_path / "data" / "other")
    for extra in sorted((tmp_path / "data" / "other" / "test").rglob("*.png"))[::2]:
        extra.unlink()  # another test split: half the images
    app = create_app(make_settings(tmp_path, trained_run.tracking_uri), {"poll_interval": 0.05})
    body = {"run_id": trained_run.run_id, "data_dir": "other", "n_samples": 2,
            "methods": ["gradcam"]}  # fmt: skip
    with LiveServer(app) as live:
        job = post(live.url, body, wait=300).json()
    assert job["status"] == "succeeded", job["error"]
    client = mlflow.MlflowClient(trained_run.tracking_uri)
    folder = job["result"]["artifact_path"]
    local = client.download_artifacts(trained_run.run_id, f"{folder}/index.json", str(tmp_path))
    index = json.loads(Path(local).read_text(encoding="utf-8"))
    assert index["data"]["source"] == str(tmp_path / "data" / "other")
    assert index["data"]["own_data"] is False


@pytest.mark.parametrize("data_dir", ["/etc", "../", "other/../.."])
def test_data_dir_outside_data_dir_is_422(server, trained_run, data_dir):
    response = post(server, {"run_id": trained_run.run_id, "data_dir": data_dir})
    assert response.status_code == 422, response.text
    assert "DATA_DIR" in response.json()["detail"]


def test_unknown_run_is_404(server):
    response = post(server, {"run_id": "f" * 32})
    assert response.status_code == 404
    assert "does not exist" in response.json()["detail"]


def test_run_without_model_is_422(server, bare_run):
    response = post(server, {"run_id": bare_run})
    assert response.status_code == 422
    assert "no logged model" in response.json()["detail"]


def test_token_is_required_except_for_health(server, trained_run):
    assert post(server, {"run_id": trained_run.run_id}, headers={}).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert requests.get(f"{server}/jobs", headers=wrong).status_code == 401
    assert requests.get(f"{server}/health").status_code == 200


def test_mlflow_down_is_503(tmp_path, unreachable_uri):
    app = create_app(make_settings(tmp_path, unreachable_uri))
    with LiveServer(app) as live:
        response = post(live.url, {"run_id": "a" * 32})
        ready = requests.get(f"{live.url}/ready", headers=AUTH)
    assert response.status_code == 503
    assert "unreachable" in response.json()["detail"]
    assert ready.status_code == 503


def test_run_trained_outside_data_dir_is_422_and_publishes_nothing(server, outside_run):
    response = post(server, {"run_id": outside_run.run_id, "n_samples": 2}, wait=60)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "outside DATA_DIR" in detail and "set DATA_DIR to a folder that holds it" in detail
    assert "pass a path relative" not in detail  # a request to the explainer names no path
    client = mlflow.MlflowClient(outside_run.tracking_uri)
    assert client.list_artifacts(outside_run.run_id, "explanations") == []


@pytest.mark.parametrize(
    "body",
    [
        {"run_id": "0123abc\u0000"},
        {"run_id": "a" * 300},
        {"run_id": "abc", "methods": ["shap\u0000"]},
        {"run_id": "abc", "n_samples": "8\udc80"},
    ],
    ids=["nul-run-id", "long-run-id", "nul-method", "lone-surrogate"],
)
def test_malformed_body_is_422_never_500(server, body):
    response = requests.post(
        f"{server}/explain",
        data=json.dumps(body),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text


def test_body_that_is_not_utf8_is_422(server):
    body = b'{"run_id": "ab\xff\xfe"}'
    headers = {**AUTH, "Content-Type": "application/json"}
    assert requests.post(f"{server}/explain", data=body, headers=headers).status_code == 422


def test_body_over_the_limit_is_413(server):
    response = post(server, {"run_id": "ab", "methods": ["shap"] * 300_000})
    assert response.status_code == 413
    assert len(response.content) < 1000
