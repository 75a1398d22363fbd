"""The whole pipeline as `make demo` runs it: real services on free ports, tiny data."""

from pathlib import Path

import pytest

from launcher import DASHBOARD, EVALUATOR, EXPLAINER, MLFLOW, PREDICTOR
from launcher.demo import DemoResult, Steps, choose_and_serve, ensure_data, run_pipeline
from launcher.stack import REPO_ROOT, Stack, StackConfig
from tests.conftest import free_port

TOKEN = "e2e-secret-token-0123456789abcdef"


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> tuple[Stack, DemoResult]:
    """Train, evaluate, explain and choose through the services, as `make demo` does.

    One stack for every e2e module (about 70 s to build). Tests that choose a model again move
    the alias on; each reads the version it starts from instead of assuming version 1.

    The predictor serves the chosen run (version 1) when the fixture yields; it looks at the alias
    every 2 s (``PREDICTOR_POLL_S``).

    The services run in a scratch folder (the dashboard writes ``run_id.txt`` there), not in the
    checkout; the token is set so that the APIs' authentication is on the path too.
    """
    root = tmp_path_factory.mktemp("e2e")
    (root / "dashboard").symlink_to(REPO_ROOT / "dashboard", target_is_directory=True)
    cfg = StackConfig(
        root=root,
        data_dir=root / "data",
        state_dir=root / ".state",
        log_dir=root / "logs",
        experiment="e2e",
        ports={s.name: free_port() for s in (MLFLOW, EVALUATOR, EXPLAINER, PREDICTOR, DASHBOARD)},
        env={
            "PIPELINE_API_TOKEN": TOKEN,
            "ARTIFACTS_DIR": str(root / "artifacts"),
            "PREDICTOR_POLL_S": "2",
        },
    )
    say = Steps()
    with Stack(cfg) as stack:
        ensure_data(cfg.data_dir, say, train_per_class=24, test_per_class=8, size=32, seed=1)
        stack.start(MLFLOW)
        stack.wait_healthy(MLFLOW)
        for service in (EVALUATOR, EXPLAINER, PREDICTOR, DASHBOARD):
            stack.start(service)
        train_args = ["--epochs", "2", "--ensemble", "1", "--batch-size", "32", "--no-progress",
                      "--checkpoint-dir", str(root / "checkpoints")]  # fmt: skip
        try:
            result = run_pipeline(stack, say, train_args, n_samples=2, token=TOKEN)
            choose_and_serve(stack, say, result.run_id, "e2e: the first model", TOKEN)
            stack.wait_healthy(DASHBOARD)
        except Exception:
            for log in sorted(cfg.log_dir.glob("*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
            raise
        yield stack, result


def screenshots_dir(root: Path) -> Path:
    out = root / "screenshots"
    out.mkdir(exist_ok=True)
    return out
