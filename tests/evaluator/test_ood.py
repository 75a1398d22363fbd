"""The evaluator's count of test images unlike the training data (``evaluator.ood``)."""

import numpy as np
import pytest
from PIL import Image

from dashboard.handoff import caveats_of
from dataloader import load_dataset, synthesize
from evaluator import evaluate_run
from evaluator.artifacts import flat_metrics
from evaluator.metrics import compute_metrics
from evaluator.ood import ood_report
from runs import OODReference, conformal_threshold, load_classifier, run_model_uri, schemas


def test_the_flagged_count_is_what_the_served_model_flags_on_the_test_split(
    mlflow_server, run_id, evaluation, data_root
):
    report = evaluation[0]["out_of_distribution"]
    test = load_dataset(data_root / "demo", splits=("test",)).test
    served = load_classifier(run_model_uri(run_id))
    _, scores = served.assess(served.to_batch([(data_root / "demo" / f).read_bytes()
                                               for f in test.files]))  # fmt: skip
    assert report["images"] == len(test.files) == evaluation[0]["n_samples"]
    assert report["flagged"] == int((scores > 1).sum())
    flagged = {f for f, s in zip(test.files, scores, strict=True) if s > 1}
    assert {image["file"] for image in report["flagged_images"]} == flagged
    assert report["check"]["quantile"] == 0.99
    n = report["check"]["validation_images"]
    assert n < 99 and report["expected_rate"] == pytest.approx(1 / (n + 1))  # their largest


def test_test_images_unlike_the_training_images_are_noted(mlflow_server, run_id, data_root):
    noise = synthesize(
        data_root / "ood-noise", train_per_class=1, test_per_class=6, size=32, seed=3
    )
    rng = np.random.default_rng(0)
    for path in (noise / "test").rglob("*.png"):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    evaluated = evaluate_run(run_id, mlflow_server, data_dir=noise)
    report = evaluated["out_of_distribution"]
    assert report["flagged"] == report["images"] == 18
    assert report["rate"]["ci_low"] > report["expected_rate"] and report["p_value"] < 1e-6
    assert "18 of 18 test images" in report["note"] and "differs" in report["note"]
    # a caveat of choosing the run, as the dashboard lists them
    parsed = schemas.EvaluationReport.model_validate(evaluated)
    assert report["note"] in caveats_of(evaluated["artifact_path"], parsed)[1]


def test_test_images_like_the_validation_ones_are_seldom_noted():
    # 400 models, each with its own 78 validation and 156 test images of one distribution: the
    # flagged count varies with the threshold's own draw, which the note must allow for (a rule
    # "the rate's interval lies above 1 - quantile" fired for 76 of them, this one for 5)
    rng = np.random.default_rng(0)
    notes = 0
    for _ in range(400):
        threshold = conformal_threshold(rng.random(78), 0.99)
        reference = OODReference([np.eye(1)], [np.zeros((1, 1))], threshold, 0.99, 78, 546)
        report = ood_report([rng.random(156) / threshold], reference, [])  # a .npz: no files
        notes += report["note"] is not None
    assert notes <= 8  # at most 2 %: the note's level is 1 %


def test_a_flagged_image_of_a_split_without_files_is_named_by_its_index():
    reference = OODReference([np.eye(1)], [np.zeros((1, 1))], 1.0, 0.99, 78, 546)
    report = ood_report([np.array([0.5, 3.0, 1.5])], reference, [])  # a MedMNIST .npz's test
    assert [f["file"] for f in report["flagged_images"]] == ["test[1]", "test[2]"]


def test_the_flagged_share_is_logged_as_a_metric_with_its_interval(evaluation):
    """What the leaderboard sorts by: the share of the test images the trained model's check
    flags, as ``metrics.json`` reports it, and the share it expects."""
    ood, logged = evaluation[0]["out_of_distribution"], evaluation[0]["metrics"]
    rate = ood["rate"]
    assert logged["eval_ood_rate"] == rate["value"] == ood["flagged"] / ood["images"]
    assert (logged["eval_ood_rate_ci_low"], logged["eval_ood_rate_ci_high"]) == (
        rate["ci_low"], rate["ci_high"]
    )  # fmt: skip
    assert logged["eval_ood_expected_rate"] == ood["expected_rate"]


def test_a_model_without_the_check_logs_no_flagged_share_not_even_zero():
    y = np.array([0, 1, 0, 1])
    report = compute_metrics(y, np.eye(2)[y] * 0.8 + 0.1, ["a", "b"])
    reference = OODReference([np.eye(1)], [np.zeros((1, 1))], 1.0, 0.99, 78, 546)
    scores = [np.array([0.5, 3.0, 0.2, 0.1])]
    checked = flat_metrics(report | {"out_of_distribution": ood_report(scores, reference, [])})
    unchecked = flat_metrics(report | {"out_of_distribution": ood_report(scores, None, [])})
    assert checked["eval_ood_rate"] == 0.25
    assert [key for key in unchecked if key.startswith("eval_ood")] == []
