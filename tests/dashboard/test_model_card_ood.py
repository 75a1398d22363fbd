"""The model card's word on the out-of-distribution check (``dashboard.ood.card_line``)."""

from dashboard import build_model_card, evaluation_table
from dashboard.reads import load_run, read_artifact
from runs import contract, schemas


def _limitations(card: str) -> str:
    return " ".join(card.split("## Known limitations")[1].split())


def test_the_card_of_a_model_with_the_check_says_what_its_answers_flag_and_the_test_share(
    mlflow_server, threshold_run
):
    run_id = threshold_run["run_id"]  # the real trainer's defaults: the check at 0.99
    run = load_run(mlflow_server, run_id)
    path = f"{contract.evaluation_dir(run['tags'])}/{contract.METRICS_JSON}"
    report = schemas.EvaluationReport.model_validate_json(
        read_artifact(mlflow_server, run_id, path)
    )
    ood = report.out_of_distribution
    text = _limitations(
        build_model_card(run, evaluation=evaluation_table(run["metrics"], report), report=report)
    )
    assert "`ood_score`" in text and "`out_of_distribution` (`ood_score` > 1)" in text
    assert "the 0.99 quantile of the validation images' distances" in text
    check = ood["check"]  # under 99 validation images: the largest, flagging 1 in n+1
    assert check["validation_images"] < 99
    assert (
        f"with {check['validation_images']} validation images, the largest of them; about "
        f"{100 / (check['validation_images'] + 1):.1f} % of images like the validation ones "
        "flagged) and `out_of_distribution`"
    ) in text
    assert "send it to a person" in text
    assert (
        f"On the evaluation's test images: {ood['flagged']} of {ood['images']} test images" in text
    )


def test_the_card_of_a_model_without_the_check_says_it_carries_none(mlflow_server, dashboard_runs):
    run = load_run(mlflow_server, dashboard_runs["pipeline"])  # a model made before the check
    text = _limitations(build_model_card(run))
    assert "No out-of-distribution check: the model answers every image" in text
    assert "On the evaluation's test images" not in text
