import pytest

from common import NotFound, ServiceUnavailable
from runs import check_tracking, get_client, get_run


def test_unreachable_server_is_a_clear_error(unreachable_uri):
    with pytest.raises(ServiceUnavailable, match="unreachable"):
        check_tracking(unreachable_uri, timeout=1)


def test_unknown_run_is_not_found(mlflow_server):
    client = get_client(mlflow_server)
    with pytest.raises(NotFound, match="does not exist"):
        get_run(client, "0" * 32)
