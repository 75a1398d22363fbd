"""The dashboard's own reads and writes follow the confinement rule (``common.confine``)."""

import pytest

from common import InvalidInput
from dashboard import download_run


@pytest.mark.parametrize("run_id", ["..", "../escape", "/tmp/x", "."])
def test_download_destination_outside_artifacts_dir_is_refused(tmp_path, run_id):
    with pytest.raises(InvalidInput):
        download_run(run_id, "http://127.0.0.1:9", tmp_path / "artifacts")
    assert list((tmp_path / "artifacts").iterdir()) == []
