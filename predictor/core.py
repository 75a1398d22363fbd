"""What the predictor does, without HTTP: follow the alias, hold the served model, predict.

``ModelHolder`` resolves ``models:/<MODEL_NAME>@<MODEL_ALIAS>`` to a version, loads that version
(never the alias itself, which may move meanwhile) off the request path, and swaps it in with one
assignment: a request takes ``holder.current`` once and finishes on that model, so a swap never
fails a request in flight and every answer names the version that computed it.
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from common import InvalidInput, PipelineError, ServiceUnavailable, Settings
from runs import check_tracking, load_classifier

log = logging.getLogger("predictor")

MAX_FILES = 256
"""Images per request; more is a 422 (split the batch)."""


@dataclass(frozen=True)
class Served:
    """One loaded version of the registered model."""

    model_name: str
    alias: str
    version: str
    run_id: str | None
    classifier: object  # mlpipeline_model.ImageClassifierModel (the model's own code)
    loaded_at: datetime

    @property
    def class_names(self) -> list[str]:
        return list(self.classifier.class_names)


def _default_loader(model_uri: str):
    return load_classifier(model_uri)


class ModelHolder:
    """The version that the alias names, loaded; refreshed by ``refresh`` (see ``poll``)."""

    def __init__(
        self, settings: Settings, loader: Callable[[str], object] = _default_loader
    ) -> None:
        self.settings = settings
        self.loader = loader
        self.current: Served | None = None
        self.problem = f"still looking up {self.alias_uri}"
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def alias_uri(self) -> str:
        return f"models:/{self.settings.model_name}@{self.settings.model_alias}"

    def _target(self) -> tuple[str, str | None]:
        """``(version, run_id)`` the alias names now."""
        s = self.settings
        check_tracking(s.mlflow_tracking_uri, timeout=5)
        try:
            mv = MlflowClient(s.mlflow_tracking_uri).get_model_version_by_alias(
                s.model_name, s.model_alias
            )
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise InvalidInput(
                    f"no version of {s.model_name} has the alias {s.model_alias!r} yet; choose a "
                    "run: python -m dashboard.choose RUN_ID --reason TEXT (or the dashboard)"
                ) from exc
            raise ServiceUnavailable(f"MLflow failed to resolve {self.alias_uri}: {exc}") from exc
        return str(mv.version), mv.run_id

    def refresh(self) -> bool:
        """Load the version the alias names if it is not the one served; True when it swapped.

        Failures keep the current model serving and are kept in ``problem``.
        """
        with self._refresh_lock:
            try:
                version, run_id = self._target()
                if self.current is not None and self.current.version == version:
                    return False
                uri = f"models:/{self.settings.model_name}/{version}"
                started = time.monotonic()
                classifier = self.loader(uri)
            except PipelineError as exc:
                self.problem = str(exc)
                log.warning("serving %s: %s", self.alias_uri, exc)
                return False
            except Exception as exc:  # a broken model must not stop the poller
                self.problem = f"loading {self.alias_uri} failed ({type(exc).__name__}: {exc})"
                log.exception("loading %s failed", self.alias_uri)
                return False
            self.current = Served(
                self.settings.model_name,
                self.settings.model_alias,
                version,
                run_id,
                classifier,
                datetime.now(UTC),
            )
            self.problem = ""
            log.info(
                "serving %s version %s (run %s), loaded in %.1fs",
                self.settings.model_name, version, run_id, time.monotonic() - started,
            )  # fmt: skip
            return True

    def poll(self) -> None:
        """Refresh now, then every ``PREDICTOR_POLL_S`` seconds until ``stop``.

        Until a model is loaded it looks every 2 s at most, so that a first choice is served soon.
        """
        while not self._stop.is_set():
            self.refresh()
            interval = self.settings.predictor_poll_s
            self._stop.wait(interval if self.current is not None else min(interval, 2.0))

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.poll, name="alias-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def serving(self) -> Served:
        """The model to answer with; ``ServiceUnavailable`` naming why when there is none."""
        served = self.current
        if served is None:
            raise ServiceUnavailable(f"no model is loaded: {self.problem}")
        return served


def decode_files(served: Served, files: Sequence[tuple[str, bytes]]) -> np.ndarray:
    """The uploaded images as the model's uint8 ``N×H×W×C``; ``InvalidInput`` naming a bad file."""
    if not files:
        raise InvalidInput("send at least one image in the multipart field 'files'")
    if len(files) > MAX_FILES:
        raise InvalidInput(f"{len(files)} images in one request; send at most {MAX_FILES}")
    images = []
    for name, data in files:
        try:
            images.append(served.classifier.decode(data))
        except ValueError as exc:
            raise InvalidInput(f"file {name!r} is not a usable image: {exc}") from exc
    return np.stack(images)


def predict(served: Served, files: Sequence[tuple[str, bytes]]) -> dict:
    """Probabilities per class and the predicted class of each file, with the model's identity."""
    probs = served.classifier.probabilities(decode_files(served, files))
    names = served.class_names
    return {
        "model_name": served.model_name,
        "alias": served.alias,
        "version": served.version,
        "run_id": served.run_id,
        "predictions": [
            {
                "file": name,
                "predicted_class": names[int(row.argmax())],
                "probabilities": dict(zip(names, map(float, row), strict=True)),
            }
            for (name, _), row in zip(files, probs, strict=True)
        ],
    }
