"""What a run's test figures were measured on (``Basis``, from its tags alone or its
``metrics.json``), and which of them rank against each other (``ranking``): the leaderboard's,
Compare's and a top-K download's rules (no Streamlit).

A figure made otherwise than by the served model on the run's own test split is marked ``†``
(``CAVEAT``) with why: test-time augmentation, another data folder, an argmax that names one
class for every test image (its decisions' figures), or probabilities that do not change with
the image (``† constant probabilities``: every test figure, from the evaluator's
``contract.EVALUATION_RANGE_TAG``; evaluations before it are not marked).
"""

from dataclasses import dataclass, field, replace

from common import metric_keys
from dashboard.constant import argmax_figure, constant_class
from dashboard.leakage import SplitOverlap, of_other_data, overlap
from dashboard.markup import code
from runs import contract, schemas

CAVEAT = "†"  # a test figure not measured like the run's served model on its own test split
FLAT = "constant probabilities"  # the caveat of a run whose output ignores its input


@dataclass(frozen=True)
class Basis:
    """What a run's evaluation figures (``eval_*``) were measured on; None: not known (no
    evaluation, or one published before the evaluator said it: taken as plain)."""

    tta: str | None = None
    own_data: bool | None = None
    dataset_hash: str | None = None
    """Of the test data evaluated (``EvaluationReport.dataset_hash``)."""
    overlap: SplitOverlap = field(default_factory=SplitOverlap)
    """What the run's own test split, when that was evaluated, shares with its training data
    (empty: nothing, or not known to; ``unknown``: its tag could not be read)."""
    evaluated: bool = True
    """Whether the run has a published evaluation (``contract.is_evaluated``): one without
    (running, or never evaluated) has no test figure and takes no part in ``notes``."""
    constant: str | None = None
    """The class its argmax names for every test image (``dashboard.constant``), or None; None
    too when ``flat`` (whose mark says more: every figure is a constant's)."""
    n_test: int | None = None
    """How many test images the evaluation used (``metrics.json``'s ``n_samples``, or its tag,
    ``contract.evaluated_images``); None: not known (an evaluation published before the tag)."""
    flat: bool = False
    """Its predicted probabilities are the same for every test image (within float noise,
    ``contract.constant_probabilities``): its AUC and figures at the threshold order noise, and
    its argmax's are a constant's. False: not so, or not known (an evaluation before the tag)."""

    @property
    def leakage(self) -> str | None:
        """Why the figures are optimistic (``SplitOverlap.why``), or None."""
        return self.overlap.why if self.overlap else None

    @property
    def caveat(self) -> str | None:
        """``† tta 'both'``, ``† other data`` (or both): why the figures are not those of the
        served model on the run's own test split; None when they are (or nothing is known)."""
        why = [f"tta {self.tta!r}"] if self.tta not in (None, "none") else []
        if self.own_data is False:
            why.append("other data")
        return f"{CAVEAT} {', '.join(why)}" if why else None

    def caveat_of(self, metric: str) -> str | None:
        """``caveat``, and of a test figure of a ``flat`` run ``† constant probabilities``, or of
        a figure of the argmax's decisions (``argmax_figure``) that its argmax names one class
        for every test image (``† constant 'nevus'``): a constant's. The out-of-distribution
        check's figures (``metric_keys.ood_figure``) are single-pass, as served, whatever the
        evaluation's tta, and of the input: only another data folder is a caveat of them."""
        if metric_keys.ood_figure(metric):
            return replace(self, tta=None).caveat
        if self.flat and metric.startswith(metric_keys.EVAL_PREFIX):
            constant = FLAT
        elif self.constant and argmax_figure(metric):
            constant = f"constant {self.constant!r}"
        else:
            return self.caveat
        return f"{self.caveat}, {constant}" if self.caveat else f"{CAVEAT} {constant}"


