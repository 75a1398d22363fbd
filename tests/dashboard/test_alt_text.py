import pandas as pd

from dashboard import alt_text
from runs import contract, schemas


def _report() -> schemas.EvaluationReport:
    return schemas.EvaluationReport(
        n_samples=9,
        class_names=["melanoma", "nevus"],
        overall={"ece": schemas.Estimate(value=0.0412)},
        per_class={
            "melanoma": {"roc_auc": schemas.Estimate(value=0.947)},
            "nevus": {"roc_auc": schemas.Estimate(value=0.857)},
        },
        confusion_matrix=[[4, 1], [2, 2]],
    )


def test_confusion_matrix_reads_row_by_row():
    words = alt_text.evaluation_plot(contract.CONFUSION_MATRIX_PNG, "Confusion matrix", _report())
    assert words == (
        "Confusion matrix, rows true class, columns predicted: "
        "true melanoma: 4 melanoma, 1 nevus; true nevus: 2 melanoma, 2 nevus."
    )


def test_roc_curves_give_each_class_auc():
    words = alt_text.evaluation_plot(contract.ROC_CURVES_PNG, "ROC curves", _report())
    assert words.endswith("AUC melanoma 0.947, nevus 0.857.")


def test_an_auc_recorded_as_a_plain_number_is_read_too():
    report = _report().model_copy(update={"per_class": {"melanoma": {"roc_auc": 0.947}}})
    assert alt_text.roc_curves(report).endswith("AUC melanoma 0.947, nevus –.")


def test_calibration_gives_the_ece():
    words = alt_text.evaluation_plot(contract.CALIBRATION_PNG, "Calibration", _report())
    assert "9 test images" in words and "expected calibration error 0.041" in words


def test_a_plot_without_a_report_is_still_named():
    assert alt_text.evaluation_plot(contract.ROC_CURVES_PNG, "ROC curves", None).startswith(
        "ROC curves plot"
    )


def test_misclassified_image_is_named_by_its_classes():
    words = alt_text.misclassified_image("evaluation/misclassified/1_12_melanoma_as_nevus.png")
    assert words == "Misclassified test image 12: true melanoma, taken for nevus."


def test_grouped_bars_read_group_by_group():
    frame = pd.DataFrame(
        [("train", "melanoma", 5.0), ("train", "nevus", 1.0), ("test", "melanoma", 2)],
        columns=["split", "class", "count"],
    )
    words = alt_text.counts(frame, "split", "class", "count", "Class distribution")
    assert words == "Class distribution: train: melanoma 5, nevus 1; test: melanoma 2."


def test_shares_are_read_as_percentages():
    frame = pd.DataFrame([("SHAP", "R", 0.5), ("SHAP", "G", 0.25)], columns=["m", "c", "s"])
    words = alt_text.counts(frame, "m", "c", "s", "Shares", shares=True)
    assert words == "Shares: SHAP: R 50%, G 25%."


def test_an_artifact_image_is_named_with_its_size_and_where_it_is_described():
    words = alt_text.artifact_image(f"evaluation/{contract.ROC_CURVES_PNG}", (640, 480))
    assert words == (
        "Image file evaluation/roc_curves.png of this run, 640×480 pixels. "
        "The Evaluation tab shows what it draws in words."
    )


def test_an_unreadable_misclassified_artifact_keeps_its_classes():
    words = alt_text.artifact_image("evaluation/misclassified/01_12_nevus_as_melanoma.png", None)
    assert words == (
        "Misclassified test image 12: true nevus, taken for melanoma "
        "(file evaluation/misclassified/01_12_nevus_as_melanoma.png)."
    )
