"""Writing the registered versions of a choice (``dashboard.choose``): a new version, or the
tags of the version that already holds the run's model when the same run is chosen again."""

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from common import ServiceUnavailable, metric_keys
from runs import DIGEST_KEY, ED25519_TAG, FILES_KEY, KEY_TAG, SIGNATURE_TAG

CHOICE_TAGS = ("reason", "evaluation", "evaluated", "run_id", "selected_by", "selected_at",
               SIGNATURE_TAG, KEY_TAG, ED25519_TAG, DIGEST_KEY, FILES_KEY)  # fmt: skip
"""Version tags of a choice besides ``evaluation_*`` (its provenance) and ``eval_*`` (figures)."""


@contextmanager
def one_choice_at_a_time(run_id_file: Path, wait_s: float = 120.0) -> Iterator[None]:
    """Hold the choice lock (``run_id.txt.lock`` beside ``run_id_file``) for the writes of one
    choice: two choices at once (two dashboard sessions, the CLI) would interleave moving the
    alias, writing ``run_id.txt`` and recording, leaving ``run_id.txt`` or the newest record
    naming a run that the alias does not. The kernel releases the lock however its holder ends.
    A folder that cannot hold it: no lock (writing ``run_id.txt`` there fails, saying so).

    Raises:
        ServiceUnavailable: Another choice held the lock for ``wait_s`` seconds.
    """
    try:
        run_id_file.parent.mkdir(parents=True, exist_ok=True)
        file = open(run_id_file.with_name(run_id_file.name + ".lock"), "a")  # noqa: SIM115
    except OSError:
        yield
        return
    with file:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(
                        f"another choice has been writing {run_id_file} for {wait_s:.0f} s; "
                        "look at the audit trail, then choose again"
                    ) from None
                time.sleep(0.1)
            except OSError:  # a file system without locks: as without a folder
                break
        yield  # closing the file releases the lock


def is_choice_tag(key: str) -> bool:
    """Whether a version tag is one that a choice writes (its reason, who and when, the
    evaluation and its figures): not the interface confirmation, nor another writer's tag."""
    return key in CHOICE_TAGS or key.startswith(("evaluation_", metric_keys.EVAL_PREFIX))


def register(
    client: MlflowClient, name: str, run_id: str, logged_model_id: str, tags: dict[str, str]
) -> ModelVersion:
    """A new version of ``name`` (created if need be) from the run's logged model, tagged
    ``tags`` and described by its reason."""
    try:
        client.create_registered_model(
            name, description="Image classifier chosen in the MLpipeline dashboard."
        )
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise ServiceUnavailable(f"MLflow failed to create model {name!r}: {exc}") from exc
    try:
        return client.create_model_version(
            name,
            source=f"models:/{logged_model_id}",
            run_id=run_id,
            tags=tags,
            description=tags["reason"],
            model_id=logged_model_id,
        )
    except MlflowException as exc:
        raise ServiceUnavailable(f"MLflow failed to register a version of {name!r}: {exc}") from exc


def retag(client: MlflowClient, version: ModelVersion, tags: dict[str, str]) -> None:
    """Make an existing version describe the choice of ``tags``: set them, delete the choice tags
    of an earlier choice that this one does not set (a caveat, or figures, of an evaluation
    since replaced), and describe it by the new reason. Tags of others and an interface
    confirmation absent from ``tags`` stay: a predictor may still need the confirmation."""
    name, number = version.name, str(version.version)
    stale = [key for key in version.tags if is_choice_tag(key) and key not in tags]
    try:
        for key, value in tags.items():
            client.set_model_version_tag(name, number, key, value)
        for key in stale:
            client.delete_model_version_tag(name, number, key)
        client.update_model_version(name, number, description=tags["reason"])
    except MlflowException as exc:
        raise ServiceUnavailable(
            f"MLflow failed to tag {name} version {number}: {exc.message}; choose it again"
        ) from exc
