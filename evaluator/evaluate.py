"""The evaluator's core: measure a trained run on its test split and write the results back.

``evaluate_run`` needs no server: it loads the run's model and ``preprocessing.json`` from MLflow,
predicts the test split in batches, computes every metric with its interval
(``evaluator.metrics``) and publishes the result whole: every file is uploaded to a new folder
``evaluation/<result id>/`` first, then one last ``log_batch`` logs the ``eval_*`` metrics and
the tags ``pipeline.evaluation.path`` (naming that folder), ``pipeline.evaluated=true`` and
what the figures were measured on (``contract.evaluation_tags``: tta, own data, test data, how
many test images, how far the probabilities spread: ``probability_range``). An upload that
fails half-way leaves the previous result current and readable.
"""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from mlflow.exceptions import MlflowException

from common import InvalidInput, ServiceUnavailable, atomic_write_json, scratch_dir
from evaluator.artifacts import flat_metrics, write_artifacts
from evaluator.metrics import compute_metrics
from evaluator.ood import ood_report
from evaluator.operating_point import operating_points
from runs import (
    check_run,
    contract,
    earlier_answer,
    get_client,
    get_run,
    inference,
    job_result_id,
    load_model,
    load_test_split,
    new_result_id,
    own_test_split,
    publish_result,
    read_operating_point,
    reference_of,
    run_data_dir,
    skipped_report,
)

log = logging.getLogger(__name__)

ARTIFACT_DIR = contract.EVALUATION_DIR

Progress = Callable[[float, str], None]
"""``progress(fraction, stage)``: how far a job is (0-1) and what it does now."""


def probability_range(probs: np.ndarray) -> float | None:
    """The largest range (max − min over the test images) of any class's predicted probability:
    0 (or float noise, under ``contract.CONSTANT_RANGE``) for a model whose output ignores its
    input, whose AUC and figures at a threshold then order noise. A range, not a count of
    distinct outputs: rounding would split noise that straddles a rounding edge. None without
    images."""
    if probs.size == 0:
        return None
    return float(np.ptp(probs.astype(np.float64), axis=0).max())


def run_job(job: dict, ctx=None, *, tracking_uri: str, data_root: Path) -> dict:
    """The job handler of the API: evaluate ``job["run_id"]`` with ``job["inputs"]``.

    ``ctx`` (a ``jobs.JobContext``) receives progress and fences the publishing step.
    """
    answer = earlier_answer(tracking_uri, job, "evaluation")
    if answer is not None:  # published before the service died: do not publish it twice
        return answer
    inputs = job["inputs"]
    return evaluate_run(
        job["run_id"],
        tracking_uri,
        data_dir=inputs["data_dir"],
        batch_size=inputs["batch_size"],
        data_root=data_root,
        tta=inputs.get("tta", "none"),
        confine=True,
        on_progress=ctx.progress if ctx is not None else None,
        before_publish=ctx.fence if ctx is not None else None,
        result_id=job_result_id(job),
    )


