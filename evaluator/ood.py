"""How many test images the model's out-of-distribution check flags (``mlpipeline_model.ood``).

Images drawn like the validation split are flagged at the check's ``expected_rate`` on average.
For one model that rate is itself a draw (its threshold is the r-th smallest of n validation
distances), so under exchangeability the number of flagged test images among N follows a
beta-binomial(N, n+1−r, r) distribution (split-conformal coverage). A count that this
distribution makes improbable (``P(X ≥ count) < NOTE_P``) says the test split was collected
unlike the training data (another site, device or protocol), and the model's figures on it
describe images it will flag when served: the report notes it, and the note is a caveat of
choosing the run.
"""

import numpy as np
from scipy.stats import betabinom

from runs import OODReference, flagged, wilson_interval

MAX_LISTED = 20
"""The flagged images listed in the report, most unlike first."""
NOTE_P = 0.01
"""How improbable, for test images like the validation ones, a flagged count must be to note."""


def ood_report(
    scores: list[np.ndarray], reference: OODReference | None, files: list[str]
) -> dict | None:
    """``metrics.json``'s ``out_of_distribution``: the model's check (``reference``), how many of
    the test images it flags (``scores``: per batch, as ``runs.inference.predict`` collects
    them; ``rate``, a Wilson 95 % interval), the rate it expects, how probable so many are for
    images like the validation ones (``p_value``) and the most unlike ``files``; None for a
    model without the check."""
    if reference is None or not scores:
        return None
    values = np.concatenate(scores)
    marked = flagged(values)
    count, total = int(marked.sum()), len(values)
    low, high = wilson_interval(count, total)
    n = reference.validation_images
    r = reference.rank
    p_value = float(betabinom.sf(count - 1, total, n + 1 - r, r)) if count else 1.0
    order = [int(i) for i in np.argsort(-values, kind="stable") if marked[i]][:MAX_LISTED]
    report = {
        "check": reference.summary(),
        "images": total,
        "flagged": count,
        "rate": {"value": count / total, "ci_low": low, "ci_high": high, "method": "wilson"},
        "expected_rate": round(reference.expected_rate, 6),
        "p_value": p_value,
        "flagged_images": [{"file": _name(files, i), "ood_score": float(values[i])} for i in order],
        "note": None,
    }
    if p_value < NOTE_P:
        report["note"] = (
            f"{count} of {total} test images ({count / total:.1%}) are unlike the training "
            f"images, where about {reference.expected_rate:.1%} of images like the validation "
            f"split would be (so many: p = {p_value:.2g}): the test data differs from the "
            "training data (another site, device or protocol?), and the model will flag such "
            "images when served"
        )
    return report


def _name(files: list[str], index: int) -> str:
    """The test image's file, or ``test[i]`` for a split without files (a MedMNIST ``.npz``)."""
    return files[index] if index < len(files) and files[index] else f"test[{index}]"
