"""The leaderboard's table (no Streamlit): one row per run, metrics with intervals, best marked.

Rows come from one page of ``reads.search_runs``; sorting and filtering happen in MLflow, so the
table costs the same for 10 runs or 10,000. A metric column shows ``value (low–high)`` when the
run logged the 95 % interval bounds (``common.metric_keys``), and ``★`` marks the best value of
the column on the page (highest, or lowest for losses and calibration errors) among figures that
rank like for like: runs on the same classes and, for the evaluator's test figures, evaluations
of the same test data without test-time augmentation. A test figure made otherwise (TTA, another
data folder) is marked ``†`` with why, from the run's tags (``dashboard.basis``): no file is
read per run; so is a figure of the argmax's decisions when the argmax names one class for every
test image (``dashboard.constant``, from the run's metrics: a constant's accuracy), and every
test figure of a run whose probabilities do not change with the image (``Basis.flat``).
The trainer's figures (``trainer_split``) and bookkeeping (``NOT_RANKED``: epoch_time...) get
no ``★``: they are not test figures; nor does the share of test images the model's
out-of-distribution check flags (``metric_keys.OOD_FIGURES``): better neither way; nor do the
sensitivity and specificity at each run's own threshold (``metric_keys.trade_off``). A run whose
test split shares images or patients with its training data (``dashboard.leakage``, from the
trainer's tag) is marked ``⚠`` in its row and its test figures get no ``★``: they are optimistic.
Its ``test n`` column says how many test images the evaluation's figures rest on (the evaluator's
tag, ``contract.evaluated_images``): ``–`` when not known.
Figures are written by ``readable.figure``, as the Metrics tab writes them.
"""

import math
import re
from collections.abc import Callable

import pandas as pd

from common import metric_keys
from dashboard import ood, readable
from dashboard.basis import CAVEAT as CAVEAT  # (re-exported: the marks' readers import them here)
from dashboard.basis import Basis as Basis
from dashboard.basis import basis_of as basis_of
from dashboard.basis import ranking as ranking
from dashboard.chosen_on import ChosenOn, chosen_mark, since_chosen
from dashboard.durations import duration, when
from dashboard.leakage import LEAK
from dashboard.run_tree import nest
from runs import contract

BEST = "★"
SELECTED = "▶"
TEST_N = "test n"  # how many test images the evaluation used
# The columns, in order: the run and its status, then what it scored on the test split (test n
# and the test figures, ``eval_*``) where a screen of 1366 px still shows them beside the name,
# then the other figures (training, validation), then the rest of the run's summary.
LEAD_COLUMNS = ("run", "status", TEST_N)
INFO_COLUMNS = ("model", "started", "duration", "deployable")
# Shown by default when the page has them (test-set evaluation, then validation).
DEFAULT_METRICS = (
    *(metric_keys.eval_key(name) for name in ("accuracy", "roc_auc_macro", "ece", "ood_rate")),
    "best_val_auc",
)
# Bookkeeping, not scores: no best value (a two-class run's threshold is chosen, not won).
NOT_RANKED = ("epoch", "lr", "best_epoch", "step", "epoch_time", metric_keys.eval_key("threshold"))


def direction(metric: str) -> str:
    """``"lower is better"``, ``"higher is better"`` or, for the out-of-distribution check's
    figures (``metric_keys.ood_figure``), ``"better neither way"``, for a person reading a
    chart."""
    if metric_keys.ood_figure(metric):
        return "better neither way"
    return "lower is better" if metric_keys.lower_is_better(metric) else "higher is better"


def ranked(metric: str) -> bool:
    """Whether the best value of ``metric`` means anything (not for lr, epoch..., nor any of
    the out-of-distribution check's figures, nor sensitivity or specificity at each run's own
    threshold: ``metric_keys.trade_off``)."""
    unranked = metric in NOT_RANKED or metric_keys.ood_figure(metric)
    unranked = unranked or metric_keys.trade_off(metric)
    return not unranked and not metric_keys.is_bound(metric)


