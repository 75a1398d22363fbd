"""The command line: ``python -m explainer``."""

import pytest

from common import InvalidInput, get_settings
from explainer import check_request
from explainer.__main__ import FLAGS, main
from explainer.app import ExplainIn


@pytest.fixture
def tracking(monkeypatch, trained_run):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_run.tracking_uri)
    get_settings.cache_clear()
    yield trained_run
    get_settings.cache_clear()


def test_explains_a_run_and_prints_the_deletion_table(tracking, capsys):
    code = main(["--run-id", tracking.run_id, "--n-samples", "2", "--methods", "gradcam"])
    out = capsys.readouterr().out
    assert code == 0
    assert "explained 2 test images" in out
    assert "gradcam" in out and "deletion AUC" in out


def test_unknown_run_is_one_line_and_exit_2(tracking, capsys):
    assert main(["--run-id", "e" * 32]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: run ") and "does not exist" in err
    assert "\n" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n-samples", "65"], "between 1 and 64"),
        (["--methods", "lime"], "choose from 'shap', 'integrated_gradients', 'gradcam'"),
        (["--seed", "-1"], "seed must be between 0 and 2147483647, got -1"),
        (["--seed", "4294967296"], "seed must be between 0 and 2147483647"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--run-id", "a" * 32, *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def _api_range(field: str) -> tuple[int, int]:
    """The least and the largest value of ``field`` that the API's request model takes."""
    found = {k: getattr(m, k) for m in ExplainIn.model_fields[field].metadata
             for k in ("ge", "le") if hasattr(m, k)}  # fmt: skip
    return found["ge"], found["le"]


@pytest.mark.parametrize(("field", "flag"), [("n_samples", "--n-samples"), ("seed", "--seed")])
def test_the_cli_refuses_what_the_api_refuses_in_the_explainers_own_words(field, flag, capsys):
    """One definition of the ranges: the CLI refuses just past the API's bounds, with the words
    of the explainer's check that every request passes (``check_request``), not its own."""
    low, high = _api_range(field)
    for value in (low - 1, high + 1):
        with pytest.raises(SystemExit) as exit_info:
            main(["--run-id", "a" * 32, flag, str(value)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        with pytest.raises(InvalidInput) as refused:
            check_request(**{"n_samples": 4, "methods": None, field: value}, names=FLAGS)
        assert err.rstrip().endswith(f"error: {refused.value}"), err
        assert f"{flag} must be between {low} and {high}, got {value}." in err
