"""The Choose model tab and the out-of-distribution check: the predictor's line says whether the
served model carries it (its ``/ready`` answer's ``ood_check``), and a run whose model lacks the
served one's check shows as a change for clients."""

import uuid

from mlflow.tracking import MlflowClient

from common import Settings
from dashboard.predictor_lines import ready_line
from tests.conftest import log_untrained_run
from tests.dashboard.conftest import open_page

SERVED = {"model_name": "m", "version": "2", "run_id": "r", "modalities": ["US"]}


CHECK = {"method": "mahalanobis", "threshold": 12.5, "quantile": 0.99,
         "validation_images": 78, "training_images": 546, "members": 5}  # fmt: skip


def test_the_predictor_line_says_the_served_model_flags_images_unlike_its_training_images():
    line = ready_line("http://p:5007", 200, {**SERVED, "ood_check": CHECK})  # no expected_rate
    assert line.endswith(
        "; it flags images unlike its training images (threshold at the 0.99 quantile of "
        "validation)"
    )


def test_the_predictor_line_says_few_validation_images_make_the_threshold_their_largest():
    check = {**CHECK, "expected_rate": round(1 / 79, 6)}  # r = n = 78: 1 in 79, not 1 %
    line = ready_line("http://p:5007", 200, {**SERVED, "ood_check": check})
    assert line.endswith(
        "(threshold at the 0.99 quantile of validation; with 78 validation images, the largest "
        "of them; about 1.3 % of images like the validation ones flagged)"
    )


def test_the_predictor_line_gives_the_expected_share_of_a_threshold_below_the_largest():
    check = {**CHECK, "validation_images": 200, "expected_rate": round(2 / 201, 6)}  # r = 199
    line = ready_line("http://p:5007", 200, {**SERVED, "ood_check": check})
    assert line.endswith(
        "(threshold at the 0.99 quantile of validation; about 1.0 % of images like the "
        "validation ones flagged)"
    )


def test_the_predictor_line_says_the_served_model_carries_no_check():
    line = ready_line("http://p:5007", 200, {**SERVED, "ood_check": None})
    assert line.endswith(
        "; the served model carries no out-of-distribution check (ood_score is null)"
    )


def test_the_tab_shows_the_loss_of_the_check_before_choosing(
    page_env, mlflow_server, tiny_demo_data, monkeypatch
):
    from dashboard.choose import choose_run

    monkeypatch.setenv("MODEL_NAME", f"tab-{uuid.uuid4().hex[:8]}")
    checked, unchecked = (log_untrained_run(mlflow_server, tiny_demo_data, seed=32, ood=ood)
                          for ood in (True, False))  # fmt: skip
    choose_run(checked, "flags unusual images", Settings(), allow_unevaluated=True)
    experiment = MlflowClient(mlflow_server).get_run(unchecked).info.experiment_id
    at = open_page(unchecked, "Choose model", experiment_id=experiment)
    assert not at.exception
    [change] = [w.value for w in at.warning if "`out_of_distribution`, or send" in w.value]
    assert "out-of-distribution check → none: `out_of_distribution` and `ood_score` are null" in (
        change
    )
    assert any(c.key == f"choose_interface_{unchecked}" for c in at.checkbox)  # to confirm