def column_help(metric: str) -> str:
    """The help of ``metric``'s column: which way is better and what its marks mean, or what
    the out-of-distribution check's figure is (``ood.COLUMN_HELP``)."""
    if metric in ood.COLUMN_HELP:
        return ood.COLUMN_HELP[metric]
    if metric_keys.trade_off(metric):
        return (
            f"{direction(metric)} at one threshold, but each run is decided at its own: a run "
            "that calls more images positive has the higher sensitivity and the lower "
            f"specificity, so read it with the other column (a trade-off: no {BEST}); "
            f"{CAVEAT} or {LEAK}: see below the table"
        )
    marks = f"{BEST} best here; {CAVEAT} or {LEAK}: does not rank (see below the table)"
    return f"{direction(metric)}; {marks}"


def trainer_split(metric: str) -> str | None:
    """``training`` or ``validation`` for the trainer's figures (``train_loss``, ``val_auc``,
    ``best_val_auc``, an ensemble member's ``member2_val_loss``), None for others. They get no
    ``★``: a training figure measures the fit, a validation one the split that chose the
    epoch (often small), neither the evaluator's test split."""
    name = re.sub(r"^member\d+_", "", metric)
    if name.startswith("train_"):
        return "training"
    return "validation" if name.startswith(("val_", "best_val_")) else None


def can_deploy(run: dict) -> bool:
    """A finished run with a model logged by this pipeline's trainer (the stage tag says so):
    the leaderboard's ✓ (servable) and its "Only servable" filter, from the run's summary alone.

    Choosing checks more (``dashboard.assessment.assess``: the model's files and format), so a run
    with a model of an older format has ✓ here and is refused there, saying why.
    """
    return run["status"] == "FINISHED" and run["tags"].get(contract.STAGE_TAG) == "trained"


def why_not_deployable(run: dict) -> str:
    """Why ``can_deploy(run)`` is False, for a person."""
    stage = run["tags"].get(contract.STAGE_TAG)
    if stage == "training":  # a run of the trainer that has not logged its model
        if run["status"] == "RUNNING":
            return "still training (or its trainer died: see the run)"
        if run["status"] == "KILLED":  # a session cut short, or a trainer found dead
            return "stopped before its model was logged (continue it with --resume)"
        return f"training {run['status'].lower()} before its model was logged"
    if stage != "trained":
        return "no model of this pipeline"
    return f"run {run['status'].lower()}"


def class_sets(rows: list[dict]) -> set[str]:
    """The different ``class_names`` the runs were trained on (runs without the param aside)."""
    return {r["params"]["class_names"] for r in rows if r["params"].get("class_names")}


def comparable(rows: list[dict]) -> bool:
    """Whether the runs predict the same classes, so that a best value (★) means something: an
    accuracy on two classes and one on three are not better or worse than each other."""
    return len(class_sets(rows)) <= 1


def evaluation_data(bases: list[Basis]) -> set[str]:
    """The different test data (hashes) that the evaluations that rank were made on."""
    ranks = ranking(bases)
    return {b.dataset_hash for b, r in zip(bases, ranks, strict=True) if r and b.dataset_hash}


def metric_columns(rows: list[dict]) -> list[str]:
    """Every metric of the page's runs that can be a column (interval bounds are folded in)."""
    keys = {k for r in rows for k in r["metrics"]}
    return sorted(k for k in keys if not metric_keys.is_bound(k))


def default_columns(rows: list[dict]) -> list[str]:
    available = set(metric_columns(rows))
    chosen = [m for m in DEFAULT_METRICS if m in available]
    if chosen:
        return chosen
    return sorted(available)[:4]


