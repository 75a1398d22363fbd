"""``make demo``'s steps (``launcher.demo``) that do not need the whole pipeline."""

import pytest

from launcher.demo import choose_the_demo_run, get_parser
from launcher.stack import JobFailed, Stack, StackConfig
from tests.conftest import free_port


def test_a_refused_choice_with_nothing_served_fails_the_demo(tmp_path):
    """dashboard.choose exits 2 with one line (here: no tracking server) and no predictor
    serves anything: the demo cannot say "serves on", it fails naming the refusal."""
    config = StackConfig(root=tmp_path, data_dir=tmp_path / "data", state_dir=tmp_path / ".state",
                         log_dir=tmp_path / "logs",
                         ports={"mlflow": free_port(), "predictor": free_port()})  # fmt: skip
    said: list[str] = []
    with Stack(config) as stack, pytest.raises(JobFailed) as failed:
        choose_the_demo_run(stack, lambda name, message: said.append(f"{name}: {message}"),
                            "0" * 32, token=None)  # fmt: skip
    assert failed.value.code == 2 and failed.value.lines[-1].startswith("error: ")
    assert said == []


def test_a_service_gets_another_port_by_name():
    args = get_parser().parse_args(["--port", "mlflow=5100", "--port", "dashboard=8600"])
    assert dict(args.port) == {"mlflow": 5100, "dashboard": 8600}


@pytest.mark.parametrize("value", ["mlfow=5100", "mlflow=0", "mlflow=http", "5100"])
def test_a_bad_port_names_the_services_in_one_line(value, capsys):
    with pytest.raises(SystemExit) as exited:
        get_parser().parse_args(["--port", value])
    assert exited.value.code == 2
    assert "SERVICE one of mlflow, evaluator" in capsys.readouterr().err
