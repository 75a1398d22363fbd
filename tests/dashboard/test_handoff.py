"""What a choice hands over: caveats a reader of the chosen model's figures must know."""

from dashboard.handoff import caveats_of
from runs import schemas


def _report(confusion: list[list[int]], val_sensitivity: float, val_specificity: float):
    return schemas.EvaluationReport.model_validate({
        "n_samples": sum(map(sum, confusion)), "class_names": ["melanoma", "nevus"],
        "overall": {"accuracy": {"value": 0.5}},
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
