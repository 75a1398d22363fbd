"""What a download leaves in ARTIFACTS_DIR: no folder of a killed download, folders others can
read, and a folder named when its record cannot be stored."""

import os
import stat

import pytest

from common import ServiceUnavailable
from dashboard import download_model, download_run
from jobs import SelectionStore, get_database
from tests.conftest import unreachable_mongo
from tests.leftovers import left_by


def _partial(settings, run_id: str, pid: int):
    """The folder a download of ``run_id`` by process ``pid`` of this host writes."""
    return left_by(settings.artifacts_dir, f".{run_id}.partial-", pid)


def test_a_download_removes_the_partial_folders_killed_downloads_left(
    dashboard_runs, settings, dead_pid
):
    run_id = dashboard_runs["pipeline"]
    same, other = _partial(settings, run_id, dead_pid), _partial(settings, "0" * 32, dead_pid)
    download_run(run_id, settings.mlflow_tracking_uri, settings.artifacts_dir)
    assert not same.exists() and not other.exists()
    assert os.listdir(settings.artifacts_dir) == [run_id]


def test_a_download_leaves_the_partial_folder_of_a_live_download(dashboard_runs, settings):
    run_id = dashboard_runs["pipeline"]
    live = _partial(settings, "0" * 32, os.getpid())
    download_run(run_id, settings.mlflow_tracking_uri, settings.artifacts_dir)
    assert (live / "image.png").is_file()


def test_a_downloaded_folder_has_the_mode_mkdir_gives(dashboard_runs, settings):
    before = os.umask(0o022)
    try:
        path = download_run(
            dashboard_runs["pipeline"], settings.mlflow_tracking_uri, settings.artifacts_dir
        )
    finally:
        os.umask(before)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


def test_a_download_whose_record_cannot_be_stored_names_the_downloaded_folder(
    dashboard_runs, settings
):
    run_id = dashboard_runs["pipeline"]
    down = settings.model_copy(update={"mongo_uri": unreachable_mongo()})
    store = SelectionStore(get_database(down, check=False))
    with pytest.raises(ServiceUnavailable) as err:
        download_model(run_id, settings, store, selected_by="tester")
    path = settings.artifacts_dir / run_id
    assert f"run {run_id} was downloaded to {path}, but the record" in str(err.value)
    assert "download the run again to record it" in str(err.value)
    assert (path / "model" / "MLmodel").is_file()
