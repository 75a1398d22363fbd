"""The predictor without HTTP (``predictor.core``): what its holder says of the tracking server."""

import pytest

from common import ServiceUnavailable, Settings
from predictor import ModelHolder


def test_a_tracking_server_down_is_reported_without_its_credentials(unreachable_uri, tmp_path):
    uri = unreachable_uri.replace("://", "://audituser:s3cretPW@")
    settings = Settings(_env_file=None, mlflow_tracking_uri=uri, store_dir=tmp_path / "store")
    holder = ModelHolder(settings, record=False)
    holder.refresh()
    with pytest.raises(ServiceUnavailable, match="unreachable") as caught:
        holder.serving()  # what /ready and /predict answer while no model is loaded
    assert "s3cretPW" not in str(caught.value) and "audituser" not in str(caught.value)
