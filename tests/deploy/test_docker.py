"""The Dockerfiles: hadolint clean, multi-stage, non-root, a health check against the service's
real health endpoint, and the same default command as `make demo`."""

import json
import re
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.deploy.conftest import (
    BY_NAME,
    DOCKER_DIR,
    ROOT,
    container_command,
    run_healthcheck,
    run_tool,
)

DOCKERFILES = sorted(DOCKER_DIR.glob("*.Dockerfile"))
IMAGES = [path.name.removesuffix(".Dockerfile") for path in DOCKERFILES]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def final_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_every_service_has_a_dockerfile():
    assert set(IMAGES) == set(BY_NAME)


@pytest.mark.parametrize("path", DOCKERFILES, ids=IMAGES)
def test_hadolint_finds_nothing(path, hadolint):
    result = run_tool([hadolint, "--no-color", str(path.relative_to(ROOT))])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path, hadolint):
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")
    result = run_tool([hadolint, "--no-color", str(bad)])
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image


@pytest.mark.parametrize("path", DOCKERFILES, ids=IMAGES)
def test_multi_stage_on_python_311_slim(path):
    froms = [args for keyword, args in instructions(path) if keyword == "FROM"]
    assert len(froms) >= 2, "build in one stage, copy the virtualenv into the runtime stage"
    assert all(args.split()[0] == "python:3.11-slim" for args in froms)
    copies = [args for keyword, args in final_stage(path) if keyword == "COPY"]
    assert any(args.startswith("--from=builder /opt/venv") for args in copies)


@pytest.mark.parametrize("path", DOCKERFILES, ids=IMAGES)
def test_runtime_stage_installs_nothing(path):
    runs = " ".join(args for keyword, args in final_stage(path) if keyword == "RUN")
    assert not re.search(r"\b(pip|apt-get|apt|uv)\b", runs)


@pytest.mark.parametrize("path", DOCKERFILES, ids=IMAGES)
def test_runs_as_a_non_root_user(path):
    users = [args for keyword, args in final_stage(path) if keyword == "USER"]
    assert users, "the runtime stage needs a USER"
    user = users[-1].split(":")[0]
    assert user not in {"0", "root"}
    # Numeric, so that Kubernetes can verify runAsNonRoot.
    assert user.isdigit()


def healthcheck_argv(path: Path) -> list[str]:
    checks = [args for keyword, args in final_stage(path) if keyword == "HEALTHCHECK"]
    assert len(checks) == 1 and "NONE" not in checks[0].upper()
    return json.loads(checks[0][checks[0].index("CMD") + 3 :].strip())


SERVER_IMAGES = [p for p in DOCKERFILES if BY_NAME[p.stem].port]


@pytest.mark.parametrize("path", DOCKERFILES, ids=IMAGES)
def test_healthcheck_calls_the_health_endpoint_with_python(path):
    argv = healthcheck_argv(path)
    assert argv[:2] == ["python", "-c"] and "urllib.request" in argv[2]
    service = BY_NAME[path.name.removesuffix(".Dockerfile")]
    if service.port:
        assert f"http://127.0.0.1:{service.port}{service.health_path}" in argv[2]
    else:  # a one-shot job: healthy while the MLflow server it logs to answers
        assert "MLFLOW_TRACKING_URI" in argv[2] and "/health" in argv[2]


@pytest.mark.parametrize("path", SERVER_IMAGES, ids=lambda p: p.name)
def test_healthcheck_passes_on_a_healthy_server(path, health_server):
    port = BY_NAME[path.name.removesuffix(".Dockerfile")].port
    assert run_healthcheck(healthcheck_argv(path), port, health_server) == 0


@pytest.mark.parametrize("path", SERVER_IMAGES, ids=lambda p: p.name)
def test_healthcheck_fails_when_nothing_answers(path):
    port = BY_NAME[path.name.removesuffix(".Dockerfile")].port
    assert run_healthcheck(healthcheck_argv(path), port, free_port()) != 0


def test_trainer_healthcheck_follows_the_tracking_server(mlflow_server, unreachable_uri):
    argv = healthcheck_argv(DOCKER_DIR / "trainer.Dockerfile")
    assert run_healthcheck(argv, env={"MLFLOW_TRACKING_URI": mlflow_server}) == 0
    assert run_healthcheck(argv, env={"MLFLOW_TRACKING_URI": unreachable_uri}) != 0


@pytest.mark.parametrize("path", DOCKERFILES, ids=IMAGES)
def test_default_command_is_the_native_command(path):
    cmds = [args for keyword, args in final_stage(path) if keyword == "CMD"]
    service = BY_NAME[path.name.removesuffix(".Dockerfile")]
    assert json.loads(cmds[-1]) == container_command(service)


@pytest.mark.parametrize("path", DOCKERFILES, ids=IMAGES)
def test_exposes_the_service_port(path):
    exposed = {args for keyword, args in final_stage(path) if keyword == "EXPOSE"}
    port = BY_NAME[path.name.removesuffix(".Dockerfile")].port
    assert exposed == ({str(port)} if port else set())


@pytest.mark.parametrize("path", DOCKERFILES, ids=IMAGES)
def test_no_index_or_registry_url(path):
    assert not re.search(r"https?://(?!127\.0\.0\.1[:/])", path.read_text())


@pytest.mark.parametrize(
    "path", [p for p in DOCKERFILES if p.stem != "mlflow"], ids=[i for i in IMAGES if i != "mlflow"]
)
def test_torch_index_is_an_optional_build_arg(path):
    """The app images take torch from requirements.txt, or from TORCH_INDEX_URL when given."""
    steps = instructions(path)
    assert ("ARG", 'TORCH_INDEX_URL=""') in steps
    install = next(args for keyword, args in steps if keyword == "RUN" and "pip install" in args)
    assert 'if [ -n "$TORCH_INDEX_URL" ]' in install
    assert '--index-url "$TORCH_INDEX_URL"' in install


def test_dockerignore_keeps_local_state_out_of_the_context():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data", ".state", ".env", "artifacts", "mlruns"} <= ignored
