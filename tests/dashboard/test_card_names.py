"""The model card in a clinician's words: its figures named as the dashboard names them
(``readable``), no params that record nothing, and a next step that works as pasted; the
at-threshold rows of the evaluation table with the interval method ``metrics.json`` gives."""

import pandas as pd

from common import Settings
from dashboard import build_model_card, evaluation_table
from dashboard.commands import interpreter
from runs import schemas


def _run(metrics: dict, **params: str) -> dict:
    return {"run_id": "r1", "run_name": "r", "status": "FINISHED", "params": params,
            "metrics": metrics, "tags": {}}  # fmt: skip


def _section(card: str, heading: str) -> str:
    return card.split(f"## {heading}")[1].split("\n## ")[0]


def test_the_cards_figures_are_named_as_the_dashboard_names_them():
    table = pd.DataFrame(
        [{"metric": m, "value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "overall": True}
         for m in ("balanced_accuracy", "ece", "roc_auc_macro")]
    )  # fmt: skip
    card = _section(build_model_card(_run({}), evaluation=table), "Evaluation")
    for name in ("test balanced accuracy", "test calibration error (ECE)", "test AUC (macro)"):
        assert f"| {name} | 0.5 | 0.4 | 0.6 |" in card
    assert "| ece |" not in card and "| roc_auc_macro |" not in card


def test_params_logged_as_none_are_left_out_of_the_training_setup():
    setup = _section(build_model_card(_run({}, model="resnet18", modality="None")), "Training")
    assert "| model | resnet18 |" in setup
    assert "modality" not in setup and "None" not in setup


def test_the_cards_next_step_names_the_dashboards_server_and_data(tmp_path):
    settings = Settings(mlflow_tracking_uri="http://10.0.0.5:5100", data_dir=tmp_path)
    card = build_model_card(_run({}), settings=settings)
    command = (
        f"`MLFLOW_TRACKING_URI=http://10.0.0.5:5100 DATA_DIR={tmp_path.resolve()} "
        f"{interpreter()} -m evaluator --run-id r1`"
    )
    assert f"Not evaluated yet: run {command} or press Evaluate." in card
    assert command.replace("evaluator", "explainer") in _section(card, "Explanations")


def test_at_threshold_rows_carry_their_wilson_interval_method():
    wilson = {"value": 0.75, "ci_low": 0.4, "ci_high": 0.9, "method": "wilson"}
    report = schemas.EvaluationReport.model_validate({
        "n_samples": 8, "class_names": ["melanoma", "nevus"],
        "overall": {"accuracy": wilson},
        "operating_points": {"threshold": {"positive_class": "melanoma", "threshold": 0.3,
                                           "per_class": {"melanoma": {"sensitivity": wilson}}}},
    })  # fmt: skip
    metrics = {"eval_accuracy": 0.75, "eval_thr_sensitivity_melanoma": 0.75}
    table = evaluation_table(metrics, report).set_index("metric")
    assert table.loc["thr_sensitivity_melanoma", "method"] == "wilson"
    assert table.loc["accuracy", "method"] == "wilson"
