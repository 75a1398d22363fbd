from pathlib import Path

from common import Settings


def test_defaults_work_on_one_machine(monkeypatch):
    for var in (
        "MLFLOW_TRACKING_URI",
        "MONGO_URI",
        "DATA_DIR",
        "EVALUATOR_URL",
        "PIPELINE_API_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    s = Settings(_env_file=None)
    assert s.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert s.evaluator_url == "http://127.0.0.1:5006"
    assert s.explainer_url == "http://127.0.0.1:5005"
    assert s.mongo_uri is None
    assert s.data_dir == Path("data")
    assert s.pipeline_api_token is None


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("MONGO_URI", "mongodb://mongo:27017")
    monkeypatch.setenv("DATA_DIR", "/data")
    monkeypatch.setenv("ARTIFACTS_DIR", "/artifacts")
    monkeypatch.setenv("PIPELINE_API_TOKEN", "s3cret")
    s = Settings(_env_file=None)
    assert s.mlflow_tracking_uri == "http://mlflow:5000"
    assert s.mongo_uri == "mongodb://mongo:27017"
    assert s.data_dir == Path("/data")
    assert s.artifacts_dir == Path("/artifacts")
    assert s.pipeline_api_token == "s3cret"
