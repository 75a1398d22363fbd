"""The GitHub Actions workflow: schema and actionlint clean, actions pinned to commit SHAs,
least-privilege permissions, the jobs and triggers the deployment needs."""

import re

import pytest
import yaml

from tests.deploy.conftest import BY_NAME, WORKFLOW_FILE, run_tool

JOBS = ("lint", "test", "build", "compose-smoke", "deploy-dev", "deploy-prod")


def steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job]["steps"]


def scripts(workflow: dict, job: str) -> str:
    return "\n".join(step.get("run", "") for step in steps(workflow, job))


def on(workflow: dict) -> dict:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    return workflow[True]


def test_valid_against_the_workflow_schema(check_jsonschema):
    result = run_tool(
        [check_jsonschema, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW_FILE)]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_nothing(actionlint):
    result = run_tool([*actionlint, str(WORKFLOW_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_an_undefined_job(actionlint, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    needs: nowhere\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo hi\n"
    )
    result = run_tool([*actionlint, str(bad)])
    assert result.returncode == 1
    assert "nowhere" in result.stdout


def test_has_the_pipeline_jobs(workflow):
    assert tuple(workflow["jobs"]) == JOBS


@pytest.mark.parametrize("job", JOBS)
def test_every_job_has_a_timeout(workflow, job):
    assert 0 < workflow["jobs"][job]["timeout-minutes"] <= 60


def test_every_action_is_pinned_to_a_commit_sha():
    uses = re.findall(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", WORKFLOW_FILE.read_text(), re.M)
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), action
        assert re.search(r"#\s*v\d+\.\d+\.\d+", comment), f"{action}: add the version as a comment"


def test_default_permissions_are_read_only(workflow):
    assert workflow["permissions"] == {"contents": "read"}


def test_only_the_production_deploy_may_request_an_oidc_token(workflow):
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        if name == "deploy-prod":
            assert granted == {"contents": "read", "id-token": "write"}
        else:
            assert "id-token" not in granted, name


def test_triggers_and_manual_environment_choice(workflow):
    triggers = on(workflow)
    assert set(triggers["push"]["branches"]) == {"main", "master", "dev"}
    assert "pull_request" in triggers
    choice = triggers["workflow_dispatch"]["inputs"]["environment"]
    assert choice["type"] == "choice"
    assert {"development", "production"} <= set(choice["options"])


def test_runs_are_grouped_by_ref(workflow):
    assert "github.ref" in workflow["concurrency"]["group"]


def test_test_job_runs_the_suite_with_coverage_against_real_mongodb_and_mlflow(workflow):
    job = workflow["jobs"]["test"]
    assert job["services"]["mongo"]["image"] == "mongo:7.0.16"  # the release k8s runs
    assert job["env"]["MONGO_URI"] == "mongodb://127.0.0.1:27017"
    assert job["env"]["REQUIRE_TOOLS"] == "1"
    script = scripts(workflow, "test")
    assert "docker run -d --name mlflow -p 5000:5000" in script
    assert steps(workflow, "test")[-1]["run"] == "make coverage"  # make test, with coverage


def test_build_job_builds_every_target(workflow):
    services = workflow["jobs"]["build"]["strategy"]["matrix"]["service"]
    assert sorted(services) == sorted(BY_NAME)
    assert 'docker build --target "${{ matrix.service }}"' in scripts(workflow, "build")


def test_every_image_is_built_from_the_one_dockerfile():
    text = WORKFLOW_FILE.read_text()
    builds = [line for line in text.splitlines() if "docker build" in line]
    assert builds and not [b for b in builds if "--file" in b or "-f " in b]
    assert "docker/" not in text
    assert "hadolint Dockerfile" in text


def test_images_are_built_with_their_commit(workflow):
    """The trainer's record of the code it ran in an image: its build argument GIT_COMMIT."""
    # a pull request's own head (the merge commit GitHub tests is gone once merged), else the push's
    commit = "${{ github.event.pull_request.head.sha || github.sha }}"
    assert workflow["env"]["GIT_COMMIT"] == commit  # compose builds read it too
    for job in ("build", "deploy-prod"):
        assert '--build-arg GIT_COMMIT="$GIT_COMMIT"' in scripts(workflow, job), job


def test_compose_smoke_test_waits_and_checks_health(workflow):
    script = scripts(workflow, "compose-smoke")
    assert "docker compose up -d --wait" in script
    for url in ("5000/health", "5006/health", "5005/health", "8501/_stcore/health", "5007/health"):
        assert url in script
    assert "5006/ready" in script and "5005/ready" in script
    assert 'curl -fsS -H "Authorization: Bearer $PIPELINE_API_TOKEN" "$url"' in script
    assert workflow["jobs"]["compose-smoke"]["env"]["PIPELINE_API_TOKEN"]


def test_development_deploys_with_compose_from_dev(workflow):
    job = workflow["jobs"]["deploy-dev"]
    assert "refs/heads/dev" in job["if"] and "'development'" in job["if"]
    assert job["environment"]["name"] == "development"
    assert job["env"]["PIPELINE_API_TOKEN"] == "${{ secrets.PIPELINE_API_TOKEN }}"
    assert "docker compose up -d" in scripts(workflow, "deploy-dev")


def test_production_deploys_to_eks_from_main(workflow):
    job = workflow["jobs"]["deploy-prod"]
    assert "refs/heads/main" in job["if"] and "refs/heads/master" in job["if"]
    assert "'production'" in job["if"]
    assert job["environment"] == "production"
    assert set(job["needs"]) == {"test", "compose-smoke"}
    script = scripts(workflow, "deploy-prod")
    assert job["env"]["SERVICES"].split() == list(BY_NAME)
    assert 'docker build --target "$svc"' in script
    assert "mlflow evaluator explainer dashboard; do" in script  # rollout status
    # and the predictor's, which a new cluster without a chosen run cannot finish (its log)
    assert "kubectl rollout status deployment/predictor" in script
    assert "has the alias .* yet; choose a run" in script
    for command in ("aws eks update-kubeconfig", "kubectl apply -k k8s/", "kubectl rollout status"):
        assert command in script
    assert any("configure-aws-credentials" in step.get("uses", "") for step in job["steps"])


def test_a_deploy_never_trains_a_manual_run_with_train_does(workflow):
    """A trainer Job created at every merge trains a new model on each (and on a new cluster
    starts before the data is on the claim): only a manual run asking for it trains."""
    applies = [s for s in steps(workflow, "deploy-prod") if "apply -k k8s/" in s.get("run", "")]
    always = [s for s in applies if "if" not in s]
    everything_else = "kubectl apply -k k8s/ -l 'app.kubernetes.io/name!=trainer'"
    assert [s["run"].strip() for s in always] == [everything_else]
    assert "delete job trainer" not in "\n".join(s["run"] for s in always)
    (training,) = [s for s in applies if "if" in s]
    assert training["if"] == "github.event_name == 'workflow_dispatch' && inputs.train"
    assert "kubectl apply -k k8s/ -l app.kubernetes.io/name=trainer" in training["run"]
    assert (
        "delete job trainer --namespace mlpipeline --ignore-not-found --cascade=foreground"
        in (training["run"])
    )  # the old pod's lock on the checkpoint folder would refuse the new trainer
    train = on(workflow)["workflow_dispatch"]["inputs"]["train"]
    assert train["type"] == "boolean" and train["default"] is False


def test_the_first_deploy_warning_matches_what_the_predictor_logs(workflow, tmp_path):
    """Reworded there, every first deploy would fail its rollout again."""
    from common import Settings
    from predictor import ModelHolder

    pattern = re.search(r'grep -q "([^"]+)"', scripts(workflow, "deploy-prod")).group(1)
    holder = ModelHolder(Settings(_env_file=None, store_dir=tmp_path), record=False)
    assert re.search(pattern, holder._no_alias(served_before=False))
    assert not re.search(pattern, holder._no_alias(served_before=True))


def test_the_pseudonym_key_reaches_the_secret_when_set(workflow):
    script = scripts(workflow, "deploy-prod")
    assert '${PSEUDONYM_KEY:+"--from-literal=PSEUDONYM_KEY=$PSEUDONYM_KEY"}' in script


def test_secrets_reach_only_the_deploy_jobs(workflow):
    for name, job in workflow["jobs"].items():
        if not name.startswith("deploy-"):
            assert "secrets." not in yaml.safe_dump(job), name
