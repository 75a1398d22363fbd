"""`make demo`: demo data, MLflow, evaluator, explainer, predictor and dashboard; then train,
evaluate and explain the demo model through the services' APIs, choose it for deployment (the
predictor serves it), and keep serving until Ctrl-C."""

import argparse
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from common import metric_keys
from launcher.services import (
    DASHBOARD,
    EVALUATOR,
    EXPLAINER,
    MLFLOW,
    PREDICTOR,
    SERVICES,
    TRAINER,
    Service,
)
from launcher.stack import JobFailed, LaunchError, Stack, StackConfig

CHOOSE = Service("choose", ("python", "-m", "dashboard.choose"), one_shot=True)
"""Choosing a run for deployment (a command, not a service of the containers)."""

# The demo trains fewer epochs than the trainer's default (80) and one model instead of an
# ensemble of five, to show a result within minutes; its synthetic skin-lesion photographs are
# dermoscopy-like images are declared DICOM modality DMS (dermoscopy), so the served model
# refuses a CT or MR file.
DEMO_TRAIN_ARGS = ["--epochs", "12", "--ensemble", "1", "--modality", "DMS"]


@dataclass
class DemoResult:
    run_id: str
    evaluation: dict
    explanation: dict


class Steps:
    """Prints one line per step with the seconds since start."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, name: str, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {name:<10} {message}", flush=True)


def ensure_data(data_dir: Path, say: Steps, **synth_args) -> None:
    """Generate the demo dataset unless ``data_dir`` already holds a train split."""
    if (data_dir / "train").is_dir() and any((data_dir / "train").iterdir()):
        say("data", f"using the images in {data_dir}/")
        return
    from dataloader import synthesize

    synthesize(data_dir, **synth_args)
    n = sum(1 for p in data_dir.rglob("*.png"))
    say("data", f"generated a demo dataset of {n} images in {data_dir}/")


def call_service(url: str, path: str, body: dict, token: str | None, wait: int = 600) -> dict:
    """POST a job and wait for it; raise ``LaunchError`` unless it succeeds."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = requests.post(
            f"{url}{path}", params={"wait": wait}, json=body, headers=headers, timeout=wait + 30
        )
    except requests.RequestException as exc:
        raise LaunchError(f"{url}{path} did not answer: {exc}") from exc
    job = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code >= 400 or job.get("status") != "succeeded":
        detail = job.get("error") or job.get("detail") or r.text[:300]
        raise LaunchError(f"{path} failed (HTTP {r.status_code}): {detail}")
    return job


def epoch_printer(say: "Steps") -> Callable[[str], None]:
    """Pass the trainer's one line per epoch (``epoch 3/12  train loss ...``, with
    ``member 2/5`` before it in an ensemble) to ``say``."""

    def on_line(line: str) -> None:
        line = line.split("\r")[-1].strip()  # a progress bar redraws its line with \r
        if line.startswith(("epoch ", "member ")) and "val loss" in line:
            say("trainer", line)

    return on_line


def run_pipeline(
    stack: Stack, say: Steps, train_args: list[str], n_samples: int, token: str | None = None
) -> DemoResult:
    """Train, evaluate and explain through the running services."""
    cfg = stack.config
    run_id = stack.run_once(TRAINER, train_args, on_line=epoch_printer(say))
    say("trainer", f"run {run_id} (log: {stack.log_path(TRAINER)})")
    for service in (EVALUATOR, EXPLAINER):
        stack.wait_healthy(service)
    job = call_service(cfg.url(EVALUATOR), "/evaluate", {"run_id": run_id}, token)
    metrics = (job.get("result") or {}).get("metrics", {})
    summary = ", ".join(
        s for s in (metric_keys.summary(metrics, k) for k in ("accuracy", "roc_auc_macro")) if s
    )
    say("evaluator", f"evaluated: {summary or 'see the dashboard'}")
    job2 = call_service(
        cfg.url(EXPLAINER), "/explain", {"run_id": run_id, "n_samples": n_samples}, token
    )
    say("explainer", "explained: " + ", ".join((job2.get("result") or {}).get("methods", [])))
    return DemoResult(run_id, job.get("result") or {}, job2.get("result") or {})


