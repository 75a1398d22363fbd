"""The decision threshold: chosen by the trainer on validation for a target sensitivity, applied
by the evaluator to test; per-class sensitivity and specificity with Wilson intervals."""

import json
import shutil
import tempfile

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from common import InvalidInput, ServiceUnavailable
from dataloader import load_dataset, synthesize
from evaluator import evaluate_run
from evaluator.operating_point import at_operating_point
from runs import (
    load_classifier,
    load_model,
    load_preprocessing,
    read_operating_point,
    threshold_labels,
)
from trainer import train
from trainer.operating_point import positive_index, positive_warning, threshold_for_sensitivity


def test_threshold_is_the_highest_that_reaches_the_target_sensitivity():
    """Halfway between the lowest positive score kept and the next lower score."""
    positive = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    score = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1])
    threshold, sensitivity, specificity = threshold_for_sensitivity(positive, score, 0.75)
    assert threshold == pytest.approx(0.5) and sensitivity == 0.75 and specificity == 0.75
    assert threshold_for_sensitivity(positive, score, 1.0)[0] == pytest.approx(0.25)


def test_threshold_keeps_its_decisions_under_float_noise_of_the_scores():
    """A positive's probability varies in its 7th digit with the batch size: on the threshold
    it would fall below it in another batch and the validation sensitivity would not hold."""
    positive = np.array([1, 1, 1, 0, 0], dtype=bool)
    score = np.array([0.9, 0.5, 0.3064421689, 0.28, 0.1])
    threshold = threshold_for_sensitivity(positive, score, 1.0)[0]
    noisy = score[2] - 1e-7  # the same image, scored in another batch
    assert noisy >= threshold > score[3]


def test_the_lowest_score_kept_gives_a_threshold_below_it():
    positive = np.array([1, 0, 1], dtype=bool)
    score = np.array([0.9, 0.5, 0.2])
    threshold, sensitivity, _ = threshold_for_sensitivity(positive, score, 1.0)
    assert threshold == pytest.approx(0.1) and sensitivity == 1.0


def test_a_validation_split_of_one_class_cannot_choose_a_threshold():
    with pytest.raises(InvalidInput, match=r"both classes.*--target-sensitivity 0"):
        threshold_for_sensitivity(np.ones(4, dtype=bool), np.linspace(0, 1, 4), 0.9)


def test_unknown_positive_class_names_the_classes():
    assert positive_index(["malignant", "benign"], "malignant") == 0
    with pytest.raises(InvalidInput, match=r"'cyst' is not one of the classes \(malignant, benign"):
        positive_index(["malignant", "benign"], "cyst")


@pytest.mark.parametrize(
    ("names", "finding"),
    [(["malignant", "normal, benign"], "malignant"), (["benign", "malignant"], "malignant"),
     (["abnormal", "normal"], "abnormal"), (["no_tumor", "tumor"], "tumor"),
     (["Pneumonia", "NORMAL"], "Pneumonia"), (["non-cancer", "cancer"], "cancer"),
     (["glioma", "notumor"], "glioma"), (["nonmalignant", "malignant"], "malignant"),
     (["nodule", "no nodule"], "nodule"),
     (["covid_negative", "covid_positive"], "covid_positive")],
)  # fmt: skip
def test_the_positive_class_is_the_one_beside_a_class_named_without_the_finding(names, finding):
    assert names[positive_index(names, None)] == finding
    assert positive_warning(names, None, 0.9) is None


@pytest.mark.parametrize(
    "names",
    [["0", "1"], ["normal", "benign"], ["cyst", "mass"], ["nonunion", "healed"]],
)
def test_names_that_do_not_say_the_finding_take_label_1_with_a_warning(names):
    assert positive_index(names, None) == 1
    warning = positive_warning(names, None, 0.9)
    assert f"for class {names[1]!r}" in warning
    assert f"pass --positive-class {names[0]!r}" in warning
    assert positive_warning(names, names[0], 0.9) is None  # said: nothing to warn of


