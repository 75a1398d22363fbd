"""Writing the registered versions of a choice (``dashboard.choose``): a new version, or the
tags of the version that already holds the run's model when the same run is chosen again."""

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from common import ServiceUnavailable, metric_keys

CHOICE_TAGS = ("reason", "evaluation", "evaluated", "run_id", "selected_by", "selected_at")
"""Version tags of a choice besides ``evaluation_*`` (its provenance) and ``eval_*`` (figures)."""


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
