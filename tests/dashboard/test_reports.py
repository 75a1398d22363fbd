"""The run's published results as the tabs read them (``dashboard.reports``)."""

from dashboard import reports
from dashboard.reads import load_run
from tests.dashboard.conftest import old_evaluation


def test_an_old_evaluation_of_another_folder_is_read_as_other_data(
    mlflow_server, fresh_run, tiny_demo_data
):
    old_evaluation(mlflow_server, fresh_run, f"{tiny_demo_data}-other")  # before own_data
    report = reports.evaluation_report(mlflow_server, load_run(mlflow_server, fresh_run))
    assert report.own_data is False  # as the Evaluation and Choose model tabs show it


def test_an_old_evaluation_of_the_runs_own_folder_is_not_other_data(
    mlflow_server, fresh_run, tiny_demo_data
):
    old_evaluation(mlflow_server, fresh_run, str(tiny_demo_data))
    report = reports.evaluation_report(mlflow_server, load_run(mlflow_server, fresh_run))
    assert report.own_data is True
