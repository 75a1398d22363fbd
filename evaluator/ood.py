"""How many test images the model's out-of-distribution check flags (``mlpipeline_model.ood``).

About ``1 - quantile`` of images drawn like the validation split are flagged; a test split with
many more was collected unlike the training data (another site, device or protocol), and the
model's figures on it describe images it will flag when served.
"""

import numpy as np

from runs import OODReference, wilson_interval

MAX_LISTED = 20
"""The flagged images listed in the report, most unlike first."""


def ood_report(
    scores: np.ndarray | None, reference: OODReference | None, files: list[str]
) -> dict | None:
    """``metrics.json``'s ``out_of_distribution``: the model's check (``reference``), how many of
    the test images it flags (``scores`` above 1; ``rate``, a Wilson 95 % interval), the rate it
    expects and the most unlike ``files``; None for a model without the check."""
    if scores is None or reference is None or len(scores) == 0:
        return None
    check = reference.summary()
    flagged = scores > 1.0
    count, total = int(flagged.sum()), len(scores)
    low, high = wilson_interval(count, total)
    expected = 1.0 - float(check["quantile"])
    order = [int(i) for i in np.argsort(-scores, kind="stable") if flagged[i]][:MAX_LISTED]
    report = {
        "check": check,
        "images": total,
        "flagged": count,
        "rate": {"value": count / total, "ci_low": low, "ci_high": high, "method": "wilson"},
        "expected_rate": expected,
        "flagged_images": [
            {"file": files[i] if i < len(files) else "", "ood_score": float(scores[i])}
            for i in order
        ],
        "note": None,
    }
    if low > expected:
        report["note"] = (
            f"{count} of {total} test images ({count / total:.1%}) are unlike the training "
            f"images, more than the {expected:.1%} expected of images like the validation split: "
            "the test data differs from the training data (another site, device or protocol?); "
            "the model will flag such images when served"
        )
    return report
