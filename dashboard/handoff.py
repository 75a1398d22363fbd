"""What a choice hands over, read before the alias moves: where the evaluation figures come from
and whether clients of the alias would receive other classes, channels or decisions."""

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from common import InvalidInput, NotFound, ServiceUnavailable, Settings
from runs import contract, get_client, load_json_artifact, load_preprocessing


def is_evaluated(run: Run) -> bool:
    return contract.is_evaluated(run.data.tags, run.data.metrics)


def served_version(settings: Settings) -> tuple[str, str] | None:
    """``(version, run_id)`` that the alias names now, or None when it names none."""
    client = get_client(settings.mlflow_tracking_uri)
    try:
        version = client.get_model_version_by_alias(settings.model_name, settings.model_alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise ServiceUnavailable(f"MLflow failed to read the alias: {exc.message}") from exc
    return str(version.version), version.run_id


def evaluation_caveats(client: MlflowClient, run: Run) -> tuple[dict[str, str], list[str]]:
    """Where the run's evaluation figures come from (tags for the registered version), and what
    a reader of them must know: figures made with test-time augmentation, which the served model
    does not apply, or on another data folder than the run's own test split."""
    if not is_evaluated(run):
        return {}, []
    path = contract.evaluation_dir(run.data.tags)
    report = load_json_artifact(client, run.info.run_id, f"{path}/{contract.METRICS_JSON}")
    tags = {"evaluation_path": path}
    if report is None:  # evaluated before metrics.json existed: nothing more is known
        return tags, []
    try:
        report = contract.EvaluationReport.model_validate(report)
    except ValidationError:  # not a report of this pipeline: its folder is all that is known
        return tags, []
    caveats = []
    if report.tta:
        tags["evaluation_tta"] = report.tta
        if report.tta != "none":
            caveats.append(
                f"the evaluation averaged flipped copies (tta {report.tta!r}), which the served "
                "model does not do: evaluate it again without --tta for its served figures"
            )
    if report.data_dir:
        tags["evaluation_data_dir"] = report.data_dir[:500]
    if report.own_data is False:
        caveats.append(
            f"the evaluation used the test split of {report.data_dir}, not the run's own data"
        )
    if caveats:
        tags["evaluation_caveat"] = "; ".join(caveats)[:5000]
    return tags, caveats


def interface(client: MlflowClient, run_id: str) -> dict:
    """What a client of the served model depends on: classes, channels and decision rule."""
    pp = load_preprocessing(client, run_id)
    point = load_json_artifact(client, run_id, contract.OPERATING_POINT_JSON)
    return {
        "classes": list(pp.class_names),
        "channels": pp.channels,
        "decision": point.get("positive_class") if isinstance(point, dict) else None,
    }


def interface_change(client: MlflowClient, settings: Settings, run_id: str) -> str | None:
    """How choosing ``run_id`` changes what clients of the alias receive (None: nothing does,
    or the alias names no version yet)."""
    current = served_version(settings)
    if current is None or current[1] == run_id:
        return None
    try:
        before = interface(client, current[1])
    except (InvalidInput, NotFound):  # the served run lost its files: nothing to compare
        return None
    after = interface(client, run_id)
    changes = []
    if before["classes"] != after["classes"]:
        changes.append(f"classes {', '.join(before['classes'])} → {', '.join(after['classes'])}")
    if before["channels"] != after["channels"]:
        changes.append(f"input channels {before['channels']} → {after['channels']}")
    if before["decision"] != after["decision"]:

        def rule(positive):
            return f"threshold for {positive!r}" if positive else "no threshold (no `decision`)"

        changes.append(f"decision {rule(before['decision'])} → {rule(after['decision'])}")
    if not changes:
        return None
    return (
        f"{settings.model_name}@{settings.model_alias} now serves version {current[0]} (run "
        f"{current[1]}); this run changes what its clients receive: " + "; ".join(changes)
    )
