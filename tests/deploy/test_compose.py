"""docker-compose.yml: valid against the Compose specification, the native commands, the shared
environment variables, required secrets, health checks and start order."""

import re

import pytest
import yaml

from tests.deploy.conftest import (
    BY_NAME,
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_NAMES,
    container_command,
    run_healthcheck,
    run_tool,
)

APP_SERVICES = ("evaluator", "explainer", "dashboard")
LONG_RUNNING = [s.name for s in BY_NAME.values() if not s.one_shot]


def schema_check(check_jsonschema: str, path) -> str | None:
    """None when ``path`` is valid against the Compose specification, else the checker's report."""
    result = run_tool([check_jsonschema, "--builtin-schema", "vendor.compose-spec", str(path)])
    return None if result.returncode == 0 else result.stdout + result.stderr


def test_valid_against_the_compose_specification(check_jsonschema):
    assert schema_check(check_jsonschema, COMPOSE_FILE) is None


def test_schema_check_rejects_an_unknown_key(check_jsonschema, compose, tmp_path):
    broken = dict(compose, services=dict(compose["services"]))
    broken["services"]["mongo"] = dict(compose["services"]["mongo"], restart_policy="always")
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    assert "restart_policy" in schema_check(check_jsonschema, path)


def test_every_pipeline_service_and_mongo_is_defined(compose):
    assert set(compose["services"]) == set(BY_NAME) | {"mongo"}


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_command_is_the_native_command(compose, name):
    assert compose["services"][name]["command"] == container_command(BY_NAME[name])


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_built_from_its_target_of_the_one_dockerfile(compose, name):
    service = compose["services"][name]
    build = service["build"]
    assert build["context"] == "." and build["target"] == name
    assert "dockerfile" not in build  # the default: Dockerfile at the root
    assert re.search(rf"^FROM \S+ AS {name}$", DOCKERFILE.read_text(), re.M)
    assert service["image"] == f"mlpipeline/{name}:${{IMAGE_TAG:-latest}}"


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_app_images_take_the_torch_index_and_commit_build_args(compose, name):
    args = compose["services"][name]["build"].get("args", {})
    if name == "mlflow":
        assert args == {}
    else:  # GIT_COMMIT: the commit the trainer records for runs trained in the image
        assert args == {"TORCH_INDEX_URL": "${TORCH_INDEX_URL:-}", "GIT_COMMIT": "${GIT_COMMIT:-}"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_get_every_setting(compose, name):
    env = compose["services"][name]["environment"]
    assert set(ENV_NAMES) <= set(env)
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "@mongo:27017/" in env["MONGO_URI"]  # its own user: test_mongo_auth.py
    assert env["EVALUATOR_URL"] == "http://evaluator:5006"
    assert env["EXPLAINER_URL"] == "http://explainer:5005"
    assert env["PREDICTOR_URL"] == "http://predictor:5007"  # the dashboard asks what it serves


@pytest.mark.parametrize("name", APP_SERVICES)
def test_api_token_is_required_not_defaulted(compose, name):
    token = compose["services"][name]["environment"]["PIPELINE_API_TOKEN"]
    assert re.fullmatch(r"\$\{PIPELINE_API_TOKEN:\?[^}]+\}", token), token


def test_predictor_loads_from_mlflow_and_requires_the_token(compose):
    predictor = compose["services"]["predictor"]
    assert predictor["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    token = predictor["environment"]["PIPELINE_API_TOKEN"]
    assert re.fullmatch(r"\$\{PIPELINE_API_TOKEN:\?[^}]+\}", token), token
    assert predictor["depends_on"] == {"mlflow": {"condition": "service_healthy"}}
    assert predictor["restart"] == "unless-stopped"


def test_trainer_logs_to_mlflow_without_the_api_token(compose):
    env = compose["services"]["trainer"]["environment"]
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "PIPELINE_API_TOKEN" not in env


def test_trainer_names_files_as_the_services_do(compose):
    """With FILE_NAMES=pseudonyms the trainer's dataset_stats.json must not hold patient paths."""
    env, services = compose["services"]["trainer"]["environment"], compose["services"]
    for key in ("FILE_NAMES", "PSEUDONYM_KEY"):
        assert env[key] == services["evaluator"]["environment"][key], key


@pytest.mark.parametrize("name", (*APP_SERVICES, "trainer"))
def test_data_folder_is_mounted_at_data_dir(compose, name):
    service = compose["services"][name]
    assert service["environment"]["DATA_DIR"] == "/data"
    assert "${DATA_HOST_DIR:-./data}:/data" in service["volumes"]


@pytest.mark.parametrize("name", [*LONG_RUNNING, "mongo"])
def test_long_running_services_have_a_healthcheck(compose, name):
    test = compose["services"][name]["healthcheck"]["test"]
    assert test[0] == "CMD"
    service = BY_NAME.get(name)
    if service:
        assert f"http://127.0.0.1:{service.port}{service.health_path}" in test[-1]
    else:
        assert test[1] == "mongosh" and "ping" in test[-1]


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_healthcheck_passes_on_a_healthy_server(compose, name, health_server):
    argv = compose["services"][name]["healthcheck"]["test"][1:]
    assert run_healthcheck(argv, BY_NAME[name].port, health_server) == 0


# No authentication: whoever reaches MLflow can register a model and move the alias (what code
# the predictor loads), whoever reaches the dashboard can choose models and start jobs with the
# services' token. The services reach MLflow by its service name.
THIS_HOST_ONLY = ("mlflow", "dashboard")


@pytest.mark.parametrize("name", [n for n in LONG_RUNNING if n not in THIS_HOST_ONLY])
def test_apis_are_published_as_in_make_demo_on_this_host_unless_opened(compose, name):
    """Plain HTTP: the token and patients' images cross the network in clear, and Docker's
    published ports pass the host's firewall; a TLS proxy on the host forwards to them."""
    port = BY_NAME[name].port
    assert compose["services"][name]["ports"] == [f"${{API_ADDRESS:-127.0.0.1}}:{port}:{port}"]


@pytest.mark.parametrize("name", THIS_HOST_ONLY)
def test_services_without_a_login_are_published_on_this_host_only(compose, name):
    port = BY_NAME[name].port
    assert compose["services"][name]["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_mongo_uses_mongo_7_and_a_named_volume(compose):
    mongo = compose["services"]["mongo"]
    assert mongo["image"] == "mongo:7.0.16"  # the release k8s runs
    assert "mongo-data:/data/db" in mongo["volumes"]


def test_mlflow_store_and_artifacts_are_named_volumes(compose):
    volumes = compose["services"]["mlflow"]["volumes"]
    assert volumes == ["mlflow-store:/mlflow", "mlflow-artifacts:/mlflow/artifacts"]
    assert {"mongo-data", "mlflow-store", "mlflow-artifacts"} <= set(compose["volumes"])


def test_mlflow_accepts_its_service_name_as_host(compose):
    command = compose["services"]["mlflow"]["command"]
    hosts = command[command.index("--allowed-hosts") + 1].split(",")
    assert {"mlflow", "mlflow:5000"} <= set(hosts)
    assert "--serve-artifacts" in command


def test_trainer_is_a_one_shot_job_after_mlflow(compose):
    trainer = compose["services"]["trainer"]
    assert trainer["restart"] == "no"
    assert trainer["depends_on"] == {"mlflow": {"condition": "service_healthy"}}


@pytest.mark.parametrize("name", ("evaluator", "explainer"))
def test_job_services_wait_for_healthy_mongo_and_mlflow(compose, name):
    depends = compose["services"][name]["depends_on"]
    assert depends == {
        "mongo": {"condition": "service_healthy"},
        "mlflow": {"condition": "service_healthy"},
    }


def test_dashboard_starts_after_services_and_finished_training(compose):
    depends = compose["services"]["dashboard"]["depends_on"]
    conditions = {name: dep["condition"] for name, dep in depends.items()}
    assert conditions == {
        "mongo": "service_healthy",
        "mlflow": "service_healthy",
        "evaluator": "service_healthy",
        "explainer": "service_healthy",
        # Also what lets `docker compose up --wait` accept the trainer's exit.
        "trainer": "service_completed_successfully",
    }


def test_every_depends_on_names_a_condition(compose):
    for name, service in compose["services"].items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"
            assert spec["condition"] in {"service_healthy", "service_completed_successfully"}
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in compose["services"][dependency]


def test_every_container_log_is_rotated(compose):
    """Docker's default json-file log never rotates: health checks every 10 s and a line per
    request would fill the host's disk over months."""
    for name, service in compose["services"].items():
        logging = service.get("logging") or {}
        assert logging.get("driver") == "json-file", name
        assert logging["options"]["max-size"] == "20m" and logging["options"]["max-file"] == "5"
