"""The predictor's line on the Choose model tab says whether the served model carries the
out-of-distribution check (its ``/ready`` answer's ``ood_check``)."""

from dashboard.tabs.deploy import ready_line

SERVED = {"model_name": "m", "version": "2", "run_id": "r", "modalities": ["US"]}


def test_the_predictor_line_says_the_served_model_flags_images_unlike_its_training_images():
    check = {"method": "mahalanobis", "threshold": 12.5, "quantile": 0.99,
             "validation_images": 78, "training_images": 546, "members": 5}  # fmt: skip
    line = ready_line("http://p:5007", 200, {**SERVED, "ood_check": check})
    assert line.endswith(
        "; it flags images unlike its training images (threshold at the 0.99 quantile of "
        "validation)"
    )


def test_the_predictor_line_says_the_served_model_carries_no_check():
    line = ready_line("http://p:5007", 200, {**SERVED, "ood_check": None})
    assert line.endswith(
        "; the served model carries no out-of-distribution check (ood_score is null)"
    )