def ranking(bases: list[Basis]) -> list[bool]:
    """Which test figures rank against each other: those without a caveat whose test split
    shares nothing with the run's training data, and those that do when every figure without a
    caveat of the same test data (``dataset_hash``) shares the very same (runs of one data set
    that holds copies across its splits, as BreastMNIST does: equally optimistic, they rank
    among themselves, and ``notes`` says so). A run with copies of its test images among runs
    of its test data without them, or with other copies, does not rank: it would win on images
    it was trained on; nor does one whose leakage is unknown. Judged per test data (an
    evaluation of unknown data, before the data tag, joins each), among two runs or more."""
    plain = [b.caveat is None for b in bases]
    figures = [b for b, p in zip(bases, plain, strict=True) if p]
    # test data → whether its figures (with those of unknown data) share one overlap, among two
    # or more: a leaked run alone is alike with nobody (nor picks the test data top-K ranks in)
    members = {
        data: [b.overlap for b in figures if b.dataset_hash in (data, None)]
        for data in {b.dataset_hash for b in figures if b.dataset_hash} or {None}
    }
    alike = {data: len(found) > 1 and len(set(found)) == 1 for data, found in members.items()}
    out = []
    for b, p in zip(bases, plain, strict=True):
        groups = [b.dataset_hash] if b.dataset_hash else list(alike)  # (plain: in ``alike``)
        out.append(p and not b.overlap.unknown and (not b.overlap or all(map(alike.get, groups))))
    return out


def basis_of(run: dict, report: schemas.EvaluationReport | None = None) -> Basis:
    """The ``Basis`` of ``run``'s current evaluation: its ``metrics.json`` (``report``) when
    read (its ``own_data`` settled by ``EvaluationReport.of_run``), else the run's tags
    (``contract.evaluation_tags``), which a page of runs holds: an evaluation from before
    those tags has none, and counts as plain there.

    The leakage is the run's own test split's (its tags, ``dashboard.leakage``): not of figures
    of other test data (``of_other_data``, which have their own caveat)."""
    if report is not None:
        own = report.of_run((run.get("params") or {}).get("data_dir")).own_data
        basis = Basis(report.tta, own, report.dataset_hash, n_test=report.n_samples)
    else:
        tags = contract.basis_tags(run["tags"])  # {}: unknown (set for another evaluation)
        own = tags.get(contract.EVALUATION_OWN_DATA_TAG)
        basis = Basis(
            tags.get(contract.EVALUATION_TTA_TAG),
            None if own is None else own == "true",
            tags.get(contract.EVALUATION_DATA_TAG),
            n_test=contract.evaluated_images(run["tags"]),
        )
    evaluated = report is not None or contract.is_evaluated(run["tags"])
    changed = report.data_changed if report is not None else None  # (not among the tags)
    other = of_other_data(run["tags"], basis.own_data, basis.dataset_hash, changed)
    leaked = SplitOverlap() if other else overlap(run["tags"])
    flat = evaluated and contract.constant_probabilities(run["tags"])
    constant = None if flat else constant_class(run)
    return Basis(basis.tta, basis.own_data, basis.dataset_hash, leaked, evaluated, constant,
                 basis.n_test if evaluated else None, flat)  # fmt: skip


def flat_note(bases: list[Basis]) -> str | None:
    """Markdown under a table of runs' test figures when some are ``flat``: what their
    ``† constant probabilities`` means; None when none is."""
    flat = sum(b.flat and b.evaluated for b in bases)
    if not flat:
        return None
    return (
        f"{CAVEAT} {FLAT} ({flat} run(s)): the model gives every test image the same "
        f"probabilities (they spread less than {contract.CONSTANT_RANGE:g} over the test split, "
        f"tag {code(contract.EVALUATION_RANGE_TAG)}), whatever the image: its AUC and figures at "
        "the threshold order float noise, and its accuracy, sensitivity and specificity are a "
        "constant's. None of its test figures gets a ★."
    )
