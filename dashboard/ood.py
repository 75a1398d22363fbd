"""How the dashboard words a model's out-of-distribution check (``mlpipeline_model.ood``): the
share of test images it flags (``metrics.json``'s ``out_of_distribution``), what a run without
it is, and what the predictor's ``/ready`` says of the model it serves (``ood_check``)."""

import pandas as pd

from common import metric_keys
from dashboard.markup import code, plain
from runs import schemas

COLUMN_HELP = {
    metric_keys.eval_key(metric_keys.OOD_RATE): "share of the test images that the model's "
    "out-of-distribution check calls unlike its training images (95 % interval), read against "
    "eval_ood_expected_rate (the share expected of images like the validation ones: 1 % with "
    "the default --ood-quantile 0.99 and 99 validation images or more), far more when the test "
    "data differs from the training data. Not a quality (a check that flags nothing is no "
    "better): never ★; †: of other test data than the run's own; ⚠: the test split shares "
    "images with the training data, which lowers the share",
    metric_keys.eval_key(metric_keys.OOD_EXPECTED_RATE): "share of images like the validation "
    "ones that the model's out-of-distribution check is expected to flag (its --ood-quantile "
    "and validation size), which eval_ood_rate is read against",
}
"""The help of the leaderboard's columns of the check's figures (``metric_keys.OOD_FIGURES``)."""


def percent(share: float) -> str:
    """``0.0128`` as ``1.3 %``."""
    return f"{100 * float(share):.1f} %"


def flagged_sentence(ood: dict) -> str:
    """The evaluation's ``out_of_distribution`` in one sentence (no Markdown in it)."""
    rate = ood.get("rate") or {}
    value, low, high = (float(rate.get(k) or 0.0) for k in ("value", "ci_low", "ci_high"))
    return (
        f"{ood.get('flagged')} of {ood.get('images')} test images ({percent(value)}, 95 % CI "
        f"{percent(low)}–{percent(high)}) are flagged as unlike the training images; about "
        f"{percent(ood.get('expected_rate') or 0.0)} expected of images like the validation split"
    )


def flagged_table(ood: dict) -> pd.DataFrame:
    """The flagged test files as the evaluator wrote them, most unlike first, with their
    ``ood_score`` (above 1: flagged)."""
    rows = [
        {"File": str(f.get("file", "")), "OOD score": round(float(f.get("ood_score", 0.0)), 3)}
        for f in ood.get("flagged_images") or []
    ]
    return pd.DataFrame(rows, columns=["File", "OOD score"])


def has_check(params: dict) -> bool:
    """Whether the run's model carries the check (its training logged ``ood_threshold``)."""
    return bool(params.get("ood_threshold"))


def absent_sentence(params: dict) -> str:
    """Why an evaluation of the run says nothing of images unlike the training data (plain
    text): the evaluation predates the model's check, or the model has none."""
    if has_check(params):
        return (
            "This evaluation predates the model's out-of-distribution check: evaluate the run "
            "again to see how many test images the check flags."
        )
    if "ood_quantile" not in params:
        how = "it was trained before the check existed"
    elif float(params["ood_quantile"] or 0) == 0:
        how = "its training ran with --ood-quantile 0"
    else:  # fit_reference left it out: its training log says why (features that do not vary)
        how = "its training could not fit one; its log says why"
    return (
        f"This model carries no out-of-distribution check ({how}): nothing flags images unlike "
        "its training images."
    )


def card_line(params: dict, report: schemas.EvaluationReport | None) -> str:
    """The model card's bullet (Markdown) on the check: what the answers hold, how the threshold
    was taken, that flagged images go to a person, and the share of test images flagged."""
    if not has_check(params):
        return (
            "- No out-of-distribution check: the model answers every image, however unlike its "
            "training images, and its answers' `ood_score` and `out_of_distribution` are null; "
            "a person must judge that an image suits the model."
        )
    quantile = params.get("ood_quantile")
    taken = f"the {plain(quantile)} quantile" if quantile else "a quantile"
    ood = report.out_of_distribution if report is not None else None
    line = (
        "- Out-of-distribution check: every answer gives each image an `ood_score` (its "
        "distance to the training images over a threshold taken as "
        f"{taken} of the validation images' distances, {code(params['ood_threshold'])}"
        f"{threshold_clause((ood or {}).get('check') or {})}) and "
        "`out_of_distribution` (`ood_score` > 1). A flagged image is unlike the images the model "
        "was trained on: send it to a person rather than act on the model's answer; an image "
        "that passes is not thereby answered right."
    )
    if ood:
        line += f" On the evaluation's test images: {flagged_sentence(ood)}."
    return line


def served_clause(body: dict) -> str | None:
    """What the predictor's ``/ready`` says of the served model's check (``ood_check``), as a
    clause of its line; None for a predictor from before the field."""
    if "ood_check" not in body:
        return None
    check = body["ood_check"]
    if not check:
        return "the served model carries no out-of-distribution check (ood_score is null)"
    quantile = check.get("quantile")
    taken = f" (threshold at the {quantile} quantile of validation{threshold_clause(check)})"
    return f"it flags images unlike its training images{taken if quantile else ''}"


def threshold_clause(check: dict) -> str:
    """What the check's ``summary`` says its quantile came to (plain text, from ``; `` on): the
    share of images like the validation ones it flags (split-conformal: (n+1−r)/(n+1),
    ``expected_rate``), and, with at most quantile/(1−quantile) validation images (99 at 0.99),
    that the threshold is the largest of their distances (flagging 1/(n+1), at least
    1 − quantile); "" for a summary without those figures (a predictor from before them)."""
    n, expected = check.get("validation_images"), check.get("expected_rate")
    if not n or expected is None:
        return ""
    largest = round((n + 1) * (1 - float(expected))) >= n  # the threshold's rank r is n
    which = f"; with {n} validation images, the largest of them" if largest else ""
    return f"{which}; about {percent(expected)} of images like the validation ones flagged"