def test_sensitivity_and_specificity_per_class_have_wilson_intervals():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    pred = np.array([0, 0, 1, 1, 1, 1, 1, 0])
    point = at_operating_point(y, pred, ["a", "b"])
    sens_b = point["per_class"]["b"]["sensitivity"]
    assert sens_b["value"] == 4 / 5 and sens_b["method"] == "wilson"
    assert sens_b["ci_low"] < 0.8 < sens_b["ci_high"]
    assert point["per_class"]["b"]["specificity"]["value"] == 2 / 3
    assert point["confusion_matrix"] == [[2, 1], [1, 4]]


def test_threshold_labels_use_the_positive_class_probability():
    probs = np.array([[0.7, 0.3], [0.5, 0.5], [0.1, 0.9]])
    assert threshold_labels(probs, 1, 0.3).tolist() == [1, 1, 1]
    assert threshold_labels(probs, 0, 0.6).tolist() == [0, 1, 1]


@pytest.fixture(scope="module")
def two_class_run(tmp_path_factory, mlflow_server):
    """A 2-class run (melanoma vs nevus, 32 px) trained for 2 epochs with target sensitivity 0.8
    for melanoma."""
    demo = synthesize(tmp_path_factory.mktemp("demo3"), 20, 10, size=32, seed=2)
    data = tmp_path_factory.mktemp("two") / "data"
    for split in ("train", "test"):
        for cls in ("melanoma", "nevus"):
            shutil.copytree(demo / split / cls, data / split / cls)
    run_id = train(
        ["--data-dir", str(data), "--experiment", "threshold", "--tracking-uri", mlflow_server,
         "--checkpoint-dir", str(tmp_path_factory.mktemp("ck")), "--epochs", "2",
         "--ensemble", "2", "--batch-size", "16", "--threads", "1", "--no-progress",
         "--val-fraction", "0.3",
         "--target-sensitivity", "0.8", "--positive-class", "melanoma"]
    )  # fmt: skip
    return run_id


def test_trainer_logs_the_threshold_chosen_on_validation(two_class_run, mlflow_server, tmp_path):
    client = mlflow.MlflowClient(mlflow_server)
    point = client.download_artifacts(two_class_run, "operating_point.json", str(tmp_path))
    with open(point, encoding="utf-8") as f:
        point = json.load(f)
    assert point["chosen_on"] == "validation" and point["positive_class"] == "melanoma"
    assert point["positive_chosen"] == "set with --positive-class"
    assert point["n_val"] == 12 and point["val_sensitivity"] >= 0.8
    params = client.get_run(two_class_run).data.params
    assert float(params["decision_threshold"]) == pytest.approx(point["threshold"], abs=1e-6)


def test_the_logged_model_decides_by_the_threshold(two_class_run, mlflow_server, tmp_path):
    mlflow.set_tracking_uri(mlflow_server)
    classifier = load_classifier(f"runs:/{two_class_run}/model")
    point = classifier.operating_point
    assert point["positive_class"] == "melanoma" and point["chosen_on"] == "validation"
    probs = np.array([[0.9, 0.1], [point["threshold"], 1 - point["threshold"]], [0.0, 1.0]])
    table = classifier.table(probs)
    expected = ["melanoma" if p >= point["threshold"] else "nevus" for p in probs[:, 0]]
    assert table["decision"].tolist() == expected
    names = classifier.class_names
    assert table["predicted_class"].tolist() == [names[i] for i in probs.argmax(axis=1)]


def test_operating_point_read_tells_an_outage_from_a_run_without_one(
    two_class_run, mlflow_server, unreachable_uri
):
    client = mlflow.MlflowClient(mlflow_server)
    names = load_preprocessing(client, two_class_run).class_names
    assert read_operating_point(client, two_class_run, names).threshold
    bare = client.create_run("0").info.run_id  # a run that logged no operating point
    assert read_operating_point(client, bare, names) is None
    # MLflow down: a retried outage, not "no operating point" (that would publish a result
    # without the threshold the trainer chose).
    with pytest.raises(ServiceUnavailable, match=r"operating_point\.json"):
        read_operating_point(mlflow.MlflowClient(unreachable_uri), two_class_run, names)


