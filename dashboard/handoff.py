"""What a choice hands over, read before the alias moves: where the evaluation figures come from
and whether clients of the alias would receive other classes, channels or decisions, refusals
of images that were served (input size, DICOM modalities), or no out-of-distribution flags;
and the summary of its figures that the version carries (``evaluation_summary``)."""

import functools
import logging
from dataclasses import dataclass

import mlflow
import requests
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from common import InvalidInput, NotFound, ServiceUnavailable, Settings, metric_keys
from dashboard import readable
from runs import (
    FORMAT_KEY,
    UNCONFIRMED_POSITIVE,
    Interface,
    ServedRecord,
    compare_interfaces,
    confirmation,
    contract,
    dicom_inputs,
    find_logged_model,
    get_client,
    load_json_artifact,
    model_info,
    run_model_uri,
    schemas,
)
from runs import (
    last_served as last_served_record,
)


def is_evaluated(run: Run) -> bool:
    return contract.is_evaluated(run.data.tags)


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


def evaluation_caveats(
    client: MlflowClient, run: Run
) -> tuple[dict[str, str], list[str], schemas.EvaluationReport | None]:
    """Where the run's evaluation figures come from (tags for the registered version), what
    a reader of them must know (figures made with test-time augmentation, which the served model
    does not apply, or on another data folder than the run's own test split), and the report
    (``read_metrics``; None without one)."""
    if not is_evaluated(run):
        return {}, [], None
    path = contract.evaluation_dir(run.data.tags)
    report = read_metrics(client, run.info.run_id, path, run.data.params.get("data_dir"))
    return *caveats_of(path, report), report


def read_metrics(
    client: MlflowClient, run_id: str, folder: str, data_dir: str | None
) -> schemas.EvaluationReport | None:
    """The ``metrics.json`` of the run's evaluation in ``folder``, its ``own_data`` settled for
    a run whose ``data_dir`` param is ``data_dir`` (``EvaluationReport.of_run``); None when
    absent or not a report of this pipeline (then its folder is all that is known).

    Raises:
        InvalidInput: The file is not JSON.
        ServiceUnavailable: MLflow cannot be reached.
    """
    raw = load_json_artifact(client, run_id, f"{folder}/{contract.METRICS_JSON}")
    try:
        report = None if raw is None else schemas.EvaluationReport.model_validate(raw)
    except ValidationError:
        return None
    return None if report is None else report.of_run(data_dir)


def evaluation_record(tags: dict[str, str]) -> dict[str, str]:
    """Which evaluation a choice's figures are of, for its audit record: the version's
    ``evaluation_*`` tags (``caveats_of``) but the caveat, which the record keeps apart."""
    return {
        k: v for k, v in tags.items() if k.startswith("evaluation_") and k != "evaluation_caveat"
    }


