"""The predictor without HTTP (``predictor.core``): what its holder says and logs."""

import logging

import pytest

from common import ServiceUnavailable, Settings
from dashboard.choose import choose_run
from predictor import ModelHolder


def test_a_tracking_server_down_is_reported_without_its_credentials(unreachable_uri, tmp_path):
    uri = unreachable_uri.replace("://", "://audituser:s3cretPW@")
    settings = Settings(_env_file=None, mlflow_tracking_uri=uri, store_dir=tmp_path / "store")
    holder = ModelHolder(settings, record=False)
    holder.refresh()
    with pytest.raises(ServiceUnavailable, match="unreachable") as caught:
        holder.serving()  # what /ready and /predict answer while no model is loaded
    assert "s3cretPW" not in str(caught.value) and "audituser" not in str(caught.value)


def test_a_version_that_fails_to_load_with_a_bug_is_tried_and_logged_once(
    settings, served_runs, caplog
):
    """Looked at every 2 s while nothing is served: one traceback, not one per look."""
    choose_run(served_runs[0], "three classes", settings, allow_unevaluated=True)

    tries = []

    def broken(uri: str, files: str | None):
        tries.append(uri)
        raise RuntimeError("a bug in loading")

    holder = ModelHolder(settings, loader=broken, record=False)
    with caplog.at_level(logging.INFO, logger="predictor"):
        for _ in range(3):
            holder.refresh()
    failed = [r for r in caplog.records if r.getMessage().endswith("version 1 failed")]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert "a bug in loading" in holder.problem
    assert len(tries) == 1  # nor loaded again at every look (weights.RETRY_S)
