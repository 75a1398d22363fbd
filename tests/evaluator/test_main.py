import re

import pytest

from evaluator.__main__ import main
from tests.conftest import log_untrained_run


@pytest.fixture
def environment(monkeypatch, mlflow_server, data_root):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("DATA_DIR", str(data_root))
    from common import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_prints_a_metrics_table_with_intervals(environment, run_id, capsys):
    assert main(["--run-id", run_id, "--data-dir", "demo", "--batch-size", "10"]) == 0
    out = capsys.readouterr().out
    assert "36 test images" in out
    table = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "wilson" in table["accuracy"]
    assert "delong" in out and "bootstrap_percentile" in table["f1_macro"]
    assert re.search(r"out of distribution: \d+ of 36 test images flagged .* expected\)", out)


def test_a_model_without_the_check_is_said_to_be_not_checked(
    environment, mlflow_server, demo_data, capsys
):
    """Not silence, which reads as "nothing flagged" next to a model that has the check."""
    run_id = log_untrained_run(mlflow_server, demo_data, seed=3, ood=False)
    assert main(["--run-id", run_id, "--data-dir", "demo", "--batch-size", "10"]) == 0
    out = capsys.readouterr().out
    assert "out of distribution: not checked (the model carries no out-of-distribution" in out


def test_unknown_run_is_one_error_line_and_exit_2(environment, capsys):
    assert main(["--run-id", "0" * 32]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: run") and "\n" not in err


def test_batch_size_out_of_range_exits_2(environment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--run-id", "0" * 32, "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert "--batch-size must be between 1 and 4096" in capsys.readouterr().err
