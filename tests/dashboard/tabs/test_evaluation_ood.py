"""The Evaluation tab's section on images unlike the training data (the model's
out-of-distribution check, ``metrics.json``'s ``out_of_distribution``)."""

import json
import time

from mlflow.tracking import MlflowClient

from dashboard.ood import absent_sentence
from dashboard.reads import read_artifact
from runs import contract
from tests.dashboard.conftest import old_evaluation, open_page, page_text

SECTION = "Images unlike the training data"


def _run(uri: str, **params: str) -> tuple[str, str]:
    """A run of its own experiment with ``params``: its id and the experiment's."""
    client = MlflowClient(uri)
    exp = client.create_experiment(f"ood-tab-{time.time_ns()}")
    run_id = client.create_run(exp, run_name="ood").info.run_id
    for key, value in params.items():
        client.log_param(run_id, key, value)
    return run_id, exp


def test_a_trained_models_evaluation_says_how_many_test_images_its_check_flags(
    page_env, mlflow_server, threshold_run
):
    run_id = threshold_run["run_id"]
    tags = MlflowClient(mlflow_server).get_run(run_id).data.tags
    path = f"{contract.evaluation_dir(tags)}/{contract.METRICS_JSON}"
    ood = json.loads(read_artifact(mlflow_server, run_id, path))["out_of_distribution"]
    at = open_page(run_id, "Evaluation", experiment_id=threshold_run["experiment"])
    assert not at.exception
    assert SECTION in [s.value for s in at.subheader]
    [sentence] = [m.value for m in at.markdown if "flagged as unlike" in m.value]
    assert sentence.startswith(f"{ood['flagged']} of {ood['images']} test images (")
    expected = f"about {100 * ood['expected_rate']:.1f} % expected"  # 1 in n+1 validation
    assert "95 % CI" in sentence and expected in sentence


def test_flagged_files_are_listed_with_their_scores_as_the_evaluator_wrote_them(
    page_env, mlflow_server
):
    name = "test/a/**bold** [x](https://example.org) <b>.png"
    run_id, exp = _run(mlflow_server, ood_threshold="3.2", ood_quantile="0.99")
    folder = old_evaluation(mlflow_server, run_id, "elsewhere")
    ood = {"check": {"method": "mahalanobis", "quantile": 0.99}, "images": 4, "flagged": 2,
           "rate": {"value": 0.5, "ci_low": 0.15, "ci_high": 0.85, "method": "wilson"},
           "expected_rate": 0.01, "note": None,
           "flagged_images": [{"file": name, "ood_score": 2.5},
                              {"file": "b.png", "ood_score": 1.25}]}  # fmt: skip
    report = json.loads(read_artifact(mlflow_server, run_id, f"{folder}/metrics.json"))
    MlflowClient(mlflow_server).log_dict(
        run_id, {**report, "out_of_distribution": ood}, f"{folder}/metrics.json"
    )
    at = open_page(run_id, "Evaluation", experiment_id=exp)
    assert not at.exception
    [table] = [f.value for f in at.dataframe if "OOD score" in f.value.columns]
    assert list(table["File"]) == [name, "b.png"]
    assert list(table["OOD score"]) == [2.5, 1.25]
    assert any(
        m.value.startswith("2 of 4 test images (50.0 %, 95 % CI 15.0 %–85.0 %)")
        for m in at.markdown
    )


def test_an_evaluation_of_a_model_trained_before_the_check_says_it_has_none(
    page_env, dashboard_runs
):
    at = open_page(dashboard_runs["pipeline"], "Evaluation",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert SECTION in [s.value for s in at.subheader]
    assert "carries no out-of-distribution check (it was trained before" in page_text(at)


def test_an_evaluation_of_a_model_trained_without_the_check_says_so(page_env, mlflow_server):
    run_id, exp = _run(mlflow_server, ood_quantile="0.0")
    old_evaluation(mlflow_server, run_id, "elsewhere")
    at = open_page(run_id, "Evaluation", experiment_id=exp)
    assert any("check (its training ran with --ood-quantile 0)" in c.value for c in at.caption)


def test_an_evaluation_older_than_the_models_check_says_to_evaluate_again(page_env, mlflow_server):
    run_id, exp = _run(mlflow_server, ood_threshold="3.2", ood_quantile="0.99")
    old_evaluation(mlflow_server, run_id, "elsewhere")
    at = open_page(run_id, "Evaluation", experiment_id=exp)
    assert any(
        c.value.startswith("This evaluation predates the model's out-of-distribution check")
        for c in at.caption
    )


def test_a_model_whose_training_could_not_fit_the_check_is_not_said_to_have_turned_it_off():
    # --ood-quantile 0.99 logged, no threshold: the trainer left the check out (its log says why)
    said = absent_sentence({"ood_quantile": "0.99"})
    assert "could not fit one" in said and "--ood-quantile 0" not in said