def _ready_answer(url: str, token: str | None) -> tuple[int, dict]:
    """The status and body of the predictor's ``/ready`` at ``url`` (the dashboard's
    ``handoff.predictor_ready``, which the launcher may not import, answers the same).

    Raises:
        requests.RequestException, ValueError: no answer, or not JSON.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = requests.get(f"{url}/ready", headers=headers, timeout=5)
    return r.status_code, r.json()


def wait_serving(url: str, version: str, token: str | None, timeout: float = 120) -> dict:
    """Wait until the predictor at ``url`` serves ``version``; its ``/ready`` answer."""
    deadline = time.monotonic() + timeout
    detail = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = _ready_answer(url, token)
        except (requests.RequestException, ValueError) as exc:
            detail = str(exc)
        else:
            if status == 200 and body.get("version") == version:
                return body
            detail = body.get("detail") or f"serving version {body.get('version')}"
        time.sleep(0.5)
    raise LaunchError(f"the predictor at {url} does not serve version {version}: {detail}")


def choose_and_serve(
    stack: Stack, say: Steps, run_id: str, reason: str, token: str | None, extra=()
) -> str:
    """Choose ``run_id`` with the CLI and wait until the predictor serves it; the version."""
    version = stack.run_once(CHOOSE, [run_id, "--reason", reason, *extra])
    stack.wait_healthy(PREDICTOR)
    served = wait_serving(stack.config.url(PREDICTOR), version, token)
    say("predictor", f"serves {served['model_name']} version {version} (run {run_id})")
    return version


def choose_the_demo_run(stack: Stack, say: Steps, run_id: str, token: str | None) -> None:
    """Choose the demo's run and wait until it is served. A refused choice while the predictor
    serves a model (the alias names one of other classes or inputs, chosen by hand since the
    last demo) is said, not fatal: the predictor goes on serving that model."""
    reason = "make demo: the demo model, trained, evaluated and explained just now"
    try:
        choose_and_serve(stack, say, run_id, reason, token)
    except JobFailed as exc:
        # 2: dashboard.choose refused, or could not ask MLflow (one line); with nothing served
        # the demo failed
        if exc.code != 2 or (served := served_version(stack, token)) is None:
            raise
        say("choose", f"run {run_id} not chosen: {exc.lines[-1] if exc.lines else exc}")
        say("choose", f"the predictor serves version {served} as before; to serve the run, "
                      f"choose it with .venv/bin/python -m dashboard.choose {run_id} --reason "
                      "TEXT and the confirmation named, or in the dashboard")  # fmt: skip


def served_version(stack: Stack, token: str | None) -> str | None:
    """The version the predictor serves, None when it serves none or does not answer."""
    try:
        status, body = _ready_answer(stack.config.url(PREDICTOR), token)
    except (requests.RequestException, ValueError):
        return None
    return str(body.get("version")) if status == 200 and body.get("version") else None


SERVED = tuple(s for s in SERVICES if s.port)  # what --port may move


def _port(text: str) -> tuple[str, int]:
    """``SERVICE=PORT`` of ``--port``."""
    name, _, port = text.partition("=")
    if name not in {s.name for s in SERVED} or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"expected SERVICE=PORT with SERVICE one of {', '.join(s.name for s in SERVED)} and "
            f"a port from 1 to 65535, got {text!r}"
        )
    return name, int(port)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m launcher demo", description=__doc__)
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--state-dir", type=Path, default=Path(".state"))
    p.add_argument("--log-dir", type=Path, default=Path("logs"))
    p.add_argument("--experiment", default="demo")
    p.add_argument("--n-samples", type=int, default=8, help="images the explainer explains")
    p.add_argument("--no-serve", action="store_true", help="stop after the pipeline has run")
    p.add_argument(
        "--port",
        action="append",
        default=[],
        type=_port,
        metavar="SERVICE=PORT",
        help="another port for a service, e.g. mlflow=5100 (repeatable; services: "
        f"{', '.join(s.name for s in SERVED)})",
    )
    p.add_argument(
        "train_args",
        nargs=argparse.REMAINDER,
        help=f"trainer flags after -- (default: {' '.join(DEMO_TRAIN_ARGS)})",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    train_args = [a for a in args.train_args if a != "--"] or DEMO_TRAIN_ARGS
    root = Path.cwd()
    cfg = StackConfig(
        root=root,
        data_dir=args.data_dir.resolve(),
        state_dir=args.state_dir.resolve(),
        log_dir=args.log_dir.resolve(),
        experiment=args.experiment,
        ports=dict(args.port),
    )
    say = Steps()
    # Ctrl-C and SIGTERM both stop everything, even where SIGINT was inherited as ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with Stack(cfg) as stack:
        try:
            ensure_data(cfg.data_dir, say)
            stack.start(MLFLOW)
            stack.wait_healthy(MLFLOW)
            say("mlflow", f"{cfg.url(MLFLOW)} (state: {cfg.state_dir}/mlflow)")
            for service in (EVALUATOR, EXPLAINER, PREDICTOR, DASHBOARD):
                stack.start(service)  # they start while the model trains
            token = stack.environment().get("PIPELINE_API_TOKEN")
            result = run_pipeline(stack, say, train_args, args.n_samples, token)
            choose_the_demo_run(stack, say, result.run_id, token)
            stack.wait_healthy(DASHBOARD)
            say("dashboard", f"{cfg.url(DASHBOARD)}")
            print(
                f"\nReady. Open {cfg.url(DASHBOARD)} and pick run {result.run_id} in experiment "
                f"'{cfg.experiment}'.\n  MLflow    {cfg.url(MLFLOW)}\n"
                f"  Evaluator {cfg.url(EVALUATOR)}/docs\n  Explainer {cfg.url(EXPLAINER)}/docs\n"
                f"  Predictor {cfg.url(PREDICTOR)}/predict (POST images as multipart 'files'; "
                f"docs at {cfg.url(PREDICTOR)}/docs)\n"
                f"  Logs      {cfg.log_dir}/",
                flush=True,
            )
            if args.no_serve:
                return 0
            print("Press Ctrl-C to stop everything.", flush=True)
            while True:
                stack.check_alive()
                time.sleep(1)
        except LaunchError as exc:
            print(
                f"\nmake demo failed: {exc}\nStopping everything that was started.", file=sys.stderr
            )
            return 1
        except KeyboardInterrupt:
            print("\nStopping all services...", flush=True)
            return 0
        finally:
            stack.stop_all()
