"""Two-class runs carry the decision threshold the trainer chose on validation
(``operating_point.json``): the predictor loads it with the version and answers each image's
``decision`` by it, next to the argmax ``predicted_class``."""

import json
import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from common import ServiceUnavailable
from dashboard.choose import choose_run
from predictor import ModelHolder
from tests.conftest import log_untrained_run
from tests.predictor.conftest import post_images, wait_ready

POINT_FIELDS = {"positive_class", "threshold", "target_sensitivity", "val_sensitivity",
                "val_specificity", "chosen_on", "n_val", "positive_chosen", "n_val_positive",
                "n_val_negative", "val_sensitivity_ci", "val_specificity_ci"}  # fmt: skip


@pytest.fixture(scope="module")
def two_class_data(demo_data, tmp_path_factory) -> Path:
    """Two of the demo data's classes."""
    out = tmp_path_factory.mktemp("two-classes")
    for split in ("train", "test"):
        for cls in sorted(p.name for p in (demo_data / "train").iterdir())[:2]:
            shutil.copytree(demo_data / split / cls, out / split / cls)
    return out


@pytest.fixture(scope="module")
def trained_two_class_run(mlflow_server, two_class_data, tmp_path_factory) -> str:
    """A run the real trainer made (one epoch), with the operating point it chose."""
    from trainer import train

    positive = sorted(p.name for p in (two_class_data / "train").iterdir())[0]
    return train(
        ["--data-dir", str(two_class_data), "--experiment", "predictor-threshold",
         "--tracking-uri", mlflow_server, "--checkpoint-dir", str(tmp_path_factory.mktemp("ck")),
         "--model", "smallcnn", "--epochs", "1", "--ensemble", "1", "--batch-size", "32",
         "--threads", "1", "--no-progress", "--val-fraction", "0.3",
         "--target-sensitivity", "0.9", "--positive-class", positive]
    )  # fmt: skip


def _point(data: Path, threshold: float) -> dict:
    names = sorted(p.name for p in (data / "train").iterdir())
    return {"positive_class": names[0], "positive_index": 0, "target_sensitivity": 0.9,
            "threshold": threshold, "rule": "...", "chosen_on": "validation", "n_val": 10,
            "val_sensitivity": 0.9, "val_specificity": 0.5}  # fmt: skip


def run_with_point(uri: str, data: Path, threshold: float) -> str:
    """An untrained two-class run whose operating point has ``threshold`` (positive: class 0),
    in the run's file only (as models logged before they carried their point)."""
    run_id = log_untrained_run(uri, data, seed=3)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_dict(_point(data, threshold), "operating_point.json")
    return run_id


def test_the_point_the_model_carries_is_the_one_that_decides(predictor, settings,
                                                             two_class_data):  # fmt: skip
    uri = settings.mlflow_tracking_uri
    run_id = log_untrained_run(uri, two_class_data, seed=4, point=_point(two_class_data, 0.0))
    with mlflow.start_run(run_id=run_id):  # a file that disagrees with the model
        mlflow.log_dict(_point(two_class_data, 1.0), "operating_point.json")
    choose_run(run_id, "carried point", settings, allow_unevaluated=True)
    assert wait_ready(predictor, "1")["operating_point"]["threshold"] == 0.0


def test_decision_follows_the_threshold_the_trainer_chose(predictor, settings,
                                                          trained_two_class_run,
                                                          two_class_data, tmp_path):  # fmt: skip
    client = MlflowClient(settings.mlflow_tracking_uri)
    logged = client.download_artifacts(trained_two_class_run, "operating_point.json", tmp_path)
    logged = json.loads(Path(logged).read_text(encoding="utf-8"))
    choose_run(trained_two_class_run, "two classes", settings, allow_unevaluated=True)
    ready = wait_ready(predictor, "1")
    point = ready["operating_point"]
    assert point == {key: logged[key] for key in POINT_FIELDS}
    images = sorted((two_class_data / "test").rglob("*.png"))
    body = post_images(predictor, images).json()
    assert body["operating_point"] == point
    positive = point["positive_class"]
    [negative] = set(ready["class_names"]) - {positive}
    for p in body["predictions"]:
        probs = p["probabilities"]
        assert p["predicted_class"] == max(probs, key=probs.get)  # still the argmax
        assert p["decision"] == (positive if probs[positive] >= point["threshold"] else negative)


def test_decision_can_differ_from_the_argmax(predictor, settings, two_class_data):
    run_id = run_with_point(settings.mlflow_tracking_uri, two_class_data, threshold=0.0)
    choose_run(run_id, "everything positive", settings, allow_unevaluated=True)
    ready = wait_ready(predictor, "1")
    positive = ready["operating_point"]["positive_class"]
    images = sorted((two_class_data / "test").rglob("*.png"))
    predictions = post_images(predictor, images).json()["predictions"]
    assert {p["decision"] for p in predictions} == {positive}
    assert {p["predicted_class"] for p in predictions} == {
        max(p["probabilities"], key=p["probabilities"].get) for p in predictions
    }


def test_a_run_without_an_operating_point_has_no_decision(predictor, settings, served_runs,
                                                          demo_data):  # fmt: skip
    choose_run(served_runs[0], "three classes", settings, allow_unevaluated=True)
    assert wait_ready(predictor, "1")["operating_point"] is None
    body = post_images(predictor, sorted((demo_data / "test").rglob("*.png"))[:2]).json()
    assert body["operating_point"] is None
    assert [p["decision"] for p in body["predictions"]] == [None, None]


def test_mlflow_failing_on_the_operating_point_fails_the_load(settings, two_class_data,
                                                              monkeypatch):  # fmt: skip
    first = run_with_point(settings.mlflow_tracking_uri, two_class_data, threshold=0.4)
    second = run_with_point(settings.mlflow_tracking_uri, two_class_data, threshold=0.6)
    holder = ModelHolder(settings)
    choose_run(first, "first", settings, allow_unevaluated=True)
    assert holder.refresh() and holder.current.operating_point.threshold == 0.4
    choose_run(second, "second", settings, allow_unevaluated=True)

    def down(*args):
        raise ServiceUnavailable("MLflow at test did not answer")

    monkeypatch.setattr("runs.decision.load_json_artifact", down)
    assert not holder.refresh()
    served = holder.serving()  # the last good version, with its own threshold
    assert (served.version, served.operating_point.threshold, served.stale) == ("1", 0.4, True)
    assert "MLflow at test did not answer" in served.problem
    monkeypatch.undo()
    assert holder.refresh()
    served = holder.serving()
    assert (served.version, served.operating_point.threshold, served.stale) == ("2", 0.6, False)