def caveats_of(
    path: str, report: schemas.EvaluationReport | None
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
    # Which test images the figures are of, as the evaluation found them (a path says where, not
    # what was there): an auditor compares the hash with the data kept.
    if report.dataset_hash:
        tags["evaluation_dataset_hash"] = report.dataset_hash
    tags["evaluation_n_samples"] = str(report.n_samples)
    if report.created_at:
        tags["evaluation_created_at"] = report.created_at
    if report.data_changed:
        caveats.append(report.data_changed)
    elif report.own_data is False:
        caveats.append(
            f"the evaluation used the test split of {report.data_dir}, not the run's own data "
            "(nothing checked its images against the run's training data)"
        )
    if report.absent_note:
        caveats.append(report.absent_note)
    if report.decoding_note:
        caveats.append(report.decoding_note)
    if report.ood_note:
        caveats.append(report.ood_note)
    caveats += decision_caveats(report)
    if caveats:
        tags["evaluation_caveat"] = "; ".join(caveats)[:5000]
    return tags, caveats


def _one_class(matrix: list[list[int]], class_names: list[str]) -> tuple[str, int] | None:
    """``(class, images)`` when the confusion ``matrix`` (rows: true class) decides one class
    for every image; None otherwise (or for a matrix that does not fit ``class_names``)."""
    decided = [sum(column) for column in zip(*matrix, strict=False)]
    if sum(1 for row in matrix if sum(row)) < 2:  # a test split of one class: nothing to tell
        return None
    if decided and len(decided) == len(class_names) and max(decided) == sum(decided) > 0:
        return class_names[decided.index(max(decided))], sum(decided)
    return None


def decision_caveats(report: schemas.EvaluationReport) -> list[str]:
    """What a reader of a run's decisions must know: an argmax (``predicted_class``, the
    headline figures' rule) that names one class for every test image, and for a two-class
    run a threshold that decides one class for every test image, or that was chosen where
    one class was never (or always) found on validation (a target sensitivity met by calling
    everything positive)."""
    found = []
    if constant := _one_class(report.confusion_matrix, report.class_names):
        found.append(
            f"its argmax (`predicted_class`) names {constant[0]!r} for every one of the "
            f"{constant[1]} test images: its accuracy and balanced accuracy are a constant's"
        )
    point = report.operating_points.threshold if report.operating_points else None
    if point is None:
        return found
    if constant := _one_class(point.confusion_matrix, report.class_names):
        found.append(
            f"its threshold decides {constant[0]!r} for every one of the {constant[1]} test images"
        )
    if point.positive_chosen == UNCONFIRMED_POSITIVE:  # label 1, unconfirmed by the names
        other = next((c for c in report.class_names if c != point.positive_class), "the other")
        found.append(
            f"its threshold targets sensitivity {point.target_sensitivity} for "
            f"{point.positive_class!r}, taken as the second class (label 1) because the class "
            f"names do not say which is the finding: if the finding is {other!r}, its decision "
            f"protects the wrong class (train again with --positive-class {other!r}, or name "
            "the classes with --class-names)"
        )
    if point.val_specificity == 0:  # the target sensitivity was met by calling all positive
        on = f"{point.n_val} validation images" if point.n_val else "validation"
        found.append(
            f"its threshold was chosen on {on} where it reached specificity 0.00 (every "
            "negative called positive): train on more data, or lower --target-sensitivity"
        )
    return found


@functools.lru_cache(maxsize=64)
def interface(tracking_uri: str, model_uri: str, run_id: str | None) -> Interface:
    """What a client of the model at ``model_uri`` depends on, read from the model's MLmodel
    (the model carries it wherever it goes; a registered version outlives its run). Models
    logged before they carried their operating point: the run's ``operating_point.json``, as
    the predictor reads it. ``InvalidInput`` for a model of another kind (nothing is known)."""
    meta = model_info(model_uri).metadata or {}
    if FORMAT_KEY not in meta:
        raise InvalidInput(f"{model_uri} is not a model of this pipeline")
    pp = meta.get("preprocessing") or {}
    point = meta.get("operating_point")
    if "operating_point" not in meta and run_id:
        point = load_json_artifact(get_client(tracking_uri), run_id, contract.OPERATING_POINT_JSON)
    decision = point.get("positive_class") if isinstance(point, dict) else None
    # "modalities" recorded (even null) since the model checks its DICOM inputs
    takes, frames = dicom_inputs("modalities" in pp, pp.get("modalities"), pp.get("multi_frame"))
    # "ood_check" recorded (null: none) since models carry the check: one logged before has none
    ood = bool(meta.get("ood_check"))
    return Interface.of(pp.get("class_names", []), pp.get("channels"), pp.get("image_size"),
                        decision, takes, frames, ood)  # fmt: skip


def predictor_ready(url: str, token: str | None, timeout: float = 2.0) -> requests.Response:
    """The predictor's ``/ready`` answer (``requests.RequestException`` when it does not
    answer)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{url.rstrip('/')}/ready", headers=headers, timeout=timeout)


Served = tuple[str, str | None]  # (version, run_id) of the registered model


def predictor_serves(settings: Settings, body: object) -> Served | None:
    """``(version, run_id)`` of the registered model that a predictor's ``/ready`` ``body``
    says it serves, or None (another model or alias, such as a champion's predictor asked by
    a choice under MODEL_ALIAS=staging; none; or no answer: ``body`` None)."""
    if not isinstance(body, dict) or body.get("model_name") != settings.model_name:
        return None
    if body.get("alias", settings.model_alias) != settings.model_alias:
        return None
    return (str(body["version"]), body.get("run_id")) if body.get("version") else None


def _predictor_serves(settings: Settings) -> Served | None:
    """``predictor_serves`` of the predictor at ``PREDICTOR_URL``, asked now. A predictor that
    refuses this process's token is said (a warning of this module's logger): what it serves
    cannot be compared, and a chooser without the token would not know."""
    try:
        answer = predictor_ready(settings.predictor_url, settings.pipeline_api_token)
        body = answer.json()
    except (requests.RequestException, ValueError):
        return None
    if answer.status_code in (401, 403):  # 403: a host name without a token (its detail)
        why = "set PIPELINE_API_TOKEN as the predictor has it"
        if answer.status_code == 403 and isinstance(body, dict):
            why = str(body.get("detail", why))
        logging.getLogger(__name__).warning(
            "the predictor at %s refused the request (HTTP %s), so what it serves was not "
            "compared with this run: %s",
            settings.predictor_url, answer.status_code, why,
        )  # fmt: skip
        return None
    return predictor_serves(settings, body)


def served_now(settings: Settings, named: Served | None) -> tuple[Served | None, Served | None]:
    """``(named, what the predictor serves)``: the ``now`` of ``serving`` and
    ``interface_change`` for a caller that has read the alias itself (``named``), so that the
    check compares with the very version the caller goes on to hold against the alias."""
    return named, _predictor_serves(settings)


def serving(
    settings: Settings, now: tuple[Served | None, Served | None] | None = None
) -> list[tuple[str, str, str | None]]:
    """``(who, version, run_id)`` for each version clients receive now: the one the alias names,
    and the predictor's when it serves another (it keeps its last good version while the alias
    names none, or one it refused). ``now``: (the alias's, the predictor's) already read by the
    caller in this view; None: read them here."""
    found = []
    named, served = now if now is not None else (served_version(settings), None)
    if named is not None:
        who = f"{settings.model_name}@{settings.model_alias} now names version {named[0]}"
        found.append((who, *named))
    if now is None:
        served = _predictor_serves(settings)
    if served is not None and (named is None or served[0] != named[0]):
        who = f"the predictor at {settings.predictor_url} serves version {served[0]}"
        found.append((who, *served))
    return found


CLIENTS_BREAK = (
    "Clients that read the class names, `decision` or `out_of_distribution`, or send images it "
    "refuses, break unless they are changed first"
)
"""What an interface change means for clients, after ``Change.text`` (choice and form)."""


@dataclass(frozen=True)
class Change:
    """What choosing a run changes for clients of what is served now."""

    text: str | None
    """One paragraph for a person (None: nothing changes, or nothing is served)."""
    served: tuple[Interface, ...] = ()
    """The interfaces served now that could be read (``runs.confirmation`` records them)."""
    unknown: bool = False
    """A served version could not be read: what changes is unknown."""

    def confirmation(self, selected_at: str) -> dict[str, str]:
        """The tags of the version that confirm it, by the choice tagged ``selected_at``
        (``runs.confirmation``)."""
        return confirmation(None if self.unknown else self.served, selected_at)


def registered_uri(tracking_uri: str, run_id: str) -> str:
    """The URI of the model a choice of ``run_id`` registers: the one its training logged
    (``runs.find_logged_model``), not ``runs:/`` (the latest logged into the run)."""
    client = get_client(tracking_uri)
    logged = find_logged_model(client, client.get_run(run_id))
    return f"models:/{logged.model_id}" if logged else run_model_uri(run_id)


def interface_change(
    settings: Settings, run_id: str, now: tuple[Served | None, Served | None] | None = None
) -> Change:
    """How choosing ``run_id`` changes what clients receive (of the version the alias names,
    and of the one the predictor serves when that is another; ``now`` as for ``serving``). When
    a served version cannot be read, that is said: the change is unknown, so it needs the same
    confirmation (fail closed)."""
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)  # model_info reads MLflow's global
    uri, found, served, unknown = settings.mlflow_tracking_uri, [], [], False
    now_served = serving(settings, now)
    after = None
    for who, version, served_run in now_served:
        if served_run == run_id:
            continue
        after = after or interface(uri, registered_uri(uri, run_id), run_id)
        try:
            before = interface(uri, f"models:/{settings.model_name}/{version}", served_run)
        except (InvalidInput, NotFound) as exc:
            unknown = True
            found.append(
                f"{who}, whose classes and decision rule cannot be read ({exc}); whether this "
                "run changes what its clients receive is unknown"
            )
            continue
        served.append(before)
        if changed := compare_interfaces(before, after):
            found.append(f"{who} (run {served_run}); this run changes what its clients receive: "
                         + "; ".join(changed))  # fmt: skip
    # What the alias's predictors recorded as served, when that is neither: a predictor that
    # (re)starts compares the alias's version with it (the predictor was down or out of reach)
    record = last_served(settings)
    if record and record.run_id != run_id and record.version not in {v for _, v, _ in now_served}:
        served.append(record.interface)
        after = after or interface(uri, registered_uri(uri, run_id), run_id)
        if changed := compare_interfaces(record.interface, after):
            found.append(
                f"the predictors of {settings.model_name}@{settings.model_alias} last served "
                f"version {record.version} (run {record.run_id}) and compare with it when they "
                "start; this run changes what its clients receive: " + "; ".join(changed)
            )
    return Change("; and ".join(found) or None, tuple(served), unknown)


def last_served(settings: Settings) -> ServedRecord | None:
    """What the predictors of the alias recorded as served last (``runs.last_served``)."""
    s = settings
    return last_served_record(s.mlflow_tracking_uri, s.model_name, s.model_alias)


SUMMARY_METRICS = ("accuracy", "balanced_accuracy", "roc_auc_macro", "f1_macro", "ece")
"""Evaluation metrics copied onto the registered version as tags (with their intervals)."""


def evaluation_summary(metrics: dict[str, float]) -> str:
    """``accuracy 0.912 [0.871, 0.941]; roc_auc_macro ...`` or "not evaluated". A two-class run
    with a threshold serves its ``decision``, not the argmax those figures describe: the summary
    says so and adds each class's sensitivity at the threshold."""
    parts = (metric_keys.summary(metrics, name) for name in SUMMARY_METRICS)
    summary = "; ".join(part for part in parts if part) or "not evaluated"
    threshold = metrics.get(metric_keys.eval_key("threshold"))
    if threshold is None or summary == "not evaluated":
        return summary
    # eval_thr_sensitivity_<class>: metric_keys.summary of "thr_sensitivity_<class>" (n/a too)
    own = metric_keys.EVAL_PREFIX
    name = metric_keys.eval_key("sensitivity", at_threshold=True).removeprefix(own) + "_"
    recalls = [
        metric_keys.summary(metrics, key.removeprefix(own)).removeprefix(name)
        for key in sorted(metrics)
        if key.startswith(own + name) and not metric_keys.is_bound(key)
    ]
    if not recalls:
        return summary
    served = f"the served decision (threshold {readable.figure(threshold)})"
    return f"{summary} (argmax); {served}: sensitivity " + ", ".join(recalls)