def format_value(metrics: dict[str, float], key: str) -> str:
    """``0.893 (0.834–0.933)`` with the 95 % interval when logged, ``0.893`` without, ``–``:
    ``readable.figure``, as the Metrics tab writes the same number."""
    text = readable.figure(metrics.get(key))
    if text != "–" and (bounds := metric_keys.interval(metrics, key)):
        low, high = (readable.figure(b, readable.BOUND_DIGITS) for b in bounds)
        text += f" ({low}–{high})"
    return text


def best_index(values: list[float | None], metric: str) -> set[int]:
    """Positions of the best value in ``values`` (ties all marked; none when fewer than 2)."""
    present = [(i, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    if len(present) < 2 or not ranked(metric):
        return set()
    pick = min if metric_keys.lower_is_better(metric) else max
    best = pick(v for _, v in present)
    if all(v == best for _, v in present):
        return set()
    return {i for i, v in present if v == best}


def star_rows(rows: list[dict], metric: str, bases: list[Basis]) -> set[int]:
    """Positions of the rows whose ``metric`` gets ``★``: the best among the figures that rank
    like for like. None when the runs predict other classes (``comparable``) and for the
    trainer's figures (``trainer_split``); a test figure (``eval_*``) ranks only among
    evaluations without a caveat, of one test data."""
    if not comparable(rows) or trainer_split(metric):
        return set()
    values = [r["metrics"].get(metric) for r in rows]
    if not metric.startswith(metric_keys.EVAL_PREFIX):
        return best_index(values, metric)
    figures = _with_value(rows, metric)
    if len(evaluation_data([bases[i] for i in figures])) > 1:
        return set()
    plain = [i for i, r in enumerate(run_ranks(bases)) if r and not bases[i].caveat_of(metric)]
    return {plain[j] for j in best_index([values[i] for i in plain], metric)}


def _with_value(rows: list[dict], metric: str) -> list[int]:
    """Positions of the rows with a value of ``metric`` (not a running or unevaluated run)."""
    return [i for i, r in enumerate(rows) if format_value(r["metrics"], metric) != "–"]


def run_ranks(bases: list[Basis]) -> list[bool]:
    """``ranking`` of the runs evaluated (a run without an evaluation: False), once for all
    their test figures: a run's figures rank, or are marked, alike in every column. Judged per
    column, a column that some runs have no figure in (an older evaluation's, ``eval_thr_*``)
    marked a run's figures ``⚠`` in one row and not in the next. A run with no evaluation is
    not one without copies: it must not make alike runs unalike."""
    evaluated = [i for i, b in enumerate(bases) if b.evaluated]
    out = [False] * len(bases)
    for i, rank in zip(evaluated, ranking([bases[i] for i in evaluated]), strict=True):
        out[i] = rank
    return out


def cells(rows: list[dict], metric: str, bases: list[Basis]) -> list[str]:
    """``format_value`` of each row's ``metric``, with ``★`` on the best (``star_rows``) and, on
    a test figure, the evaluation's caveat (``† tta 'both'``) or its leakage (``⚠ leakage``)."""
    best = star_rows(rows, metric, bases)
    test = metric.startswith(metric_keys.EVAL_PREFIX)
    ranks = run_ranks(bases)
    out = []
    for i, (run, basis) in enumerate(zip(rows, bases, strict=True)):
        text = format_value(run["metrics"], metric)
        if i in best:
            text += f" {BEST}"
        elif test and basis.caveat_of(metric) and text != "–":
            text += f" {basis.caveat_of(metric)}"
        elif test and basis.leakage and not ranks[i] and text != "–":
            text += f" {LEAK} leakage" + (" unknown" if basis.overlap.unknown else "")
        out.append(text)
    return out


def children_on_page(rows: list[dict], complete: bool, run: dict) -> list[dict] | None:
    """``run``'s child runs when the newest-first page ``rows`` must hold them all, else None.

    MLflow starts a nested run while its parent runs, so a child starts no earlier than its
    parent. When ``run`` is on a page of an experiment's newest runs (MLflow's default order, no
    filter) and the page reaches runs that started before it (or ``complete``: there is no
    further page), every run of the experiment that started after it is on the page, its
    children among them: the page answers what a search for them would.
    """
    if run["start_time"] is None or all(r["run_id"] != run["run_id"] for r in rows):
        return None
    oldest = rows[-1]["start_time"]
    if not complete and (oldest is None or oldest >= run["start_time"]):
        return None  # runs that started with or after it may sit on the next page
    own = run["run_id"]
    return [r for r in rows if r["parent_run_id"] == own and r["run_id"] != own]


def table(
    rows: list[dict],
    metrics: list[str],
    selected: str | None = None,
    chosen: tuple[str, str] | None = None,
    basis: Callable[[dict], Basis] | None = None,
    chosen_on: ChosenOn | None = None,
) -> pd.DataFrame:
    """The leaderboard of one page: index = run id; columns ``LEAD_COLUMNS`` (run, status, test
    n), the test figures of ``metrics`` (``eval_*``: beside the name on a narrow screen), its
    others (training, validation), then ``INFO_COLUMNS``;
    ``chosen``: ``(version, run_id)`` the alias names, marked in the ``deployable`` column
    (``chosen_mark``: ``on other figures`` when ``chosen_on``, what the version's tags record
    of the evaluation it was chosen on, is not the run's current one, ``since_chosen``);
    ``basis``: each run's ``Basis`` (default ``basis_of``, its tags: ``ranking.row_basis`` also
    reads the ``metrics.json`` of an evaluation older than those tags).

    Children come right under their parent, indented with ``↳``; the selected run is marked
    ``▶`` and a run whose test split overlaps its training data ``⚠`` (after its name, as
    ``Basis.overlap``: not a run whose figures are of another data folder's test split); each
    metric cell is one of ``cells``: ``★`` on the best value of the column among figures that
    rank like for like, ``†`` or ``⚠`` and why on a test figure that does not.
    """
    ordered = nest(rows)
    runs = [r for r, _ in ordered]
    bases = [(basis or basis_of)(r) for r in runs]
    columns: dict[str, list[str]] = {c: [] for c in (*LEAD_COLUMNS, *INFO_COLUMNS)}
    for (run, depth), basis in zip(ordered, bases, strict=True):
        name = ("   " * max(0, depth - 1) + "↳ " if depth else "") + run["run_name"]
        if basis.overlap:  # as the notes count it (not a run evaluated on other data)
            name += f" {LEAK}"
        columns["run"].append(f"{SELECTED} {name}" if run["run_id"] == selected else name)
        columns["model"].append(run["params"].get("model", "–"))
        columns["status"].append(run["status"].lower())
        columns["started"].append(when(run["start_time"]))
        columns["duration"].append(duration(run))
        deployable = "✓" if can_deploy(run) else f"✗ {why_not_deployable(run)}"
        if chosen and run["run_id"] == chosen[1]:
            differs = since_chosen(chosen_on, run["tags"]) is not None
            deployable = chosen_mark(chosen[0], differs)
        columns["deployable"].append(deployable)
        columns[TEST_N].append("–" if basis.n_test is None else str(basis.n_test))
    test = [m for m in metrics if m.startswith(metric_keys.EVAL_PREFIX)]
    for metric in [*test, *(m for m in metrics if m not in test)]:
        columns[metric] = cells(runs, metric, bases)
    order = [*LEAD_COLUMNS, *test, *(m for m in metrics if m not in test), *INFO_COLUMNS]
    columns = {c: columns[c] for c in order}
    # Built whole: adding the metric columns one by one cost a pandas insert each.
    index = pd.Index([r["run_id"] for r, _ in ordered], name="run_id")
    return pd.DataFrame(columns, index=index)


def sort_options(metrics: list[str]) -> dict[str, str]:
    """Label → MLflow ``order_by`` field for the sort picker."""
    options = {"started": "attributes.start_time", "name": "attributes.run_name"}
    options |= {m: f"metrics.`{m}`" for m in metrics}
    return options
