"""The one Dockerfile: hadolint clean; the requirements installed once in a shared stage; one target
per service that only copies code, sets the non-root user, port, health check and the same
default command as `make demo`; and each target copies every package its code imports."""

import ast
import json
import re
from dataclasses import dataclass, field

import pytest

from tests.conftest import free_port
from tests.deploy.conftest import (
    BY_NAME,
    DOCKERFILE,
    ROOT,
    container_command,
    run_healthcheck,
    run_tool,
)

BASE_IMAGE = "python:3.11-slim"
APP_TARGETS = sorted(name for name in BY_NAME if name != "mlflow")
# What a service target may do beyond FROM: nothing that installs or runs anything.
TARGET_INSTRUCTIONS = {"COPY", "USER", "EXPOSE", "HEALTHCHECK", "CMD", "WORKDIR"}


@dataclass
class Stage:
    name: str
    base: str
    steps: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [args for kw, args in self.steps if kw == keyword]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def parse_stages(text: str) -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    current = None
    for keyword, args in instructions(text):
        if keyword == "FROM":
            base, _, name = args.partition(" AS ")
            assert name, f"every stage is named: FROM {args}"
            current = stages.setdefault(name.strip(), Stage(name.strip(), base.strip()))
        elif current is not None:
            current.steps.append((keyword, args))
    return stages


STAGES = parse_stages(DOCKERFILE.read_text())


def ancestry(name: str) -> list[str]:
    """``name`` and the stages it builds on, nearest first (the base image last)."""
    chain = [name]
    while chain[-1] in STAGES:
        chain.append(STAGES[chain[-1]].base)
    return chain


def packages_by_target() -> dict[str, list[str]]:
    """The `pick TARGET PACKAGE...` table of the code stage."""
    (run,) = STAGES["code"].args("RUN")
    return {m[1]: m[2].split() for m in re.finditer(r"\bpick (\w+) +([^;]+?) *(?:;|$)", run)}


PACKAGES = packages_by_target()
FIRST_PARTY = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} - {"tests"}


def imported_packages(package: str) -> set[str]:
    """First-party top-level packages that any module of ``package`` imports (lazily or not)."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found & FIRST_PARTY


def test_one_target_per_service():
    assert set(BY_NAME) <= set(STAGES)
    for name in BY_NAME:
        assert ancestry(name)[-1] == BASE_IMAGE


def test_the_per_service_dockerfiles_are_gone():
    assert not (ROOT / "docker").exists()
    assert sorted(p.name for p in ROOT.glob("*Dockerfile*")) == ["Dockerfile"]


def test_hadolint_finds_nothing(hadolint):
    result = run_tool([hadolint, "--no-color", "Dockerfile"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path, hadolint):
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")
    result = run_tool([hadolint, "--no-color", str(bad)])
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image


def test_stages_start_from_python_311_slim_or_an_earlier_stage():
    seen = set()
    for stage in STAGES.values():
        assert stage.base == BASE_IMAGE or stage.base in seen, stage.name
        seen.add(stage.name)


def test_requirements_are_installed_once_for_every_app_target():
    installs = [
        (stage.name, run)
        for stage in STAGES.values()
        for run in stage.args("RUN")
        if "pip install" in run and "-r /tmp/requirements.txt" in run
    ]
    assert [name for name, _ in installs] == ["builder"]
    assert STAGES["runtime"].args("COPY") == ["--from=builder /opt/venv /opt/venv"]
    assert not STAGES["runtime"].args("RUN")
    for name in APP_TARGETS:
        assert STAGES[name].base == "runtime", name


def test_mlflow_image_has_only_mlflow_and_its_drivers():
    assert "runtime" not in ancestry("mlflow")
    assert STAGES["mlflow"].args("COPY") == ["--from=mlflow-builder /opt/venv /opt/venv"]
    install = STAGES["mlflow-builder"].args("RUN")[-1]
    assert "grep -E '^mlflow==' /tmp/requirements.txt" in install
    assert "-c /tmp/requirements.txt" in install  # mlflow's dependencies at the pinned versions


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_target_only_copies_and_configures(name):
    used = {keyword for keyword, _ in STAGES[name].steps}
    allowed = TARGET_INSTRUCTIONS | ({"ENV"} if BY_NAME[name].env else set())  # Service.env
    assert used <= allowed, used - allowed


def workdir(name: str) -> str:
    """The working folder a target's command starts in (the last WORKDIR up its stages)."""
    for stage in ancestry(name)[:-1]:
        if STAGES[stage].args("WORKDIR"):
            return STAGES[stage].args("WORKDIR")[-1]
    return "/"


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_command_starts_where_its_code_is(name):
    """Relative paths in the commands (`streamlit run dashboard/dashboard.py`) resolve in /app."""
    assert workdir(name) == ("/mlflow" if name == "mlflow" else "/app")


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_runs_as_user_10001(name):
    users = STAGES[name].args("USER")
    # Numeric, so that Kubernetes can verify runAsNonRoot; the user the base stage creates.
    assert users == ["10001:10001"]
    created = " ".join(STAGES["base"].args("RUN"))
    assert "--gid 10001 app" in created and "--uid 10001 --gid app" in created


