"""Ranking runs by a metric, and downloading the best K ("Download top K"): the leaderboard's
rules of what ranks (``dashboard.leaderboard``), one MLflow search, no Streamlit."""

import dataclasses
import functools
from dataclasses import dataclass

from mlflow.exceptions import MlflowException

from common import (
    InvalidInput,
    PipelineError,
    ServiceUnavailable,
    Settings,
    metric_keys,
    printable,
)
from dashboard import handoff, leaderboard
from dashboard.constant import argmax_figure, constant_class
from dashboard.selection import Download, download_model
from runs import contract, get_client, schemas

# Runs fetched when a class filter can only be approximate (MLflow's one-page maximum).
SEARCH_MAX = 1000


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
    flat: int = 0
    """Runs left out of a ranking by any test figure because their probabilities are the same
    for every test image (``Basis.flat``): their AUC orders float noise."""


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
        InvalidInput: ``k`` below 1, an unknown metric, or one the leaderboard does not rank
            (``leaderboard.ranked``: bookkeeping such as ``lr``, interval bounds, the
            out-of-distribution check's figures, better neither way, sensitivity or specificity
            at each run's own threshold, a trade-off).
    """
    if k < 1:
        raise InvalidInput(f"K must be at least 1, got {k}")
    if not leaderboard.ranked(metric):  # the leaderboard's rule: it stars no best either
        why = "is bookkeeping or an interval bound, not a score"
        if metric_keys.ood_figure(metric):
            why = ("says how unlike the training images the test images are, not how good a "
                   "model is (better neither way)")  # fmt: skip
        elif metric_keys.trade_off(metric):
            why = ("is taken at each run's own threshold: the run that calls more images "
                   "positive has the higher sensitivity and the lower specificity (a trade-off, "
                   "not a best)")  # fmt: skip
        raise InvalidInput(f"{metric} {why}: rank by a quality figure such as eval_roc_auc_macro")
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
        ranked_some = len(plain)
        plain = [(r, b) for r, b in plain if not b.flat]  # its every test figure: noise
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
            flat=ranked_some - ranked_plain,
        )
    return Ranked([r.info.run_id for r in runs[:k]])


def _basis(tracking_uri: str, run) -> leaderboard.Basis:
    """``row_basis`` of an MLflow ``Run``."""
    summary = {"run_id": run.info.run_id, "tags": run.data.tags, "params": run.data.params,
               "metrics": run.data.metrics}  # fmt: skip
    return row_basis(tracking_uri, summary, strict=True)


def row_basis(tracking_uri: str, run: dict, strict: bool = False) -> leaderboard.Basis:
    """``leaderboard.basis_of`` a run summary (``run_id``, ``tags``, ``params``, ``metrics``):
    of its tags; of its ``metrics.json`` when it was evaluated before the evaluator set those
    tags (2026-12-05; its TTA or other-data figures would otherwise count as plain), as Compare
    reads it, once per process; whether that was of the run's own data is told by the folder it
    recorded (``EvaluationReport.of_run``). A file that cannot be read (MLflow failing) raises
    when ``strict`` (a top-K must not rank on a guess), else the tags decide for that run (a
    page shows its other rows).

    An evaluation with those tags but not its image count's (``contract.evaluated_images``:
    published between them and ``EVALUATION_N_TAG``) takes ``n_test`` from its ``metrics.json``,
    read once per process alike, unless ``strict`` (a ranking needs no count)."""
    tags = run["tags"]
    if not contract.is_evaluated(tags):
        return leaderboard.basis_of(run)
    if contract.basis_tags(tags):
        basis = leaderboard.basis_of(run)
        if basis.n_test is not None or strict:
            return basis
        report = _report(tracking_uri, run, strict)
        n_test = report.n_samples if report is not None else None
        return basis if n_test is None else dataclasses.replace(basis, n_test=n_test)
    return leaderboard.basis_of(run, _report(tracking_uri, run, strict))


def _report(tracking_uri: str, run: dict, strict: bool) -> schemas.EvaluationReport | None:
    """``_metrics_json`` of the run's current evaluation; None when absent, or when it cannot
    be read and not ``strict``."""
    folder = contract.evaluation_dir(run["tags"])
    data_dir = (run.get("params") or {}).get("data_dir")
    try:
        return _metrics_json(tracking_uri, run["run_id"], folder, data_dir)
    except PipelineError:
        if strict:
            raise
        return None


@functools.lru_cache(maxsize=4096)
def _metrics_json(
    tracking_uri: str, run_id: str, folder: str, data_dir: str | None
) -> schemas.EvaluationReport | None:
    """``handoff.read_metrics`` once per process (an evaluation never changes: a new one writes
    a new folder), so a ranking over many runs evaluated before the basis tags, or a leaderboard
    of runs evaluated before the count's tag, downloads each file once, not at every top-K or
    rerun; an outage raises and is not remembered."""
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
        if ranked.flat:
            left_out += (
                f"; {ranked.flat} run(s) were left out because their probabilities are the same "
                f"for every test image (their {metric} describes float noise)"
            )
        raise InvalidInput(
            f"no finished run{on} of experiment {experiment_id} has the metric {metric!r}"
            f"{left_out}; choose another metric or evaluate some runs first."
        )
    downloads: list[Download] = []
    for run_id in ranked.run_ids:
        try:
            downloads.append(download_model(run_id, settings, store, selected_by))
        except (PipelineError, MlflowException, OSError) as exc:
            if not downloads:
                raise
            # those stay downloaded (and recorded): say which, so that none is fetched again
            done = _done(downloads, len(ranked.run_ids), store is not None)
            if isinstance(exc, PipelineError):
                exc.args = (printable(f"{exc} ({done})"), *exc.args[1:])
                raise
            raise ServiceUnavailable(
                f"downloading run {run_id} failed ({type(exc).__name__}: {exc}); {done}"
            ) from exc
    return downloads, ranked


def _done(downloads: list[Download], of: int, recorded: bool) -> str:
    """``before it, 2 of the 5 runs were downloaded and recorded: run a (to /a), run b (to
    /b)``."""
    listing = ", ".join(f"run {d.run_id} (to {d.artifacts_path})" for d in downloads)
    what = "downloaded and recorded" if recorded else "downloaded"
    return f"before it, {len(downloads)} of the {of} runs were {what}: {listing}"
