"""The evaluator API over real HTTP: uvicorn in a thread, real MLflow, the embedded store."""

import shutil

import mlflow
import pytest
import requests

from dataloader import synthesize
from jobs import JobStore, get_database
from tests.conftest import unreachable_mongo
from tests.evaluator.conftest import wait_status
from tests.jobs.conftest import alive, children

TOKEN = "evaluator-test-token-0123456789abcdef"


def post(url: str, body: dict, wait: float | None = None, **kwargs) -> requests.Response:
    params = {"wait": wait} if wait is not None else None
    return requests.post(f"{url}/evaluate", json=body, params=params, timeout=180, **kwargs)


def test_wait_answers_the_finished_job_with_metrics(service, run_id):
    response = post(service.url, {"run_id": run_id, "batch_size": 5}, wait=120)
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "succeeded"
    assert 0 <= job["result"]["metrics"]["eval_accuracy"] <= 1
    folder = job["result"]["artifact_path"]
    assert folder.startswith(f"evaluation/{job['job_id']}")
    assert f"{folder}/predictions.csv" in job["result"]["artifacts"]


def test_job_lifecycle_queued_to_succeeded(service, run_id):
    response = post(service.url, {"run_id": run_id, "batch_size": 6})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in ("queued", "running")
    assert job["url"] == f"/jobs/{job['job_id']}"
    done = wait_status(service.url, job["job_id"], ("succeeded", "failed"))
    assert done["status"] == "succeeded", done["error"]
    assert done["started_at"] >= done["created_at"]
    assert done["finished_at"] >= done["started_at"]
    listed = requests.get(f"{service.url}/jobs", params={"run_id": run_id}, timeout=10)
    assert job["job_id"] in [j["job_id"] for j in listed.json()]


def test_same_inputs_reuse_the_stored_result(service, run_id):
    first = post(service.url, {"run_id": run_id, "batch_size": 8}, wait=120).json()
    again = post(service.url, {"run_id": run_id, "batch_size": 8, "data_dir": "demo"})
    assert again.status_code == 200
    assert again.json()["job_id"] == first["job_id"]
    assert again.json()["reused"] is True