def healthcheck_argv(name: str) -> list[str]:
    checks = STAGES[name].args("HEALTHCHECK")
    assert len(checks) == 1 and "NONE" not in checks[0].upper()
    return json.loads(checks[0][checks[0].index("CMD") + 3 :].strip())


SERVER_TARGETS = sorted(name for name, service in BY_NAME.items() if service.port)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_healthcheck_calls_the_health_endpoint_with_python(name):
    argv = healthcheck_argv(name)
    assert argv[:2] == ["python", "-c"] and "urllib.request" in argv[2]
    service = BY_NAME[name]
    if service.port:
        assert f"http://127.0.0.1:{service.port}{service.health_path}" in argv[2]
    else:  # a one-shot job: healthy while the MLflow server it logs to answers
        assert "MLFLOW_TRACKING_URI" in argv[2] and "/health" in argv[2]


@pytest.mark.parametrize("name", SERVER_TARGETS)
def test_healthcheck_passes_on_a_healthy_server(name, health_server):
    assert run_healthcheck(healthcheck_argv(name), BY_NAME[name].port, health_server) == 0


@pytest.mark.parametrize("name", SERVER_TARGETS)
def test_healthcheck_fails_when_nothing_answers(name):
    assert run_healthcheck(healthcheck_argv(name), BY_NAME[name].port, free_port()) != 0


def test_trainer_healthcheck_follows_the_tracking_server(mlflow_server, unreachable_uri):
    argv = healthcheck_argv("trainer")
    assert run_healthcheck(argv, env={"MLFLOW_TRACKING_URI": mlflow_server}) == 0
    assert run_healthcheck(argv, env={"MLFLOW_TRACKING_URI": unreachable_uri}) != 0


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_default_command_is_the_native_command(name):
    (cmd,) = STAGES[name].args("CMD")
    assert json.loads(cmd) == container_command(BY_NAME[name])


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_exposes_the_service_port(name):
    port = BY_NAME[name].port
    assert set(STAGES[name].args("EXPOSE")) == ({str(port)} if port else set())


def test_no_index_or_registry_url():
    assert not re.search(r"https?://(?!127\.0\.0\.1[:/])", DOCKERFILE.read_text())


def test_torch_index_is_an_optional_build_arg():
    """The app images take torch from requirements.txt, or from TORCH_INDEX_URL when given."""
    builder = STAGES["builder"]
    assert builder.args("ARG") == ['TORCH_INDEX_URL=""']
    install = builder.args("RUN")[-1]
    assert 'if [ -n "$TORCH_INDEX_URL" ]' in install
    assert '--index-url "$TORCH_INDEX_URL"' in install


def test_app_images_carry_the_commit_they_are_built_from():
    """.git stays out of the context: the build argument GIT_COMMIT is the images' record of
    their code, which the trainer reads as PIPELINE_GIT_COMMIT (trainer.provenance)."""
    from trainer.provenance import COMMIT_ENV

    runtime = STAGES["runtime"]
    assert runtime.args("ARG") == ['GIT_COMMIT=""']
    assert f"{COMMIT_ENV}=$GIT_COMMIT" in runtime.args("ENV")
    assert "org.opencontainers.image.revision=$GIT_COMMIT" in runtime.args("LABEL")


# --- which code each target copies ------------------------------------------------------------


@pytest.mark.parametrize("name", APP_TARGETS)
def test_app_target_copies_its_own_selection_of_the_code(name):
    assert STAGES[name].args("COPY") == [f"--from=code /out/{name}/ /app/"]
    assert name in PACKAGES[name]


def test_every_app_target_and_only_those_has_a_package_list():
    assert sorted(PACKAGES) == APP_TARGETS


@pytest.mark.parametrize("name", APP_TARGETS)
def test_every_listed_package_is_in_the_checkout(name):
    missing = [p for p in PACKAGES[name] if not (ROOT / p / "__init__.py").is_file()]
    assert not missing, missing


@pytest.mark.parametrize("name", APP_TARGETS)
def test_target_copies_every_package_its_code_imports(name):
    """Missing packages would fail only at run time, in the container: catch them here."""
    present = set(PACKAGES[name]) & FIRST_PARTY
    for package in sorted(present):
        missing = imported_packages(package) - present
        assert not missing, f"target {name}: {package} imports {sorted(missing)}"


def test_import_scan_sees_imports_inside_functions(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("def f():\n    from trainer.cli import x\n")
    assert imported_packages("pkg") == {"trainer"}


def test_dockerignore_keeps_local_state_out_of_the_context():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data", ".state", ".env", "artifacts", "mlruns"} <= ignored
    # The code stage copies the whole context: tests, docs and deployment files stay out.
    assert {"tests", "docs", "k8s", ".github"} <= ignored
