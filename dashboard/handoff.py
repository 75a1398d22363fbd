"""What a choice hands over, read before the alias moves: where the evaluation figures come from
and whether clients of the alias would receive other classes, channels or decisions."""

import functools

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from common import InvalidInput, NotFound, ServiceUnavailable, Settings
from runs import MAX_UPSCALE, contract, get_client, load_json_artifact, model_info, run_model_uri


def is_evaluated(run: Run) -> bool:
    return contract.is_evaluated(run.data.tags, run.data.metrics)


def aliased_version(settings: Settings):
    """The ``ModelVersion`` the alias names now, or None when it names none."""
    client = get_client(settings.mlflow_tracking_uri)
    try:
        return client.get_model_version_by_alias(settings.model_name, settings.model_alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise ServiceUnavailable(f"MLflow failed to read the alias: {exc.message}") from exc


def served_version(settings: Settings) -> tuple[str, str] | None:
    """``(version, run_id)`` that the alias names now, or None when it names none."""
    version = aliased_version(settings)
    return None if version is None else (str(version.version), version.run_id)


def evaluation_caveats(client: MlflowClient, run: Run) -> tuple[dict[str, str], list[str]]:
    """Where the run's evaluation figures come from (tags for the registered version), and what
    a reader of them must know: figures made with test-time augmentation, which the served model
    does not apply, or on another data folder than the run's own test split."""
    if not is_evaluated(run):
        return {}, []
    path = contract.evaluation_dir(run.data.tags)
    report = load_json_artifact(client, run.info.run_id, f"{path}/{contract.METRICS_JSON}")
    try:
        report = None if report is None else contract.EvaluationReport.model_validate(report)
    except ValidationError:  # not a report of this pipeline: its folder is all that is known
        report = None
    return caveats_of(path, report)


def caveats_of(
    path: str, report: contract.EvaluationReport | None
) -> tuple[dict[str, str], list[str]]:
    """``evaluation_caveats`` of an evaluation already read (the dashboard's cached report)."""
    tags = {"evaluation_path": path}
    if report is None:  # evaluated before metrics.json existed: nothing more is known
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


@functools.lru_cache(maxsize=64)
def interface(tracking_uri: str, model_uri: str, run_id: str | None) -> dict:
    """What a client of the model at ``model_uri`` depends on: its classes, channels, input size
    and decision rule, read from the model's MLmodel (the model carries them wherever it goes;
    a registered version outlives its run). Models logged before they carried their operating
    point: the run's ``operating_point.json``, as the predictor reads it."""
    meta = model_info(model_uri).metadata or {}
    pp = meta.get("preprocessing") or {}
    point = meta.get("operating_point")
    if "operating_point" not in meta and run_id:
        point = load_json_artifact(get_client(tracking_uri), run_id, contract.OPERATING_POINT_JSON)
    return {
        "classes": [str(c) for c in pp.get("class_names", [])],
        "channels": pp.get("channels"),
        "image_size": tuple(pp.get("image_size") or (0, 0)),
        "decision": point.get("positive_class") if isinstance(point, dict) else None,
    }


def _smallest(size: tuple[int, ...]) -> str:
    return "×".join(str(-(-side // MAX_UPSCALE)) for side in size)


def _rule(positive: str | None) -> str:
    return f"threshold for {positive!r}" if positive else "no threshold (no `decision`)"


def interface_change(settings: Settings, run_id: str) -> str | None:
    """How choosing ``run_id`` changes what clients of the alias receive; None when nothing
    does or the alias names no version yet. When the served version cannot be read, that is
    said: the change is unknown, so it needs the same confirmation (fail closed)."""
    current = served_version(settings)
    if current is None or current[1] == run_id:
        return None
    version, served_run = current
    served = f"{settings.model_name}@{settings.model_alias} now serves version {version}"
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)  # model_info reads MLflow's global
    uri = settings.mlflow_tracking_uri
    after = interface(uri, run_model_uri(run_id), run_id)
    try:
        before = interface(uri, f"models:/{settings.model_name}/{version}", served_run)
    except (InvalidInput, NotFound) as exc:
        return (
            f"{served}, whose classes and decision rule cannot be read ({exc}); whether this run "
            "changes what its clients receive is unknown"
        )
    changes = []
    if before["classes"] != after["classes"]:
        changes.append(f"classes {', '.join(before['classes'])} → {', '.join(after['classes'])}")
    if before["channels"] != after["channels"]:
        changes.append(f"input channels {before['channels']} → {after['channels']}")
    if any(a > b for a, b in zip(after["image_size"], before["image_size"], strict=False)):
        changes.append(
            f"input {'×'.join(map(str, before['image_size']))} → "
            f"{'×'.join(map(str, after['image_size']))} px: images under "
            f"{_smallest(after['image_size'])} px are refused (under "
            f"{_smallest(before['image_size'])} before)"
        )
    if before["decision"] != after["decision"]:
        changes.append(f"decision {_rule(before['decision'])} → {_rule(after['decision'])}")
    if not changes:
        return None
    return f"{served} (run {served_run}); this run changes what its clients receive: " + (
        "; ".join(changes)
    )
