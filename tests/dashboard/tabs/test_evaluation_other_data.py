"""An evaluation of another folder than the run's own test split: the Evaluation tab does not
show the warnings of the run's own split (duplicates across its splits, labels in conflict) as
if they were of the images evaluated, and says why they are not shown."""

import time

from mlflow.tracking import MlflowClient

from runs import contract
from tests.dashboard.conftest import open_page

CONFLICT = {"files": ["train/a/1.png", "test/b/1.png"], "classes": ["a", "b"]}
STATS = {"class_names": ["a", "b"], "counts": {"test": {"a": 78, "b": 78, "total": 156}},
         "leakage": {"exact": {"train/test": {"count": 66, "examples": []}}, "near": {},
                     "label_conflicts": {"count": 1, "examples": [CONFLICT]}}}  # fmt: skip


def _run(uri: str, evaluated_hash: str, own_data: bool) -> tuple[str, str]:
    """A leaky run (its test split: hash ``mine``, 156 images) whose current evaluation is of
    60 images of ``/data/other`` (hash ``evaluated_hash``); its id and experiment."""
    client = MlflowClient(uri)
    exp = client.create_experiment(f"evaluation-other-data-{time.time_ns()}")
    run_id = client.create_run(exp, run_name="other-data").info.run_id
    client.log_param(run_id, "data_dir", "breastmnist")
    client.log_param(run_id, "data_n_test", "156")
    client.log_dict(run_id, STATS, contract.DATASET_STATS_JSON)
    client.set_tag(run_id, contract.TEST_DATA_TAG, "mine")
    folder = "evaluation/other-1"
    report = {"n_samples": 60, "class_names": ["a", "b"], "confusion_matrix": [[25, 5], [5, 25]],
              "overall": {"accuracy": {"value": 0.83, "ci_low": 0.72, "ci_high": 0.91,
                                       "method": "wilson"}},
              "run_id": run_id, "data_dir": "/data/other", "own_data": own_data,
              "dataset_hash": evaluated_hash, "tta": "none"}  # fmt: skip
    client.log_dict(run_id, report, f"{folder}/{contract.METRICS_JSON}")
    client.log_metric(run_id, "eval_accuracy", 0.83)
    client.set_tag(run_id, contract.EVALUATION_PATH_TAG, folder)
    for key, value in contract.evaluation_tags("none", own_data, evaluated_hash, folder).items():
        client.set_tag(run_id, key, value)
    client.set_terminated(run_id)
    return run_id, exp


def _alerts(at) -> tuple[list[str], list[str]]:
    return [w.value for w in at.warning], [i.value for i in at.info]


def test_the_own_splits_warnings_are_not_said_of_other_images(page_env, mlflow_server):
    run_id, exp = _run(mlflow_server, "theirs", own_data=False)
    at = open_page(run_id, "Evaluation", experiment_id=exp)
    assert not at.exception
    warnings, infos = _alerts(at)
    assert any("nothing checked its images against the run's training data" in w for w in warnings)
    assert not any(w.startswith(("Possible leakage", "Labels in conflict")) for w in warnings)
    [why] = [i for i in infos if "not shown here" in i]
    assert "(labels in conflict, possible leakage)" in why
    assert "its own test split of 156 images" in why
    assert "not the 60 images of `/data/other` evaluated here" in why


def test_the_warnings_stay_for_the_runs_own_test_files_under_another_path(page_env, mlflow_server):
    run_id, exp = _run(mlflow_server, "mine", own_data=False)  # the very files, copied
    at = open_page(run_id, "Evaluation", experiment_id=exp)
    warnings, infos = _alerts(at)
    assert any(w.startswith("Possible leakage: 66 images") for w in warnings), warnings
    assert any(w.startswith("Labels in conflict") for w in warnings), warnings
    assert not any("not shown here" in i for i in infos)
