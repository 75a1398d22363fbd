"""Predictor benchmarks, against bare inference measured side by side in this process.

* Throughput of ``POST /predict`` with batches of 32 PNG files (multipart upload, decoding,
  resizing, inference, JSON answer) against bare model inference on the same images already as
  tensors; goal: at least 0.7× the bare throughput.
* Single-image latency over HTTP, p50 and p99, against one bare single-image forward pass.
* The out-of-distribution check's cost: the logged model's ``assess`` of a batch with an
  ``OODReference`` (features, logits and Mahalanobis distances from one pass) against the same
  model without one; goal: at most 1.25× the time (ratio ≥ 0.8).

The model is an untrained SmallCNN logged in the trainer's format and chosen like a real run
(registry, alias); the predictor runs on a real uvicorn in a thread of this process.
"""

import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import requests
import torch

from benchmarks.common import Result, free_port, interleaved_best, scratch_tracking

IMAGE_SIZE = 64
BATCH = 32


def _chosen_model(tmp: Path):
    """A registered, aliased pipeline model and the PNG test images: ``(settings, files)``."""
    import mlflow

    from common import Settings
    from dashboard.choose import choose_run
    from dataloader import synthesize
    from runs import Preprocessing, build_model, log_classifier

    data = synthesize(tmp / "data", train_per_class=1, test_per_class=11, size=IMAGE_SIZE)
    uri = scratch_tracking(tmp, "bench-predictor")
    names = ["keratosis", "melanoma", "nevus"]
    pp = Preprocessing(image_size=(IMAGE_SIZE, IMAGE_SIZE), channels=3, class_names=names,
                       mean=[0.5] * 3, std=[0.25] * 3)  # fmt: skip
    with mlflow.start_run() as run:
        log_classifier(build_model("smallcnn", 3, len(names)).eval(), pp, "model")
    settings = Settings(_env_file=None, mlflow_tracking_uri=uri, store_dir=tmp / "store",
                        mongo_uri=None, run_id_file=tmp / "run_id.txt",
                        model_name=f"bench-{uuid.uuid4().hex[:6]}")  # fmt: skip
    choose_run(run.info.run_id, "benchmark", settings, allow_unevaluated=True)
    files = sorted((data / "test").rglob("*.png"))[:BATCH]
    return settings, files


class _Server:
    def __init__(self, app) -> None:
        import uvicorn

        from launcher import UVICORN_HTTP

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", http=UVICORN_HTTP[1]
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "_Server":
        self.thread.start()
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(self.url + "/ready", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the predictor did not load the chosen model within 120 s")
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def _bare(holder, files: list[Path]):
    """The served model's torch module and the files as its input tensor (decoded beforehand)."""
    classifier = holder.current.classifier
    images = np.stack([classifier.decode(p.read_bytes()) for p in files])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return classifier.model, x


def run(quick: bool = False) -> list[Result]:
    from predictor.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        settings, files = _chosen_model(Path(tmp))
        app = create_app(settings)
        with _Server(app) as server:
            session = requests.Session()
            payload = [("files", (p.name, p.read_bytes(), "image/png")) for p in files]
            model, x = _bare(app.state.holder, files)

            def served_batch() -> None:
                r = session.post(f"{server.url}/predict", files=payload, timeout=60)
                r.raise_for_status()

            def bare_batch() -> None:
                with torch.inference_mode():
                    torch.softmax(model(x), dim=1).numpy()

            repeat = 3 if quick else 20
            served_batch(), bare_batch()  # warm up
            ours, ref = interleaved_best(served_batch, bare_batch, repeat)
            throughput = Result(
                f"predictor throughput, batches of {BATCH} PNG {IMAGE_SIZE}² over HTTP vs bare "
                "inference on the same tensors",
                BATCH / ours, BATCH / ref, "images/s", "ratio ≥ 0.7",
                note="multipart upload, decode, resize, JSON included", higher_is_better=True,
            )  # fmt: skip
            one = [("files", (files[0].name, files[0].read_bytes(), "image/png"))]
            n = 20 if quick else 300
            latencies = []
            for _ in range(n):
                start = time.perf_counter()
                session.post(f"{server.url}/predict", files=one, timeout=60).raise_for_status()
                latencies.append((time.perf_counter() - start) * 1000)
            with torch.inference_mode():
                bare_one = min(
                    _timed(lambda: torch.softmax(model(x[:1]), dim=1)) for _ in range(20)
                )
            check = _check_cost(app.state.holder.current.classifier, files, repeat)
        p50, p99 = np.percentile(latencies, [50, 99])
        return [
            throughput,
            check,
            Result(f"predictor single-image latency p50 over HTTP ({n} requests)", float(p50),
                   bare_one, "ms", "reported", note="reference: one bare forward pass"),
            Result(f"predictor single-image latency p99 over HTTP ({n} requests)", float(p99),
                   bare_one, "ms", "reported", note="reference: one bare forward pass"),
        ]  # fmt: skip


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _check_cost(classifier, files: list[Path], repeat: int) -> Result:
    """``assess`` of the batch with an out-of-distribution reference against without one (the
    reference's means and precision are placeholders: the cost does not depend on their values)."""
    from runs import OODReference

    images = np.stack([classifier.decode(p.read_bytes()) for p in files])
    module = classifier.model
    with torch.inference_mode():
        [features], _ = module.features_and_logits(torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE))
    width, classes = features.shape[1], len(classifier.class_names)
    state = OODReference([np.eye(width)], [np.zeros((classes, width))], 1.0, 0.99, 1, 1).state()

    def checked() -> None:
        module.ood_reference = state
        classifier.assess(images)

    def unchecked() -> None:
        module.__dict__.pop("ood_reference", None)
        classifier.assess(images)

    checked(), unchecked()  # warm up
    ours, ref = interleaved_best(checked, unchecked, repeat)
    module.__dict__.pop("ood_reference", None)
    return Result(
        f"the logged model's assess of {BATCH} images {IMAGE_SIZE}² with the out-of-distribution "
        "check vs without", ours * 1000, ref * 1000, "ms", "ratio ≥ 0.8",
        note="one SmallCNN; the check adds a Mahalanobis distance per image and member",
    )  # fmt: skip
