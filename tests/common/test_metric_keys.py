"""The names of the evaluator's figures in MLflow (``common.metric_keys``)."""

import math

import pytest

from common import metric_keys


def test_overall_per_class_and_threshold_keys():
    assert metric_keys.eval_key("accuracy") == "eval_accuracy"
    assert metric_keys.eval_key("sensitivity", "malignant") == "eval_sensitivity_malignant"
    assert metric_keys.eval_key("specificity", "malignant", at_threshold=True) == (
        "eval_thr_specificity_malignant"
    )


def test_a_class_name_becomes_a_key_mlflow_accepts():
    assert (
        metric_keys.eval_key("recall", "hair loss / 'alopecia'") == "eval_recall_hair_loss_alopecia"
    )
    assert metric_keys.key_part("???") == "class"


@pytest.mark.parametrize("classes", [["良性", "悪性"], ["hair loss", "hair_loss", "hair-loss"]])
def test_classes_that_would_share_a_key_get_one_each(classes):
    parts = [metric_keys.key_part(name, classes) for name in classes]
    assert len(set(parts)) == len(classes)
    assert parts == [metric_keys.key_part(name, classes) for name in classes]  # stable


def test_a_twin_in_another_script_keeps_its_letters():
    assert metric_keys.key_part("良性", ["良性", "悪性"]).startswith("良性_")


@pytest.mark.parametrize(
    "classes",
    [
        ["A" * 250, "B" * 250],
        ["A" * 120 + " Läsion 病変", "A" * 120 + " Läsion 病巣"],
        ["病" * 90, "変" * 90],
    ],
)
def test_long_class_names_get_parts_that_fit_a_key_and_a_file_name_each_its_own(classes):
    """MLflow takes keys of 250 characters; a misclassified image's file name holds two parts."""
    parts = [metric_keys.key_part(name, classes) for name in classes]
    assert len(set(parts)) == 2
    assert all(len(part.encode()) <= metric_keys.MAX_PART_BYTES for part in parts)
    longest = metric_keys.eval_key("specificity_ci_high", classes[0], at_threshold=True,
                                   among=classes)  # fmt: skip
    assert len(longest) < 250 and len("_as_".join(parts).encode()) + len("5_1234_.png") < 255


def test_a_class_without_a_twin_keeps_the_key_it_was_logged_under():
    classes = ["bénin", "malin", "???"]
    assert [metric_keys.key_part(name, classes) for name in classes] == ["b_nin", "malin", "class"]


@pytest.mark.parametrize("bound", metric_keys.BOUNDS)
def test_a_bound_key_splits_back_into_its_value_key(bound):
    key = metric_keys.bound_key("eval_f1_ci_melanoma", bound)  # a class named "ci_melanoma"
    assert metric_keys.split_bound(key) == ("eval_f1_ci_melanoma", bound)
    assert metric_keys.is_bound(key)
    assert not metric_keys.is_bound("eval_f1_ci_melanoma")


def test_an_interval_needs_both_bounds():
    metrics = {"eval_accuracy": 0.9, "eval_accuracy_ci_low": 0.8}
    assert metric_keys.interval(metrics, "eval_accuracy") is None
    metrics["eval_accuracy_ci_high"] = math.nan  # MLflow keeps a NaN an evaluator logged
    assert metric_keys.interval(metrics, "eval_accuracy") is None
    metrics["eval_accuracy_ci_high"] = 0.95
    assert metric_keys.interval(metrics, "eval_accuracy") == (0.8, 0.95)


def test_summary_shows_the_interval_when_logged():
    metrics = {
        "eval_accuracy": 0.9123,
        "eval_accuracy_ci_low": 0.871,
        "eval_accuracy_ci_high": 0.9412,
    }
    assert metric_keys.summary(metrics, "accuracy") == "accuracy 0.912 [0.871, 0.941]"
    assert metric_keys.summary({"eval_ece": 0.05}, "ece") == "ece 0.050"
    assert metric_keys.summary({}, "ece") == ""


@pytest.mark.parametrize(
    ("metric", "lower"),
    [
        ("eval_ece", True),
        ("eval_thr_brier_x", True),
        ("val_loss", True),
        ("explain_deletion_auc_ig", True),
        ("eval_sensitivity_deceased", False),  # "deceased" holds "ece"
        ("eval_f1_error", False),  # a class named "error"
        ("val_auc", False),
    ],
)
def test_which_way_a_metric_is_better(metric, lower):
    assert metric_keys.lower_is_better(metric) is lower


def test_an_undefined_figure_is_shown_as_such_not_as_missing():
    assert metric_keys.summary({"eval_ece": math.nan}, "ece") == "ece n/a"


def test_a_report_name_of_a_class_is_its_key_without_the_prefix():
    key = metric_keys.eval_key("f1", "a b")
    assert key == "eval_" + metric_keys.class_key("f1", "a b") == "eval_f1_a_b"


def test_eval_figures_are_the_eval_values_as_numbers_from_metrics_or_tags():
    tags = {"eval_accuracy": "0.9", "eval_accuracy_ci_low": "0.8", "eval_note": "n/a",
            "evaluated": "true", "lr": "0.1"}  # fmt: skip
    assert metric_keys.eval_figures(tags) == {"eval_accuracy": 0.9, "eval_accuracy_ci_low": 0.8}
    assert metric_keys.eval_figures({"eval_ece": 0.05, "val_auc": 0.9}) == {"eval_ece": 0.05}
