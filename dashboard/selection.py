"""Downloading models: a run's model and artifacts into ``ARTIFACTS_DIR/<run_id>/``, recorded.

A download is only a download: it never moves the deployment alias nor rewrites ``run_id.txt``
(that is ``dashboard.choose``). Plain Python without Streamlit.
"""

import functools
import getpass
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from common import (
    InvalidInput,
    ServiceUnavailable,
    Settings,
    atomic_replace_dir,
    atomic_write_json,
    confine,
    free_space,
    make_scratch,
    metric_keys,
    umask_mode,
)
from dashboard import handoff, leaderboard
from dashboard.constant import argmax_figure, constant_class
from jobs import STORE_ERRORS
from runs import (
    MODEL_ARTIFACT,
    contract,
    download_failure,
    get_client,
    get_run,
    outage_of,
    run_model_uri,
    schemas,
    stopped_before_model,
)

DOWNLOAD_JSON = "download.json"
"""Written beside the model in a downloaded folder: what it is (``manifest``)."""
PARTIAL = r"\..+\.partial-"  # unfinished downloads: .<run_id>.partial-<pid>-<host>-<random>
# Runs fetched when a class filter can only be approximate (MLflow's one-page maximum).
SEARCH_MAX = 1000


@dataclass(frozen=True)
class Download:
    """What one download produced."""

    run_id: str
    model_uri: str
    artifacts_path: Path
    metrics: dict[str, float]


