"""An operating point's validation figures in words, with the intervals the trainer records."""

from runs import validation_figures

POINT = {"positive_class": "malignant", "threshold": 0.3, "val_sensitivity": 0.9,
         "val_specificity": 0.8, "n_val": 78}  # fmt: skip


def test_the_validation_figures_carry_their_intervals_and_counts():
    point = {**POINT, "n_val_positive": 30, "n_val_negative": 48,
             "val_sensitivity_ci": [0.744, 0.966], "val_specificity_ci": [0.67, 0.89]}  # fmt: skip
    assert validation_figures(point) == (
        "validation sensitivity 0.90 [0.74, 0.97] on 30 positives, specificity 0.80 "
        "[0.67, 0.89] on 48 others"
    )


def test_an_older_runs_figures_name_its_validation_images_without_intervals():
    assert validation_figures(POINT, 3) == (
        "validation sensitivity 0.900, specificity 0.800 on 78 images"
    )
