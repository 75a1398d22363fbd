"""The dashboard's own reads and writes follow the confinement rule (``common.confine``)."""

import pytest

from common import InvalidInput
from dashboard import download_run
from dashboard.embedding import find_data


def test_data_of_a_run_outside_data_dir_is_not_read(tmp_path):
    outside = tmp_path / "outside" / "secret"
    (outside / "test").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="not under DATA_DIR"):
        find_data({"data_dir": str(outside)}, tmp_path / "data")


def test_data_of_a_run_is_found_under_data_dir_by_name(tmp_path):
    (tmp_path / "data" / "demo").mkdir(parents=True)
    found = find_data({"data_dir": "/elsewhere/demo"}, tmp_path / "data")
    assert found == (tmp_path / "data" / "demo").resolve()


@pytest.mark.parametrize("run_id", ["..", "../escape", "/tmp/x", "."])
def test_download_destination_outside_artifacts_dir_is_refused(tmp_path, run_id):
    with pytest.raises(InvalidInput):
        download_run(run_id, "http://127.0.0.1:9", tmp_path / "artifacts")
    assert list((tmp_path / "artifacts").iterdir()) == []