def test_evaluator_reports_argmax_and_threshold_operating_points(two_class_run, mlflow_server):
    report = evaluate_run(two_class_run, mlflow_server)
    points = report["operating_points"]
    assert set(points) == {"argmax", "threshold"}
    threshold = points["threshold"]
    assert threshold["target_sensitivity"] == 0.8 and threshold["chosen_on"] == "validation"
    probs = report_probs(mlflow_server, two_class_run, report["artifact_path"])
    expected = np.where(probs[:, 0] >= threshold["threshold"], 0, 1)
    tp = int(
        (
            (expected == 0)
            & (report_labels(mlflow_server, two_class_run, report["artifact_path"]) == 0)
        ).sum()
    )
    assert threshold["per_class"]["melanoma"]["sensitivity"]["value"] == tp / 10
    assert report["metrics"]["eval_threshold"] == threshold["threshold"]
    assert "eval_thr_sensitivity_melanoma" in report["metrics"]


def _predictions(uri: str, run_id: str, folder: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:  # MLflow's own temporary folder would stay
        client = mlflow.MlflowClient(uri)
        return pd.read_csv(client.download_artifacts(run_id, f"{folder}/predictions.csv", tmp))


def report_probs(uri: str, run_id: str, folder: str) -> np.ndarray:
    return _predictions(uri, run_id, folder)[["prob_melanoma", "prob_nevus"]].to_numpy()


def report_labels(uri: str, run_id: str, folder: str) -> np.ndarray:
    labels = _predictions(uri, run_id, folder)["true_label"]
    return labels.map({"melanoma": 0, "nevus": 1}).to_numpy()


def test_predictions_csv_has_the_decision_of_the_served_model(two_class_run, mlflow_server):
    report = evaluate_run(two_class_run, mlflow_server)
    table = _predictions(mlflow_server, two_class_run, report["artifact_path"])
    threshold = report["operating_points"]["threshold"]["threshold"]
    expected = np.where(table["prob_melanoma"] >= threshold, "melanoma", "nevus")
    assert table["decision"].tolist() == expected.tolist()
    mlflow.set_tracking_uri(mlflow_server)
    classifier = load_classifier(f"runs:/{two_class_run}/model")
    served = classifier.table(table[["prob_melanoma", "prob_nevus"]].to_numpy())
    assert served["decision"].tolist() == table["decision"].tolist()


def test_tta_averages_the_flipped_views_and_is_recorded(two_class_run, mlflow_server):
    report = evaluate_run(two_class_run, mlflow_server, tta="horizontal")
    assert report["tta"] == "horizontal"
    model = load_model(two_class_run, mlflow_server)
    pp = load_preprocessing(mlflow.MlflowClient(mlflow_server), two_class_run)
    test = load_dataset(report["data_dir"], splits=("test",), class_names=pp.class_names).test
    x = pp.to_tensor(test.images)
    with torch.no_grad():
        mean = torch.softmax(model(x).double(), 1) + torch.softmax(model(x.flip(3)).double(), 1)
    probs = report_probs(mlflow_server, two_class_run, report["artifact_path"])
    np.testing.assert_allclose(probs, mean.numpy() / 2, atol=1e-6)


def test_unknown_tta_is_invalid_input(two_class_run, mlflow_server):
    with pytest.raises(InvalidInput, match="tta must be one of none, horizontal, both"):
        evaluate_run(two_class_run, mlflow_server, tta="rotate")


def test_an_operating_point_for_another_class_is_refused_naming_the_classes(mlflow_server):
    client = mlflow.MlflowClient(mlflow_server)
    run_id = client.create_run("0").info.run_id
    point = {"positive_class": "cyst", "threshold": 0.5, "target_sensitivity": 0.9,
             "val_sensitivity": 0.9, "val_specificity": 0.5, "chosen_on": "validation"}  # fmt: skip
    client.log_dict(run_id, point, "operating_point.json")
    with pytest.raises(InvalidInput, match=r"threshold for 'cyst'.*\(melanoma, nevus\)"):
        read_operating_point(client, run_id, ["melanoma", "nevus"])
