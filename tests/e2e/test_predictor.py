"""Done-when of the hand-off: train → evaluate → choose → served; choose again → served anew.

The ``pipeline`` fixture trained, evaluated and chose the first run as `make demo` does; here the
predictor answers with it, then a second run is trained and chosen while a client keeps posting
images, and the predictor switches to the new version without a failed request.
"""

import threading
import time

import requests
from mlflow.tracking import MlflowClient

from common import Settings
from jobs import SelectionStore, get_database
from launcher import MLFLOW, PREDICTOR, TRAINER
from launcher.demo import CHOOSE
from tests.e2e.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def predict(url: str, image) -> requests.Response:
    files = [("files", (image.name, image.read_bytes(), "image/png"))]
    return requests.post(f"{url}/predict", files=files, headers=AUTH, timeout=60)


def test_choice_moves_the_alias_writes_run_id_records_it_and_is_served(pipeline):
    stack, result = pipeline
    cfg = stack.config
    client = MlflowClient(cfg.url(MLFLOW))
    # make demo chose the run as version 1; the dashboard's browser test may have chosen it again.
    current = client.get_model_version_by_alias("mlpipeline-classifier", "champion")
    assert current.run_id == result.run_id
    assert client.get_model_version("mlpipeline-classifier", "1").run_id == result.run_id
    assert (cfg.root / "run_id.txt").read_text().strip() == result.run_id
    store = SelectionStore(
        get_database(Settings(_env_file=None, store_dir=cfg.state_dir / "store"))
    )
    chosen = store.recent(action="choose")
    assert [(c["run_id"], c["version"], c["alias"]) for c in (chosen[0], chosen[-1])] == [
        (result.run_id, current.version, "champion"),
        (result.run_id, "1", "champion"),
    ]
    image = sorted((cfg.data_dir / "test").rglob("*.png"))[0]
    body = predict(cfg.url(PREDICTOR), image).json()
    assert (body["version"], body["run_id"]) == (current.version, result.run_id)


def test_second_choice_is_served_within_60_s_without_a_failed_request(pipeline):
    stack, _ = pipeline
    cfg = stack.config
    url = cfg.url(PREDICTOR)
    before = (
        MlflowClient(cfg.url(MLFLOW))
        .get_model_version_by_alias("mlpipeline-classifier", "champion")
        .version
    )
    image = sorted((cfg.data_dir / "test").rglob("*.png"))[0]
    answers: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            r = predict(url, image)
            answers.append((r.status_code, r.json().get("version") if r.ok else r.text))

    train_args = ["--epochs", "1", "--ensemble", "1", "--batch-size", "32", "--no-progress",
                  "--checkpoint-dir", str(cfg.root / "checkpoints-2")]  # fmt: skip
    second = stack.run_once(TRAINER, train_args)
    loop = threading.Thread(target=client, daemon=True)
    loop.start()
    try:
        version = stack.run_once(CHOOSE, [second, "--reason", "e2e: second", "--yes-unevaluated"])
        chosen_at = time.monotonic()
        while time.monotonic() - chosen_at < 60 and (not answers or answers[-1][1] != version):
            time.sleep(0.2)
        switched_after = time.monotonic() - chosen_at
        time.sleep(1)
    finally:
        stop.set()
        loop.join(60)
    assert version == str(int(before) + 1)
    assert answers and all(status == 200 for status, _ in answers), answers[-5:]
    assert answers[-1][1] == version, f"still serving {answers[-1][1]} after {switched_after:.0f}s"
    assert [v for _, v in answers] == sorted(v for _, v in answers)
    body = predict(url, image).json()
    assert body["run_id"] == second and body["model_name"] == "mlpipeline-classifier"
    assert (cfg.root / "run_id.txt").read_text().strip() == second