def evaluate_run(
    run_id: str,
    tracking_uri: str,
    data_dir: str | Path | None = None,
    batch_size: int = inference.BATCH_SIZE,
    progress: bool = False,
    data_root: Path | None = None,
    confine: bool = False,
    on_progress: Progress | None = None,
    before_publish: Callable[[], None] | None = None,
    result_id: str | None = None,
    tta: str = "none",
) -> dict:
    """Evaluate run ``run_id`` on the test split and publish the result into the run.

    Args:
        run_id: The trained run.
        tracking_uri: MLflow tracking URI.
        data_dir: Dataset folder or ``.npz``; default: the run's ``data_dir`` parameter.
        batch_size: Images per inference batch.
        progress: Show a tqdm progress bar.
        data_root: ``DATA_DIR``, against which a relative ``data_dir`` is resolved.
        confine: Refuse a ``data_dir`` outside ``data_root`` (the API sets this).
        on_progress: Called with ``(fraction, stage)`` as the evaluation goes on.
        before_publish: Called after every file is uploaded, right before the result is made
            current; raising there (a job whose lease was lost) leaves the previous one current.
        result_id: Name of the new result folder under ``evaluation/`` (default: time-based).
        tta: Test-time augmentation, one of ``runs.inference.TTA_CHOICES`` (recorded in
            ``metrics.json``).

    Returns:
        The content of ``metrics.json`` (with ``skipped``: how many test files could not be
        used and why) plus ``run_id``, ``data_dir``, ``metrics`` (the flat ``eval_*`` values
        logged to MLflow), ``artifact_path`` (the result folder), ``artifacts`` (every file
        of it, ``job_result.json`` included) and ``duration_s`` (until the files were written,
        before their upload). The same is the folder's ``job_result.json``.

    Raises:
        NotFound: Unknown run. InvalidInput: no model, preprocessing or usable test data.
        ServiceUnavailable: MLflow is unreachable.
    """
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be at least 1, got {batch_size}.")
    if tta not in inference.TTA_CHOICES:
        choices = ", ".join(inference.TTA_CHOICES)
        raise InvalidInput(f"tta must be one of {choices}, got {tta!r}.")
    started = time.perf_counter()
    report_progress = on_progress or (lambda fraction, stage: None)
    report_progress(0.01, "checking the run")
    pp, param = check_run(tracking_uri, run_id)
    client = get_client(tracking_uri)
    path = run_data_dir(run_id, data_dir, param, data_root, confine)
    report_progress(0.03, "loading the model")
    model = load_model(run_id, tracking_uri)
    report_progress(0.08, "loading the test split")
    ds = load_test_split(path, pp)
    tags = get_run(client, run_id).data.tags
    own_data, data_changed = own_test_split(tags, path, data_dir, param, data_root, confine, ds)
    y = np.asarray(ds.test.labels, dtype=np.int64)

    total = -(-len(y) // batch_size)

    def test_batches():
        for done, x in enumerate(inference.batches(ds.test.images, pp, batch_size), start=1):
            yield x
            report_progress(0.1 + 0.6 * done / total, f"predicting {done}/{total}")

    scores: list[np.ndarray] = []  # out-of-distribution scores, from the same pass
    probs = inference.predict(
        model, test_batches(), progress=progress and "evaluating", total=total, tta=tta, ood=scores
    ).numpy()
    report_progress(0.72, "computing metrics with intervals")
    names = list(pp.class_names)
    report = compute_metrics(y, probs, names)
    point = read_operating_point(client, run_id, names)
    report.update(
        run_id=run_id,
        data_dir=str(path),
        dataset_hash=ds.content_hash,
        skipped=skipped_report(ds.skipped),
        tta=tta,
        own_data=own_data,
        data_changed=data_changed,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        operating_points=operating_points(y, probs, names, point, tta),
        probability_range=probability_range(probs),
        decoding_note=pp.decoding_note,
        out_of_distribution=ood_report(scores, reference_of(model), list(ds.test.files or [])),
    )
    flat = flat_metrics(report)
    folder = f"{ARTIFACT_DIR}/{result_id or new_result_id()}"
    # patient images: a killed job's folder is removed by the next job (common.scratch_dir)
    with scratch_dir("evaluation-") as tmp:
        report_progress(0.8, "writing plots and tables")
        write_artifacts(
            Path(tmp), report, y, probs, ds.test, np.concatenate(scores) if scores else None
        )
        written = [str(p.relative_to(tmp)) for p in Path(tmp).rglob("*") if p.is_file()]
        artifacts = sorted([*written, contract.JOB_RESULT_JSON])
        report.update(
            metrics=flat,
            artifact_path=folder,
            artifacts=[f"{folder}/{a}" for a in artifacts],
            duration_s=round(time.perf_counter() - started, 3),
        )
        # The answer itself, which a retry of this job returns (``runs.earlier_answer``).
        atomic_write_json(Path(tmp) / contract.JOB_RESULT_JSON, report)
        report_progress(0.88, f"uploading {len(artifacts)} files")
        try:
            client.log_artifacts(run_id, tmp, folder)
        except (MlflowException, OSError) as exc:
            raise ServiceUnavailable(
                f"MLflow did not accept the evaluation files of run {run_id} ({exc}); the "
                "previous evaluation stays current. Check that the tracking server and its "
                "artifact store are up, then retry."
            ) from exc
    report_progress(0.97, "publishing")
    if before_publish is not None:
        before_publish()
    # with the number of test images the figures rest on (the leaderboard's "test n") and how
    # far the probabilities spread (its "† constant probabilities")
    basis = contract.evaluation_tags(tta, own_data, ds.content_hash, folder, report["n_samples"],
                                     report["probability_range"])  # fmt: skip
    publish_result(client, run_id, flat, folder, "evaluation", basis)
    return report
