"""What a choice hands over: caveats a reader of the chosen model's figures must know."""

from dashboard.handoff import caveats_of
from runs import UNCONFIRMED_POSITIVE, schemas


def _report(
    confusion: list[list[int]], val_sensitivity: float, val_specificity: float,
    argmax: list[list[int]] | None = None,
):  # fmt: skip
    return schemas.EvaluationReport.model_validate({
        "n_samples": sum(map(sum, confusion)), "class_names": ["melanoma", "nevus"],
        "overall": {"accuracy": {"value": 0.5}}, "confusion_matrix": argmax or [[9, 3], [4, 8]],
        "operating_points": {"threshold": {
            "positive_class": "melanoma", "threshold": 0.508, "n_val": 6,
            "val_sensitivity": val_sensitivity, "val_specificity": val_specificity,
            "confusion_matrix": confusion,
        }},
    })  # fmt: skip


def test_a_threshold_that_calls_every_image_positive_is_a_caveat_of_the_choice():
    tags, caveats = caveats_of("evaluation/x", _report([[12, 0], [12, 0]], 1.0, 0.0))
    assert "its threshold decides 'melanoma' for every one of the 24 test images" in caveats
    assert any("chosen on 6 validation images where it reached specificity 0.00" in c
               for c in caveats)  # fmt: skip
    assert "decides 'melanoma' for every one" in tags["evaluation_caveat"]  # on the version


def test_a_threshold_that_tells_the_classes_apart_has_no_caveat():
    assert caveats_of("evaluation/x", _report([[10, 2], [3, 9]], 0.9, 0.7))[1] == []


def test_an_argmax_that_names_one_class_for_every_image_is_a_caveat_of_the_choice():
    """``predicted_class`` is in every answer and the headline figures are the argmax's: a
    constant argmax is said even where the threshold tells the classes apart."""
    tags, caveats = caveats_of(
        "evaluation/x", _report([[10, 2], [3, 9]], 0.9, 0.7, [[0, 12], [0, 12]])
    )
    assert caveats == [
        "its argmax (`predicted_class`) names 'nevus' for every one of the 24 test images: its "
        "accuracy and balanced accuracy are a constant's"
    ]
    assert "names 'nevus' for every one" in tags["evaluation_caveat"]


def test_a_multiclass_argmax_that_names_one_class_for_every_image_is_a_caveat():
    report = schemas.EvaluationReport.model_validate({
        "n_samples": 9, "class_names": ["a", "b", "c"], "overall": {},
        "confusion_matrix": [[0, 3, 0], [0, 3, 0], [0, 3, 0]],
    })  # fmt: skip
    assert caveats_of("evaluation/x", report)[1] == [
        "its argmax (`predicted_class`) names 'b' for every one of the 9 test images: its "
        "accuracy and balanced accuracy are a constant's"
    ]


def test_a_test_split_of_one_class_is_no_caveat_of_an_argmax_that_names_it():
    """Every image of a one-class test split named right: nothing constant to warn of."""
    report = schemas.EvaluationReport.model_validate({
        "n_samples": 10, "class_names": ["malignant", "benign"], "overall": {},
        "confusion_matrix": [[10, 0], [0, 0]], "absent_classes": ["benign"],
    })  # fmt: skip
    assert not any("argmax" in caveat for caveat in caveats_of("evaluation/x", report)[1])


def test_a_threshold_whose_positive_class_the_names_did_not_confirm_is_a_caveat():
    """A .npz's classes 0/1: the threshold protects label 1, which may be the normal class."""
    report = _report([[10, 2], [3, 9]], 0.9, 0.7)
    report.operating_points.threshold.positive_chosen = UNCONFIRMED_POSITIVE
    report.operating_points.threshold.target_sensitivity = 0.9
    [caveat] = caveats_of("evaluation/x", report)[1]
    assert caveat.startswith("its threshold targets sensitivity 0.9 for 'melanoma', taken as the ")
    assert "if the finding is 'nevus', its decision protects the wrong class" in caveat
    confirmed = _report([[10, 2], [3, 9]], 0.9, 0.7)
    confirmed.operating_points.threshold.positive_chosen = "set with --positive-class"
    assert caveats_of("evaluation/x", confirmed)[1] == []
