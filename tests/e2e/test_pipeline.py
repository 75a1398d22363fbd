"""End to end over HTTP: what a newcomer gets from `make demo`, checked as a user would."""

import os
from pathlib import Path

import requests
from mlflow.tracking import MlflowClient

from launcher import EVALUATOR, EXPLAINER, MLFLOW
from runs import contract
from tests.e2e.conftest import TOKEN


def test_the_stacks_mlflow_keeps_its_runs_in_the_state_folder(pipeline):
    stack, result = pipeline
    db = stack.config.state_dir / "mlflow" / "mlflow.db"
    assert db.exists()
    assert result.run_id.encode() in db.read_bytes()  # the runs live in that file


def test_the_stacks_mlflow_runs_without_mlflows_job_helpers(pipeline):
    stack, _ = pipeline
    group = os.getpgid(stack.procs["mlflow"].pid)  # the server and every process it started
    commands = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == group:
                commands.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" "))
        except (OSError, ValueError, IndexError):  # ended meanwhile
            continue
    assert any(b"uvicorn" in c for c in commands)  # the server's workers are seen
    assert not [c for c in commands if b"huey" in c or b"_job_runner" in c]


def test_training_logged_a_model_and_its_preprocessing(pipeline):
    stack, result = pipeline
    client = MlflowClient(stack.config.url(MLFLOW))
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert "val_auc" in run.data.metrics
    paths = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"preprocessing.json", "dataset_stats.json"} <= paths


def test_evaluation_is_logged_to_the_run(pipeline):
    stack, result = pipeline
    metrics = result.evaluation["metrics"]
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    assert metrics["eval_accuracy_ci_low"] <= metrics["eval_accuracy"]
    client = MlflowClient(stack.config.url(MLFLOW))
    run = client.get_run(result.run_id)
    assert run.data.metrics["eval_accuracy"] == metrics["eval_accuracy"]
    folder = contract.evaluation_dir(run.data.tags)
    assert folder == result.evaluation["artifact_path"]
    files = {a.path for a in client.list_artifacts(result.run_id, folder)}
    assert f"{folder}/predictions.csv" in files
    assert f"{folder}/confusion_matrix.png" in files


def test_explanations_are_logged_to_the_run(pipeline):
    stack, result = pipeline
    assert set(result.explanation["methods"]) == {"shap", "integrated_gradients", "gradcam"}
    client = MlflowClient(stack.config.url(MLFLOW))
    folder = contract.explanation_dir(client.get_run(result.run_id).data.tags)
    files = {a.path for a in client.list_artifacts(result.run_id, folder)}
    assert f"{folder}/index.json" in files


def test_apis_refuse_requests_without_the_token(pipeline):
    stack, result = pipeline
    for service, path in ((EVALUATOR, "/evaluate"), (EXPLAINER, "/explain")):
        url = stack.config.url(service) + path
        assert requests.post(url, json={"run_id": result.run_id}, timeout=10).status_code == 401
        ok = requests.get(stack.config.url(service) + "/jobs", timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
        assert ok.status_code == 200
        assert any(j["run_id"] == result.run_id for j in ok.json())


def test_repeated_evaluation_reuses_the_stored_result(pipeline):
    stack, result = pipeline
    r = requests.post(
        stack.config.url(EVALUATOR) + "/evaluate",
        params={"wait": 5},
        json={"run_id": result.run_id},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert r.status_code == 200
    assert r.json()["status"] == "succeeded"
    assert r.json()["result"]["metrics"] == result.evaluation["metrics"]


def test_unknown_run_is_a_404_over_http(pipeline):
    stack, _ = pipeline
    r = requests.post(
        stack.config.url(EVALUATOR) + "/evaluate",
        json={"run_id": "f" * 32},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert r.status_code == 404
    assert "does not exist" in r.json()["detail"]
