import re

import pytest

from evaluator.__main__ import main


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


def test_unknown_run_is_one_error_line_and_exit_2(environment, capsys):
    assert main(["--run-id", "0" * 32]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: run") and "\n" not in err


def test_batch_size_out_of_range_exits_2(environment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--run-id", "0" * 32, "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert "--batch-size must be between 1 and 4096" in capsys.readouterr().err
