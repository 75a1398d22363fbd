import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from common import InvalidInput, NotFound, ServiceUnavailable
from dataloader import synthesize
from evaluator import evaluate_run
from runs import contract, schemas
from tests.leftovers import ended_pid, left_by

PNGS = ("confusion_matrix.png", "roc_curves.png", "calibration.png")


@pytest.fixture(scope="module")
def predictions(evaluation):
    report, folder = evaluation
    table = pd.read_csv(folder / "predictions.csv", keep_default_na=False)
    names = report["class_names"]
    y = table["true_label"].map(names.index).to_numpy()
    pred = table["predicted_label"].map(names.index).to_numpy()
    probs = table[[f"prob_{n}" for n in names]].to_numpy()
    return report, y, pred, probs


def test_predictions_csv_has_the_agreed_columns(evaluation):
    report, folder = evaluation
    table = pd.read_csv(folder / "predictions.csv", keep_default_na=False)
    expected = ["index", "file", "true_label", "predicted_label"]
    probs = [f"prob_{n}" for n in report["class_names"]]
    assert list(table.columns) == expected + probs + ["ood_score", "out_of_distribution"]
    flagged = table.loc[table["out_of_distribution"], "file"].tolist()  # as metrics.json lists
    assert sorted(flagged) == sorted(
        f["file"] for f in report["out_of_distribution"]["flagged_images"]
    )
    assert len(table) == report["n_samples"] == 36
    assert table["file"].str.startswith("test/").all()


def test_predicted_label_is_the_most_probable_class(predictions):
    _, _, pred, probs = predictions
    np.testing.assert_array_equal(pred, probs.argmax(1))
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)


def test_overall_metrics_equal_scikit_learn_on_predictions_csv(predictions):
    report, y, pred, probs = predictions
    overall = {k: v["value"] for k, v in report["overall"].items()}
    assert overall["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert overall["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    labels = list(range(len(report["class_names"])))
    for avg in ("macro", "weighted"):
        kw = {"labels": labels, "average": avg, "zero_division": 0}
        assert overall[f"precision_{avg}"] == pytest.approx(precision_score(y, pred, **kw))
        assert overall[f"recall_{avg}"] == pytest.approx(recall_score(y, pred, **kw))
        assert overall[f"f1_{avg}"] == pytest.approx(f1_score(y, pred, **kw))
    assert overall["roc_auc_macro"] == pytest.approx(
        roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=labels)
    )


def test_per_class_metrics_equal_scikit_learn_on_predictions_csv(predictions):
    report, y, pred, probs = predictions
    for c, name in enumerate(report["class_names"]):
        got = {k: v["value"] for k, v in report["per_class"][name].items() if isinstance(v, dict)}
        positive, predicted = y == c, pred == c
        assert got["sensitivity"] == pytest.approx(recall_score(positive, predicted))
        assert got["specificity"] == pytest.approx(recall_score(~positive, ~predicted))
        assert got["f1"] == pytest.approx(f1_score(positive, predicted, zero_division=0))
        assert got["roc_auc"] == pytest.approx(roc_auc_score(positive, probs[:, c]))
        if predicted.any():
            assert got["precision"] == pytest.approx(precision_score(positive, predicted))
        else:
            assert got["precision"] is None


def test_ece_equals_a_direct_computation_on_predictions_csv(predictions):
    report, y, pred, probs = predictions
    confidence, bins = probs.max(1), report["ece_bins"]
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            gap = abs((pred[in_bin] == y[in_bin]).mean() - confidence[in_bin].mean())
            ece += in_bin.mean() * gap
    assert report["overall"]["ece"]["value"] == pytest.approx(ece)


def test_metrics_json_holds_values_and_intervals(evaluation):
    report, folder = evaluation
    stored = json.loads((folder / "metrics.json").read_text())
    assert stored["overall"] == report["overall"]
    for est in stored["overall"].values():
        assert est["ci_low"] <= est["value"] <= est["ci_high"]


def test_metrics_json_says_when_and_on_what_it_was_made(evaluation):
    from datetime import UTC, datetime, timedelta

    _, folder = evaluation
    stored = schemas.EvaluationReport.model_validate_json((folder / "metrics.json").read_text())
    made = datetime.fromisoformat(stored.created_at)
    assert timedelta(0) <= datetime.now(UTC) - made < timedelta(hours=1)
    assert stored.own_data is True and stored.tta == "none"
    assert stored.decoding_note is None  # trained by this code


def test_figures_are_png_images(evaluation):
    _, folder = evaluation
    for name in PNGS:
        with Image.open(folder / name) as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 200


def test_misclassified_top5_are_the_most_confident_errors_with_images(evaluation, predictions):
    _, folder = evaluation
    _, y, pred, probs = predictions
    top = pd.read_csv(folder / "misclassified_top5.csv", keep_default_na=False)
    wrong = np.flatnonzero(pred != y)
    expected = wrong[np.argsort(-probs.max(1)[wrong], kind="stable")][:5]
    assert top["index"].tolist() == expected.tolist()
    assert (top["true_label"] != top["predicted_label"]).all()
    for image in top["image"]:
        with Image.open(folder / image) as png:
            assert png.size == (32, 32)


def test_metrics_and_tag_are_logged_to_the_run(mlflow_server, run_id, evaluation):
    report, _ = evaluation
    run = mlflow.MlflowClient(mlflow_server).get_run(run_id)
    assert run.data.tags["pipeline.evaluated"] == "true"
    logged = run.data.metrics
    assert logged["eval_accuracy"] == pytest.approx(report["overall"]["accuracy"]["value"])
    assert logged["eval_roc_auc_macro_ci_low"] == pytest.approx(
        report["overall"]["roc_auc_macro"]["ci_low"]
    )
    assert set(report["metrics"]) <= set(logged)


