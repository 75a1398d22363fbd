"""The model card writes a figure as the dashboard's tabs do (``readable.figure``): the same
number reads alike on the Deploy and Choose tabs' card and on the Evaluation tab."""

from dashboard import build_model_card, evaluation_table
from dashboard.card_tables import operating_point_table
from dashboard.tabs.evaluation import figures
from runs import schemas

TIE = 0.99125  # stored a hair below: ``:.4f`` wrote 0.9912, the tabs write 0.9913


def _run() -> dict:
    return {"run_id": "r1", "run_name": "r", "status": "FINISHED", "params": {},
            "metrics": {"eval_accuracy": TIE}, "tags": {}}  # fmt: skip


def _section(card: str, heading: str) -> str:
    return card.split(f"## {heading}")[1].split("\n## ")[0]


def test_the_cards_evaluation_figures_read_as_the_evaluation_tabs():
    """0.99125 read 0.9912 on the card and 0.9913 on the tab; an AUC of 0.99995 read 1.0000 on
    the card, a perfect one; the bounds read to four decimals there, to three digits here."""
    metrics = {"eval_accuracy": TIE, "eval_accuracy_ci_low": 0.98125,
               "eval_accuracy_ci_high": 0.99995, "eval_roc_auc_macro": 0.99995}  # fmt: skip
    table = evaluation_table(metrics)
    card = _section(build_model_card(_run(), evaluation=table), "Evaluation")
    assert "| test accuracy | 0.9913 | 0.981 | 0.99995 |" in card
    assert "| test AUC (macro) | 0.99995 | – | – |" in card
    tab = figures(table).set_index("metric")
    assert list(tab.loc["accuracy", ["value", "ci_low", "ci_high"]]) == [
        "0.9913",
        "0.981",
        "0.99995",
    ]
    assert tab.loc["roc_auc_macro", "value"] == "0.99995"


def test_the_cards_decision_rule_reads_as_the_evaluation_tabs():
    """A threshold of 0.99996 read ``≥ 1.0000``: deciding only at certainty, which it does not."""
    point = schemas.ThresholdPoint.model_validate({
        "positive_class": "melanoma", "threshold": 0.99996, "per_class": {"melanoma": {
            "sensitivity": {"value": TIE, "ci_low": 0.9996, "ci_high": 1.0}}},
    })  # fmt: skip
    rule = _section(build_model_card(_run(), operating_point=point), "Decision rule")
    assert "is decided when its probability is ≥ 0.99996, the threshold" in rule
    assert "| melanoma | sensitivity | 0.9913 | 0.9996 | 1 |" in rule
    [rates] = figures(operating_point_table(point)).to_dict("records")
    assert [rates[k] for k in ("value", "ci_low", "ci_high")] == ["0.9913", "0.9996", "1"]


def test_a_threshold_short_of_1_never_reads_1_in_the_served_lines():
    """A threshold of 0.99996 read ``≥ 1`` in the predictor's line (``:.3g``) and in a version's
    summary (``:.4g``): a rule deciding at certainty, which it is not."""
    from dashboard.handoff import evaluation_summary
    from dashboard.predictor_lines import ready_line

    point = {"positive_class": "malignant", "threshold": 0.99996, "val_sensitivity": 0.5}
    body = {"model_name": "m", "version": "1", "run_id": "r1", "operating_point": point}
    assert "at probability ≥ 0.99996 (validation" in ready_line("http://p:5007", 200, body)
    metrics = {"eval_accuracy": 0.9, "eval_threshold": 0.99996,
               "eval_thr_sensitivity_malignant": 0.5}  # fmt: skip
    assert "the served decision (threshold 0.99996): sensitivity" in evaluation_summary(metrics)
