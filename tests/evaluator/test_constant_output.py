"""A model whose output ignores its input (a mobilenet after 2 epochs gave P(malignant) =
0.4378215 ± 5e-9 for all 156 test images): the evaluator records how far its probabilities
spread, and the leaderboard marks every test figure of it (its AUC orders float noise)."""

import mlflow
import numpy as np
import torch

from dashboard import leaderboard, reads
from evaluator import evaluate_run
from evaluator.evaluate import probability_range
from runs import Preprocessing, build_model, contract, log_classifier
from tests.conftest import log_untrained_run


def test_float_noise_is_a_constant_and_a_real_spread_is_not():
    rng = np.random.default_rng(0)
    p1 = 0.4378215 + rng.uniform(-5e-9, 5e-9, 156)  # the probe's mobilenet
    noise = np.stack([1 - p1, p1], axis=1).astype(np.float32)
    assert probability_range(noise) < contract.CONSTANT_RANGE
    slight = noise.copy()
    slight[0] = [0.5, 0.5]  # one image told apart: its ordering is the model's, not noise's
    assert probability_range(slight) > contract.CONSTANT_RANGE
    assert probability_range(np.zeros((0, 2), np.float32)) is None


def _constant_run(uri: str, data_dir) -> str:
    """A pipeline model of ``data_dir``'s classes whose logits are its head's bias alone."""
    from dataloader import load_dataset

    ds = load_dataset(data_dir, image_size=32, channels=3, splits=("train",), val_fraction=0)
    pp = Preprocessing(image_size=(32, 32), channels=3, class_names=ds.class_names,
                       mean=ds.stats["mean"], std=ds.stats["std"])  # fmt: skip
    model = build_model("smallcnn", 3, len(ds.class_names), pp.mean, pp.std).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([0.2, -0.1, 0.05]))
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("constant-output-tests")
    with mlflow.start_run(run_name="constant") as run:
        mlflow.log_dict(pp.model_dump(mode="json"), "preprocessing.json")
        log_classifier(model, pp, "model")
    return run.info.run_id


def test_an_evaluation_records_a_constant_output_and_the_leaderboard_marks_it(
    mlflow_server, demo_data
):
    flat_id = _constant_run(mlflow_server, demo_data)
    real_id = log_untrained_run(mlflow_server, demo_data, seed=5)
    reports = {i: evaluate_run(i, mlflow_server, data_dir=demo_data, batch_size=10)
               for i in (flat_id, real_id)}  # fmt: skip
    assert reports[flat_id]["probability_range"] < contract.CONSTANT_RANGE
    assert reports[real_id]["probability_range"] > contract.CONSTANT_RANGE
    runs = [reads.load_run(mlflow_server, i) for i in (flat_id, real_id)]
    tags = runs[0]["tags"]
    assert float(tags[contract.EVALUATION_RANGE_TAG]) == reports[flat_id]["probability_range"]
    assert tags[contract.EVALUATION_RANGE_OF_TAG] == reports[flat_id]["artifact_path"]
    for run in runs:  # as of their own test data (they log no data_dir), so that they rank
        run["tags"][contract.EVALUATION_OWN_DATA_TAG] = "true"
        run["params"]["class_names"] = '["a", "b", "c"]'
    metrics = ["eval_roc_auc_macro", "eval_ece", "eval_accuracy"]
    table = leaderboard.table(runs, metrics)
    for metric in metrics:
        flat, real = table[metric]
        assert flat.endswith("† constant probabilities"), (metric, flat)
        assert "†" not in real and "★" not in real, (metric, real)  # alone: nothing to beat
    # evaluated again by an evaluator without the record: the mark goes, no error
    runs[0]["tags"][contract.EVALUATION_PATH_TAG] = "evaluation/later"
    assert not leaderboard.basis_of(runs[0]).flat
