"""Choosing a run whose model lacks the out-of-distribution check that the served one has needs
the confirmation of an interface change; gaining the check does not."""

import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput
from dashboard.choose import choose_run
from tests.conftest import log_untrained_run


@pytest.fixture(scope="module")
def ood_runs(mlflow_server, tiny_demo_data) -> dict[bool, str]:
    """Servable runs of the same classes, by whether their model carries the check."""
    return {ood: log_untrained_run(mlflow_server, tiny_demo_data, seed=31, ood=ood)
            for ood in (True, False)}  # fmt: skip


def test_a_choice_losing_the_check_needs_a_confirmation(ood_runs, settings):
    choose_run(ood_runs[True], "flags unusual images", settings, allow_unevaluated=True)
    with pytest.raises(InvalidInput) as refused:
        choose_run(ood_runs[False], "no check", settings, allow_unevaluated=True)
    message = str(refused.value)
    assert "out-of-distribution check → none: `out_of_distribution` and `ood_score` are null" in (
        message
    )
    assert "--yes-interface-change" in message
    assert settings.run_id_file.read_text().strip() == ood_runs[True]


def test_a_choice_gaining_the_check_asks_nothing(ood_runs, settings):
    choose_run(ood_runs[False], "no check", settings, allow_unevaluated=True)
    choice = choose_run(ood_runs[True], "flags unusual images", settings, allow_unevaluated=True)
    assert choice.version == "2"


def test_a_version_carries_the_share_of_test_images_its_check_flagged(threshold_run, settings):
    choice = choose_run(threshold_run["run_id"], "flags unusual images", settings)
    client = MlflowClient(settings.mlflow_tracking_uri)
    tags = client.get_model_version(settings.model_name, choice.version).tags
    metrics = client.get_run(threshold_run["run_id"]).data.metrics
    for key in ("eval_ood_rate", "eval_ood_rate_ci_low", "eval_ood_rate_ci_high",
                "eval_ood_expected_rate"):  # fmt: skip
        assert float(tags[key]) == pytest.approx(metrics[key], rel=1e-5)