def test_unknown_run_is_not_found(mlflow_server):
    with pytest.raises(NotFound, match="does not exist"):
        evaluate_run("0" * 32, mlflow_server)


def test_run_without_model_says_what_is_missing(mlflow_server, run_without_model):
    with pytest.raises(InvalidInput, match="no logged model named 'model'"):
        evaluate_run(run_without_model, mlflow_server)


def test_unreachable_mlflow_is_service_unavailable(unreachable_uri):
    with pytest.raises(ServiceUnavailable, match="MLflow"):
        evaluate_run("0" * 32, unreachable_uri)


def test_data_with_other_classes_is_invalid(mlflow_server, run_id, tmp_path):
    other = synthesize(tmp_path / "other", train_per_class=1, test_per_class=1, size=32)
    (other / "test" / "nevus").rename(other / "test" / "naevus")
    with pytest.raises(InvalidInput, match="naevus"):
        evaluate_run(run_id, mlflow_server, data_dir=other)


def test_missing_data_folder_is_invalid(mlflow_server, run_id, tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        evaluate_run(run_id, mlflow_server, data_dir=tmp_path / "nowhere")


def test_a_new_evaluation_is_current_and_holds_only_its_own_images(
    mlflow_server, run_id, evaluation, data_root
):
    client = mlflow.MlflowClient(mlflow_server)
    other = synthesize(data_root / "reseeded", train_per_class=1, test_per_class=8, size=32, seed=7)
    report = evaluate_run(run_id, mlflow_server, data_dir=other)
    current = contract.evaluation_dir(client.get_run(run_id).data.tags)
    assert current == report["artifact_path"] != evaluation[0]["artifact_path"]
    folder = f"{current}/{contract.MISCLASSIFIED_DIR}"
    new = {a for a in report["artifacts"] if a.startswith(folder + "/")}
    assert 1 <= len(new) <= 5
    assert {info.path for info in client.list_artifacts(run_id, folder)} == new


def test_binary_medmnist_run_metrics_equal_scikit_learn(mlflow_server, breastmnist, tmp_path):
    from trainer import train

    data = tmp_path / "breastmnist.npz"  # a copy: the loader's cache goes next to the file
    data.write_bytes(breastmnist.read_bytes())
    args = ["--data-dir", str(data), "--experiment", "evaluator-binary", "--tracking-uri"]
    args += [mlflow_server, "--epochs", "1", "--ensemble", "1", "--no-progress", "--device", "cpu"]
    report = evaluate_run(train(args), mlflow_server)
    client = mlflow.MlflowClient(mlflow_server)
    path = f"{report['artifact_path']}/predictions.csv"
    csv = client.download_artifacts(report["run_id"], path, str(tmp_path))
    table = pd.read_csv(csv, dtype={"true_label": str, "predicted_label": str})
    y = (table["true_label"] == report["class_names"][1]).to_numpy()
    prob = table[f"prob_{report['class_names'][1]}"].to_numpy()
    assert report["n_samples"] == 156
    assert report["overall"]["roc_auc_macro"]["value"] == pytest.approx(roc_auc_score(y, prob))
    assert report["overall"]["roc_auc_macro"]["method"] == "delong"
    pred = table["predicted_label"] == report["class_names"][1]
    assert report["overall"]["accuracy"]["value"] == pytest.approx(accuracy_score(y, pred))


def test_an_evaluation_removes_the_folders_killed_evaluations_left_not_live_ones(
    mlflow_server, run_id, tmp_path, monkeypatch
):
    """They hold predictions and misclassified images: patient data outside the stores."""
    import os
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = ended_pid()
    killed = [left_by(tmp_path, p, dead) for p in ("evaluation-", "mlpipeline-model-")]
    live = left_by(tmp_path, "evaluation-", os.getpid())
    evaluate_run(run_id, mlflow_server)
    assert [p.exists() for p in killed] == [False, False]
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]


def test_training_records_the_test_split_hash_that_an_evaluation_finds(
    mlflow_server, run_id, evaluation
):
    report, _ = evaluation
    tags = mlflow.MlflowClient(mlflow_server).get_run(run_id).data.tags
    assert tags[contract.TEST_DATA_TAG] == report["dataset_hash"]


def test_the_runs_own_folder_whose_test_split_changed_is_not_its_own_data(mlflow_server, tmp_path):
    from trainer import train

    data = synthesize(tmp_path / "data", train_per_class=8, test_per_class=2, size=16, seed=3)
    args = ["--data-dir", str(data), "--experiment", "evaluator-changed", "--tracking-uri"]
    args += [mlflow_server, "--epochs", "1", "--ensemble", "1", "--no-progress", "--device", "cpu"]
    run = train([*args, "--checkpoint-dir", str(tmp_path / "checkpoints")])
    first, second = sorted((data / "test").iterdir())[:2]  # their labels swapped
    first.rename(tmp_path / "aside")
    second.rename(first)
    (tmp_path / "aside").rename(second)
    report = evaluate_run(run, mlflow_server)
    assert report["own_data"] is False
    assert f"the test split of {data} changed since the run was trained" in report["data_changed"]
    tags = mlflow.MlflowClient(mlflow_server).get_run(run).data.tags
    assert tags[contract.EVALUATION_OWN_DATA_TAG] == "false"
