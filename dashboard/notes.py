"""What a reader of the leaderboard's and the Compare tab's test figures must know about their
marks (``★``, ``†``, ``⚠``), one sentence of Markdown each (names escaped), under the table (no
Streamlit)."""

from dashboard.leaderboard import BEST, CAVEAT, Basis, evaluation_data, ranking, run_ranks
from dashboard.leakage import LEAK
from dashboard.markup import plain


def notes(bases: list[Basis]) -> list[str]:
    """What a reader of the runs' test figures must know about their marks, one line each. The
    figures' marks are of the runs evaluated (one without a test figure changes no mark); the
    ``⚠`` notes count every run marked ``⚠`` after its name (``Basis.overlap``), evaluated or
    not, each in one of them: the caption and the rows say the same number."""
    every = bases
    bases = [b for b in bases if b.evaluated]
    found, data = [], evaluation_data(bases)
    if len(data) > 1:
        found.append(
            f"These runs were evaluated on {len(data)} different test sets (other data, test "
            "files changed between evaluations, or an evaluation made by a release before "
            "2026-12-06, which identified test data otherwise: evaluate those runs again): their "
            f"test figures do not rank against each other, so none gets a {BEST}."
        )
    if any(b.caveat for b in bases):
        found.append(
            f"{CAVEAT}: a test figure made with test-time augmentation (tta, which the served "
            "model does not do) or on another data folder than the run's own test split: it "
            f"does not rank against the others and gets no {BEST}."
        )
    if constant := [b.constant for b in bases if b.constant]:
        names = plain(", ".join(sorted(set(map(repr, constant)))))
        found.append(
            f"{CAVEAT} constant ({len(constant)} run(s)): the run's argmax (`predicted_class`) "
            f"names one class ({names}) for every test "
            "image, so its accuracy, balanced accuracy, precision, recall, sensitivity, "
            f"specificity and F1 are a constant's and get no {BEST}; its AUC and calibration "
            "(of its probabilities) still rank."
        )
    ranks = ranking(bases)
    shared = {b.overlap for b, r in zip(bases, ranks, strict=True) if r and b.overlap}
    for alike in sorted(shared, key=lambda o: o.why):  # BreastMNIST's copies across its splits
        n = sum(r and b.overlap == alike for b, r in zip(bases, ranks, strict=True))
        found.append(
            f"{LEAK} {n} run(s) here were tested on a split that shares images (exact or near "
            "duplicates) or patients with their training or validation data "
            f"({plain(alike.why)}), the very same overlap as every other run on their test "
            "data: their test figures are all optimistic, alike, so they rank among themselves; "
            "figures on data without such overlap would be lower."
        )
    ranks = run_ranks(every)
    if unknown := sum(bool(b.overlap.unknown) for b in every):
        found.append(
            f"{LEAK} leakage unknown ({unknown} run(s)): the trainer did not check the test split "
            "against train and val, or its tag cannot be read, so the test figures may be "
            f"optimistic and get no {BEST}; the Metrics tab lists what dataset_stats.json found."
        )
    leaked = [b for b, r in zip(every, ranks, strict=True)
              if b.overlap and not b.overlap.unknown and not r]  # fmt: skip
    if leaked:
        bare = sum(not b.evaluated for b in leaked)
        found.append(
            f"{LEAK} leakage ({len(leaked)} run(s)): the run's test split shares images (exact "
            "or near duplicates) or patients with its training or validation split, so its "
            f"test figures are optimistic and get no {BEST}"
            + (f" ({bare} not evaluated yet: theirs would be)" if bare else "")
            + "; the Metrics tab lists the duplicates (dataset_stats.json)."
        )
    return found
