"""The environment a service's command needs (``launcher.Service.env``) is set wherever it runs:
the image's default, Compose and Kubernetes (`make demo` passes it too: tests/e2e)."""

import shlex

import pytest

from tests.deploy.conftest import BY_NAME, main_container
from tests.deploy.test_docker import STAGES

WITH_ENV = sorted(name for name, service in BY_NAME.items() if service.env)


def test_the_mlflow_server_runs_without_mlflows_job_helpers():
    assert ("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false") in BY_NAME["mlflow"].env


@pytest.mark.parametrize("name", WITH_ENV)
def test_the_image_sets_it(name):
    found = dict(
        pair.split("=", 1) for args in STAGES[name].args("ENV") for pair in shlex.split(args)
    )
    assert dict(BY_NAME[name].env).items() <= found.items()


@pytest.mark.parametrize("name", WITH_ENV)
def test_compose_sets_it(compose, name):
    found = compose["services"][name].get("environment", {})
    assert dict(BY_NAME[name].env).items() <= found.items()


@pytest.mark.parametrize("name", WITH_ENV)
def test_kubernetes_sets_it(k8s_docs, name):
    container = main_container(k8s_docs, name)
    found = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert dict(BY_NAME[name].env).items() <= found.items()