def test_a_result_is_not_reused_once_the_test_files_changed(serve, run_id, demo_data, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(demo_data, root / "copy")
    service = serve(data_dir=root)
    first = post(service.url, {"run_id": run_id, "data_dir": "copy"}, wait=120).json()
    assert first["status"] == "succeeded", first["error"]
    sorted((root / "copy" / "test").rglob("*.png"))[0].unlink()
    again = post(service.url, {"run_id": run_id, "data_dir": "copy"}, wait=120).json()
    assert not again["reused"] and again["job_id"] != first["job_id"]
    assert again["result"]["n_samples"] == first["result"]["n_samples"] - 1


def test_a_result_gone_from_mlflow_is_made_again_not_reused(service, run_id, mlflow_server):
    """With MLflow restored from a backup older than the job store, the stored job names a
    result folder the run no longer has: answering it would hand out results that do not exist."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    first = post(service.url, {"run_id": run_id, "batch_size": 7}, wait=120).json()
    assert first["status"] == "succeeded", first["error"]
    client = mlflow.MlflowClient(mlflow_server)
    folder = first["result"]["artifact_path"]
    root = client.get_run(run_id).info.artifact_uri
    get_artifact_repository(f"{root}/{folder}").delete_artifacts()
    assert client.list_artifacts(run_id, folder) == []
    again = post(service.url, {"run_id": run_id, "batch_size": 7}, wait=120).json()
    assert not again["reused"] and again["job_id"] != first["job_id"]
    assert again["status"] == "succeeded", again["error"]
    assert client.list_artifacts(run_id, again["result"]["artifact_path"])
    kept = post(service.url, {"run_id": run_id, "batch_size": 7}).json()  # there: reused
    assert kept["reused"] and kept["job_id"] == again["job_id"]


def test_a_result_no_longer_the_run_s_current_one_is_made_again_not_reused(
    service, run_id, mlflow_server
):
    """Another evaluation (other data, --tta) published since: answering the earlier job as done
    left the run showing the other one, however often the request was sent."""
    first = post(service.url, {"run_id": run_id, "batch_size": 10}, wait=120).json()
    other = post(service.url, {"run_id": run_id, "batch_size": 11}, wait=120).json()
    assert other["status"] == "succeeded", other["error"]
    again = post(service.url, {"run_id": run_id, "batch_size": 10}, wait=120).json()
    assert not again["reused"] and again["job_id"] not in (first["job_id"], other["job_id"])
    assert again["status"] == "succeeded", again["error"]
    tags = mlflow.MlflowClient(mlflow_server).get_run(run_id).data.tags
    assert tags["pipeline.evaluation.path"] == again["result"]["artifact_path"]
    kept = post(service.url, {"run_id": run_id, "batch_size": 10}).json()  # current: reused
    assert kept["reused"] and kept["job_id"] == again["job_id"]


def test_force_evaluates_again(service, run_id):
    first = post(service.url, {"run_id": run_id, "batch_size": 9}, wait=120).json()
    forced = post(service.url, {"run_id": run_id, "batch_size": 9, "force": True}, wait=120)
    assert forced.json()["job_id"] != first["job_id"]
    assert forced.json()["status"] == "succeeded"
    assert forced.json()["reused"] is False


def test_unknown_run_is_404(service):
    response = post(service.url, {"run_id": "0" * 32})
    assert response.status_code == 404
    assert "does not exist" in response.json()["detail"]


def test_deleted_run_is_404_saying_so(service, mlflow_server):
    client = mlflow.MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("tests") or client.get_experiment(
        client.create_experiment("tests")
    )
    run_id = client.create_run(experiment.experiment_id).info.run_id
    client.delete_run(run_id)
    response = post(service.url, {"run_id": run_id})
    assert response.status_code == 404
    assert "is deleted" in response.json()["detail"] and "restore it" in response.json()["detail"]


def test_run_without_model_is_422_naming_the_model(service, run_without_model):
    response = post(service.url, {"run_id": run_without_model})
    assert response.status_code == 422
    assert "no logged model" in response.json()["detail"]


def test_missing_data_folder_is_422(service, run_id):
    response = post(service.url, {"run_id": run_id, "data_dir": "nowhere"})
    assert response.status_code == 422
    assert "does not exist" in response.json()["detail"]


def test_data_folder_with_other_classes_is_422(service, run_id, data_root):
    other = synthesize(data_root / "other", train_per_class=1, test_per_class=1, size=32)
    (other / "test" / "nevus").rename(other / "test" / "naevus")
    response = post(service.url, {"run_id": run_id, "data_dir": "other"})
    assert response.status_code == 422
    assert "naevus" in response.json()["detail"]


@pytest.mark.parametrize("data_dir", ["/etc", "../", "demo/../../.."])
def test_data_dir_outside_data_root_is_422(service, run_id, data_dir):
    response = post(service.url, {"run_id": run_id, "data_dir": data_dir})
    assert response.status_code == 422
    assert "outside DATA_DIR" in response.json()["detail"]


@pytest.mark.parametrize("batch_size", [0, -1, 4097])
def test_batch_size_out_of_range_is_422(service, run_id, batch_size):
    response = post(service.url, {"run_id": run_id, "batch_size": batch_size})
    assert response.status_code == 422
    assert "batch_size" in response.text


@pytest.mark.parametrize(
    "body",
    [{}, {"run_id": ""}, {"run_id": "not-a-run id!"}, {"run_id": 5}, {"run_id": "ab", "x": 1}],
)
def test_malformed_body_is_422(service, body):
    assert post(service.url, body).status_code == 422


def test_malformed_run_id_is_422_saying_what_a_run_id_is(service):
    response = post(service.url, {"run_id": "../../etc"})
    assert response.status_code == 422
    assert "run_id must be an MLflow run id" in response.text


def test_body_that_is_not_json_is_422(service):
    response = requests.post(f"{service.url}/evaluate", data="run_id=abc", timeout=10)
    assert response.status_code == 422


def test_wait_out_of_range_is_422(service, run_id):
    assert post(service.url, {"run_id": run_id}, wait=601).status_code == 422


def test_unreachable_mlflow_is_503_naming_mlflow(serve, unreachable_uri):
    server = serve(mlflow_tracking_uri=unreachable_uri)
    response = post(server.url, {"run_id": "0" * 32})
    assert response.status_code == 503
    assert "MLflow" in response.json()["detail"]
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200


def test_unreachable_mongodb_is_503_naming_mongodb(serve, run_id):
    server = serve(mongo_uri=unreachable_mongo())
    response = post(server.url, {"run_id": run_id})
    assert response.status_code == 503
    assert "MongoDB" in response.json()["detail"]


def test_ready_when_mlflow_and_store_answer(service):
    response = requests.get(f"{service.url}/ready", timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_openapi_documents_the_evaluate_request(service):
    schema = requests.get(f"{service.url}/openapi.json", timeout=10).json()
    assert "/evaluate" in schema["paths"]
    assert "EvaluateIn" in schema["components"]["schemas"]


def test_token_is_required_except_for_health(serve, run_id):
    server = serve(pipeline_api_token=TOKEN)
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200
    assert post(server.url, {"run_id": run_id}).status_code == 401
    assert requests.get(f"{server.url}/jobs", timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert post(server.url, {"run_id": run_id}, headers=wrong).status_code == 401
    right = {"Authorization": f"Bearer {TOKEN}"}
    response = post(server.url, {"run_id": run_id, "batch_size": 11}, headers=right)
    assert response.status_code == 202, response.text
    assert requests.get(f"{server.url}/jobs", headers=right, timeout=10).status_code == 200


def test_job_of_a_killed_service_is_finished_once_after_restart(spawn, run_id, mlflow_server):
    client = mlflow.MlflowClient(mlflow_server)
    before = len(client.get_metric_history(run_id, "eval_accuracy"))
    proc, url = spawn(stale_after=1)
    job = post(url, {"run_id": run_id, "batch_size": 1}).json()
    seen = wait_status(url, job["job_id"], ("running", "succeeded", "failed"))
    assert seen["status"] == "running", "the job finished before the service could be killed"
    workers = children(proc.pid)
    proc.kill()
    proc.wait(30)
    _, restarted = spawn(stale_after=1)
    done = wait_status(restarted, job["job_id"], ("succeeded", "failed"))
    assert done["status"] == "succeeded", done["error"]
    assert done["note"].startswith("succeeded on attempt 2, after worker")  # requeued once
    assert not [pid for pid in workers if alive(pid)], "the killed service's worker lives on"
    assert len(client.get_metric_history(run_id, "eval_accuracy")) == before + 1


def test_two_replicas_share_the_store_and_run_each_job_once(
    serve, run_id, mlflow_server, make_settings
):
    client = mlflow.MlflowClient(mlflow_server)
    before = len(client.get_metric_history(run_id, "eval_accuracy"))
    first, second = serve(), serve()
    jobs = [
        post(server.url, {"run_id": run_id, "batch_size": size}).json()
        for server, size in ((first, 21), (second, 22), (first, 23))
    ]
    duplicate = post(second.url, {"run_id": run_id, "batch_size": 21}).json()
    assert duplicate["job_id"] == jobs[0]["job_id"]
    for job in jobs:
        done = wait_status(first.url, job["job_id"], ("succeeded", "failed"))
        assert done["status"] == "succeeded", done["error"]
    store = JobStore(get_database(make_settings()))
    assert all(store.col.find_one({"_id": j["job_id"]})["attempts"] == 1 for j in jobs)
    assert len(client.get_metric_history(run_id, "eval_accuracy")) == before + len(jobs)


def test_run_trained_outside_data_dir_is_422(service, outside_run):
    response = post(service.url, {"run_id": outside_run.run_id})
    assert response.status_code == 422, response.text
    assert "outside DATA_DIR" in response.json()["detail"]
