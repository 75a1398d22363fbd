"""Whether a run's argmax names one class for every test image, from its summary alone.

Choosing such a run lists it as a caveat of its figures (``handoff.decision_caveats``, from the
evaluation's confusion matrix): its accuracy and balanced accuracy are a constant's. A page of
runs reads no file per run, so the leaderboard and Compare read the same from the evaluator's
per-class specificities (``eval_specificity_<class>``, of the argmax): the argmax names class
``c`` for every test image exactly when ``c``'s specificity is 0 (every image of another class
called ``c``) and every other class's is 1 (no image called that class). A test split of one
class has no specificity for it (no negatives): nothing to tell, as the choice says nothing.
"""

import json

from common import metric_keys


def _class_names(params: dict) -> list[str] | None:
    try:
        names = json.loads(params.get("class_names") or "null")
    except ValueError:
        return None
    ok = isinstance(names, list) and all(isinstance(n, str) for n in names)
    return names if ok else None


def constant_class(run: dict) -> str | None:
    """The class the run's argmax names for every test image, or None (it names two or more,
    or its metrics cannot tell: not evaluated, one class tested, an evaluation without them)."""
    metrics = run.get("metrics") or {}
    names = _class_names(run.get("params") or {})
    prefix = metric_keys.eval_key("specificity") + "_"
    if names:
        keys = {name: metric_keys.eval_key("specificity", name, among=names) for name in names}
    else:  # a run without the param: the classes its keys name
        keys = {k.removeprefix(prefix): k for k in metrics
                if k.startswith(prefix) and not metric_keys.is_bound(k)}  # fmt: skip
    values = {name: metrics.get(key) for name, key in keys.items()}
    if len(values) < 2 or any(v is None for v in values.values()):
        return None
    zero = [name for name, v in values.items() if v == 0]
    if len(zero) == 1 and all(v == 1 for name, v in values.items() if name != zero[0]):
        return zero[0]
    return None


def argmax_figure(metric: str) -> bool:
    """Whether ``metric`` is a test figure of the argmax's decisions (``eval_accuracy``,
    ``eval_sensitivity_<class>``), which a constant argmax makes a constant's; not one of its
    probabilities (``eval_roc_auc_macro``, ``eval_ece``) nor a threshold's (``eval_thr_*``)."""
    if not metric.startswith(metric_keys.EVAL_PREFIX) or metric_keys.at_threshold(metric):
        return False
    name = metric.removeprefix(metric_keys.EVAL_PREFIX)
    return any(
        name == figure or name.startswith(figure + "_") for figure in metric_keys.ARGMAX_FIGURES
    )