def download_run(run_id: str, tracking_uri: str, artifacts_dir: str | Path) -> Path:
    """Download the run's model and artifacts into ``artifacts_dir/<run_id>/`` atomically.

    Everything goes to a temporary folder inside ``artifacts_dir`` first and is renamed into place
    only when complete, so a failed download leaves neither a partial folder nor a changed one.
    That folder (``PARTIAL``) names its process: one left by a download killed mid-way is removed
    by the next download there once that process is gone (``common.make_scratch``), never one a
    live download (another dashboard, the CLI) writes. The complete folder gets the umask's mode.
    The model lands in ``<run_id>/model/``, the run's other artifacts beside it, and
    ``DOWNLOAD_JSON`` says which registered versions the model is and which evaluation is current.

    Raises:
        InvalidInput: The run has no model logged as ``model``, or ``run_id`` would name a
            folder outside ``artifacts_dir`` (``common.confine``).
        ServiceUnavailable: The tracking server cannot be reached.
    """
    artifacts_dir = Path(artifacts_dir)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    destination = confine(run_id, artifacts_dir, "run_id", "ARTIFACTS_DIR")
    if destination.parent != artifacts_dir.resolve():
        raise InvalidInput(f"run_id {run_id[:80]!r} is not a run id; pick a run from the list.")
    client = get_client(tracking_uri)
    run = get_run(client, run_id)  # NotFound with a clear message for a wrong id
    tmp = make_scratch(f".{run_id}.partial-", artifacts_dir, family=PARTIAL)

    def failure(exc: Exception, what: str) -> ServiceUnavailable | None:
        if isinstance(exc, OSError) and exc.errno is not None:  # a full or read-only disk
            return ServiceUnavailable(
                f"the {what} of run {run_id} could not be written to {artifacts_dir} ({exc}; "
                f"{free_space(artifacts_dir)}); free space there or set ARTIFACTS_DIR to a "
                "writable folder."
            )
        return outage_of(tracking_uri, exc, f"download the {what} of run {run_id}")

    try:
        try:
            if client.list_artifacts(run_id):
                client.download_artifacts(run_id, "", str(tmp))
        except (MlflowException, OSError) as exc:
            if down := failure(exc, "artifacts"):
                raise down from exc
            raise
        model_dir = tmp / MODEL_ARTIFACT
        if model_dir.exists():  # an MLflow 2 style run that logged the model among artifacts
            shutil.rmtree(model_dir)
        uri = run_model_uri(run_id)  # lands in tmp/model/ (the URI's last part names it)
        try:
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(tmp), tracking_uri=tracking_uri
            )
        except (MlflowException, OSError) as exc:
            if down := failure(exc, "model"):
                raise down from exc
            # MLflow says "no model" for any failed download of runs:/ (a full disk too)
            if here := download_failure(uri, artifacts_dir, exc, tracking_uri, "ARTIFACTS_DIR"):
                raise here from exc
            if stopped := stopped_before_model(run):
                raise InvalidInput(f"run {run_id} cannot be deployed: {stopped}.") from exc
            raise InvalidInput(
                f"run {run_id} has no model logged as '{MODEL_ARTIFACT}', so it cannot be "
                "deployed; "
                "pick a run trained by `python -m trainer` (its model is runs:/<id>/model)."
            ) from exc
        atomic_write_json(tmp / DOWNLOAD_JSON, manifest(client, run_id))
        os.chmod(tmp, umask_mode())  # made 0700, as every scratch folder
        return atomic_replace_dir(tmp, destination)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def manifest(client, run_id: str) -> dict:
    """What a downloaded folder is (``DOWNLOAD_JSON``): the run, the registered versions of its
    model (with their aliases and the evaluation each was chosen on) and the run's current
    evaluation folder, read when it was downloaded: the folder itself names none of them."""
    run = get_run(client, run_id)
    tags = run.data.tags
    versions = []
    try:
        found = client.search_model_versions(f"run_id = '{run_id}'")
        # a search leaves the aliases out (MLflow 3): read each version itself
        found = [client.get_model_version(mv.name, mv.version) for mv in found]
    except MlflowException as exc:
        if down := outage_of(client.tracking_uri, exc, f"read the versions of run {run_id}"):
            raise down from exc
        # a registry that refuses (no permission, none on this server): the download stands
        found, unread = [], f"the registry could not be read: {exc.message}"
    else:
        unread = None
    for mv in sorted(found, key=lambda v: (v.name, int(v.version))):
        versions.append({
            "name": mv.name,
            "version": str(mv.version),
            "model_uri": f"models:/{mv.name}/{mv.version}",
            "aliases": sorted(mv.aliases or []),
            "evaluation_path": (mv.tags or {}).get("evaluation_path"),
        })  # fmt: skip
    evaluated = contract.is_evaluated(tags, run.data.metrics)
    return {
        "run_id": run_id,
        "experiment_id": run.info.experiment_id,
        "model_uri": run_model_uri(run_id),
        "registered_versions": None if unread else versions,
        **({"registered_versions_unread": unread} if unread else {}),
        "evaluation_path": contract.evaluation_dir(tags) if evaluated else None,
        "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def key_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics worth recording with a selection: all but per-epoch bookkeeping."""
    skip = ("lr", "epoch_time")
    return {k: float(v) for k, v in sorted(metrics.items()) if k not in skip}


def download_model(
    run_id: str, settings: Settings, store=None, selected_by: str | None = None
) -> Download:
    """Download the run and record it as ``action: download`` by ``selected_by`` (None: the OS
    user) (``store`` None: no record).

    Raises:
        ServiceUnavailable: As ``download_run``; or the folder was downloaded but its record
            could not be stored (the store down, its disk full): the message names the folder.
    """
    path = download_run(run_id, settings.mlflow_tracking_uri, settings.artifacts_dir)
    run = get_run(get_client(settings.mlflow_tracking_uri), run_id)
    metrics = key_metrics(run.data.metrics)
    if store is not None:
        record = schemas.SelectionRecord(
            run_id=run_id,
            action="download",
            model_uri=run_model_uri(run_id),
            experiment_id=run.info.experiment_id,
            metrics=metrics,
            artifacts_path=str(path.resolve()),
            selected_by=selected_by or _user(),
        )
        try:
            store.record(record)
        except STORE_ERRORS as exc:
            raise ServiceUnavailable(
                f"run {run_id} was downloaded to {path}, but the record of the download could "
                f"not be stored ({type(exc).__name__}: {exc}); check MONGO_URI (or the disk of "
                "STORE_DIR) and download the run again to record it."
            ) from exc
    return Download(run_id, run_model_uri(run_id), path, metrics)


def _same_classes(class_names: str) -> tuple[str, bool]:
    """An MLflow filter clause for runs whose ``class_names`` param is ``class_names``, and
    whether it is exact.

    MLflow's filter syntax has no escape for a quote inside a value, and the param is a JSON list
    (it holds ``"``): a class name with ``'`` is matched with ``LIKE``, ``'`` as the one-character
    wildcard, and the caller keeps the exact matches.
    """
    if "'" not in class_names:
        return f"params.class_names = '{class_names}'", True
    return f"params.class_names LIKE '{class_names.replace(chr(39), '_')}'", False


@dataclass(frozen=True)
class Ranked:
    """The best runs by a metric, best first, and how many runs were left out for having been
    evaluated on other test data than the best of them (their figures do not rank with it), or
    on a test split that shares images or patients with their training data (``leaked``: their
    figures are optimistic, ``dashboard.leakage``), or whose leakage is not known (``unknown``:
    the trainer did not check, or its tag cannot be read)."""

    run_ids: list[str]
    other_data: int = 0
    leaked: int = 0
    unknown: int = 0
    constant: int = 0
    """Runs left out of a ranking by a figure of the argmax's decisions (accuracy...) because
    their argmax names one class for every test image (``dashboard.constant``): a constant's
    accuracy is the class's share, which can top a real model's on imbalanced data."""


def top_runs(
    tracking_uri: str,
    experiment_id: str,
    metric: str,
    k: int,
    higher_is_better: bool,
    class_names: str | None = None,
) -> Ranked:
    """The ``k`` finished runs of the experiment with the best ``metric`` (one search call).

    ``class_names`` (the runs' ``class_names`` param, a JSON list) keeps the runs trained on
    those classes only: an accuracy on two classes does not rank against one on three. A test
    figure (``eval_*``) made with test-time augmentation or on another data folder than the
    run's own (``contract.basis_tags``; of a run evaluated before those tags, its
    ``metrics.json``: one read each) does not rank against the others either: left out.

    Runs evaluated on other test data than the best of them (``Basis.dataset_hash``) are left
    out too: figures of different test sets do not rank against each other. So are runs whose
    test split shares images or patients with their training data (``Basis.leakage``, from the
    trainer's tag in the search result: no file read per run), counted in ``Ranked.leaked``,
    and runs whose leakage is unknown, counted in ``Ranked.unknown``.

    Raises:
        InvalidInput: ``k`` below 1, or an unknown metric.
    """
    if k < 1:
        raise InvalidInput(f"K must be at least 1, got {k}")
    order = "DESC" if higher_is_better else "ASC"
    test_figure = metric.startswith(metric_keys.EVAL_PREFIX)
    where = f"attributes.status = 'FINISHED' and metrics.`{metric}` > -1e300"
    exact = not test_figure  # else some are left out after the search: fetch a page
    if class_names is not None:
        clause, same = _same_classes(class_names)
        where, exact = f"{where} and {clause}", exact and same
    client = get_client(tracking_uri)
    try:
        runs = client.search_runs(
            [experiment_id],
            filter_string=where,
            max_results=k if exact else SEARCH_MAX,
            order_by=[f"metrics.`{metric}` {order}"],
        )
    except MlflowException as exc:
        raise InvalidInput(f"cannot rank runs by metric {metric!r}: {exc.message}") from exc
    if class_names is not None:
        runs = [r for r in runs if r.data.params.get("class_names") == class_names]
    if test_figure:
        # the leaderboard's rules: a † caveat (tta, other data) or a ⚠ leakage does not rank
        # (judged within each test data: runs alike in their copies rank among themselves
        # beside another data set's), and figures of different test data do not rank against
        # each other
        bases = [_basis(tracking_uri, r) for r in runs]
        ranks = leaderboard.ranking(bases)
        out = [b.overlap.unknown for b, rank in zip(bases, ranks, strict=True)
               if b.caveat is None and not rank]  # fmt: skip
        plain = [(r, b) for r, b, rank in zip(runs, bases, ranks, strict=True) if rank]
        ranked_plain = len(plain)
        if argmax_figure(metric):  # before the test data is picked: a constant picks none
            plain = [(r, b) for r, b in plain if constant_class(
                {"metrics": r.data.metrics, "params": r.data.params}) is None]  # fmt: skip
        # ranked within the test data of the best plain run (evaluations from before the data
        # tags, of unknown data, count as plain and rank with it)
        data = next((b.dataset_hash for _, b in plain if b.dataset_hash), None)
        runs = [r for r, b in plain if b.dataset_hash in (None, data)]
        return Ranked(
            [r.info.run_id for r in runs[:k]],
            len(plain) - len(runs),
            leaked=sum(not unknown for unknown in out),
            unknown=sum(bool(unknown) for unknown in out),
            constant=ranked_plain - len(plain),
        )
    return Ranked([r.info.run_id for r in runs[:k]])


def _basis(tracking_uri: str, run) -> leaderboard.Basis:
    """``leaderboard.basis_of`` the run's tags; of its ``metrics.json`` when it was evaluated
    before the evaluator set those tags, as Compare reads it: whether that was of the run's own
    data is told by the folder it recorded (``EvaluationReport.of_run``)."""
    summary = {"tags": run.data.tags, "params": run.data.params, "metrics": run.data.metrics}
    if contract.basis_tags(run.data.tags) or not contract.is_evaluated(
        run.data.tags, run.data.metrics
    ):
        return leaderboard.basis_of(summary)
    folder = contract.evaluation_dir(run.data.tags)
    report = _old_report(tracking_uri, run.info.run_id, folder, run.data.params.get("data_dir"))
    return leaderboard.basis_of(summary, report)


@functools.lru_cache(maxsize=4096)
def _old_report(
    tracking_uri: str, run_id: str, folder: str, data_dir: str | None
) -> schemas.EvaluationReport | None:
    """``handoff.read_metrics`` once per process (an evaluation never changes: a new one writes
    a new folder), so a ranking over many runs evaluated before the basis tags downloads each
    file once, not at every top-K; an outage raises and is not remembered."""
    try:
        return handoff.read_metrics(get_client(tracking_uri), run_id, folder, data_dir)
    except InvalidInput:  # not JSON: not a report of this pipeline, the tags decide
        return None


def download_top(
    settings: Settings,
    experiment_id: str,
    metric: str,
    k: int,
    higher_is_better: bool = True,
    store=None,
    class_names: str | None = None,
    selected_by: str | None = None,
    ranked: Ranked | None = None,
) -> tuple[list[Download], Ranked]:
    """Download the ``k`` best runs, best first, each recorded as a download by ``selected_by``
    (None: the OS user) (``class_names``: as ``top_runs``); and the ranking (``Ranked``: how
    many runs were left out, and why). ``ranked``: the ``top_runs`` of these arguments already
    made (the page lists it before the press): its runs are the ones downloaded."""
    if ranked is None:
        ranked = top_runs(
            settings.mlflow_tracking_uri, experiment_id, metric, k, higher_is_better, class_names
        )
    if not ranked.run_ids:
        on = f" trained on {class_names}" if class_names is not None else ""
        left_out = (
            " (test figures made with --tta, on another data folder, on other test data "
            "than the best run's, or on a test split that shares images with the run's "
            "training data are not ranked)"
            if metric.startswith(metric_keys.EVAL_PREFIX)
            else ""
        )
        if ranked.leaked:
            left_out += (
                f"; {ranked.leaked} run(s) were left out because their test split shares "
                "images or patients with their training data (their test figures are "
                "optimistic)"
            )
        if ranked.unknown:
            left_out += (
                f"; {ranked.unknown} run(s) were left out because whether their test split "
                "shares images with their training data is unknown (the trainer did not check, "
                "or its tag cannot be read)"
            )
        if ranked.constant:
            left_out += (
                f"; {ranked.constant} run(s) were left out because their argmax names one class "
                f"for every test image (their {metric} is a constant's)"
            )
        raise InvalidInput(
            f"no finished run{on} of experiment {experiment_id} has the metric {metric!r}"
            f"{left_out}; choose another metric or evaluate some runs first."
        )
    downloads = [download_model(run_id, settings, store, selected_by) for run_id in ranked.run_ids]
    return downloads, ranked


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
