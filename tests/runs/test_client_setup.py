"""MLflow's client as every process of the pipeline sets it up (``runs.client_setup``)."""

import sys

import runs  # noqa: F401 - sets the client up


def test_mlflows_probe_for_databricks_before_each_request_searches_no_path():
    """Outside Databricks, MLflow's client no longer tries to import Databricks' packages before
    every request (each try searched sys.path under the import lock: 37 % of a client's CPU for
    model downloads and run reads); its other headers are still sent."""
    import importlib.abc

    from mlflow.tracking.request_header.registry import resolve_request_headers

    resolve_request_headers()  # what is installed is imported once, and found in sys.modules

    class Searches(importlib.abc.MetaPathFinder):
        def __init__(self) -> None:
            self.names: list[str] = []

        def find_spec(self, name, path=None, target=None):
            self.names.append(name)
            return None

    spy = Searches()
    sys.meta_path.insert(0, spy)
    try:
        headers = resolve_request_headers()
    finally:
        sys.meta_path.remove(spy)
    assert spy.names == []
    assert headers["User-Agent"].startswith("mlflow-python-client")
