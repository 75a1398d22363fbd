"""The explainer's core: explain a trained run's predictions and log the results into the run.

Works without a server: ``explain_run`` is what the API's job handler and the CLI call, and
``explain_images`` explains tensors with any ``runs.models.ImageClassifier`` (tests, notebooks).
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from mlflow.exceptions import MlflowException
from torch import nn
from tqdm import tqdm

from common import InvalidInput, ServiceUnavailable, atomic_write_json, scratch_dir
from explainer import attributions
from explainer.artifacts import Explanation, upload, write_artifacts
from explainer.attributions import BY_NAME, METHODS
from explainer.embedding import embedding_report
from explainer.faithfulness import deletion_report
from runs import (
    check_run,
    contract,
    data_inputs,
    decided_labels,
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
    run_data_dir,
    skipped_report,
)

DEFAULT_N_SAMPLES = 8
MAX_N_SAMPLES = 64
MAX_SEED = 2**31 - 1  # what numpy and scikit-learn's t-SNE take
IG_STEPS = 50
SHAP_NSAMPLES = 50
DELETION_STEPS = 20
BACKGROUND_SIZE = 16
INTERNAL_BATCH_SIZE = 32
BASELINE = "mean"
ARTIFACT_DIR = contract.EXPLANATIONS_DIR


def check_request(
    n_samples: int,
    methods: Sequence[str] | None,
    seed: int = 0,
    names: Mapping[str, str] | None = None,
) -> list[str]:
    """Validate the user's choices; returns the methods (all when ``None``) in canonical order.

    ``names``: what the caller calls a choice in its messages (the CLI: ``--n-samples``);
    otherwise the request field's name."""
    names = names or {}
    if not 1 <= n_samples <= MAX_N_SAMPLES:
        name = names.get("n_samples", "n_samples")
        raise InvalidInput(f"{name} must be between 1 and {MAX_N_SAMPLES}, got {n_samples}.")
    if not 0 <= seed <= MAX_SEED:
        name = names.get("seed", "seed")
        raise InvalidInput(f"{name} must be between 0 and {MAX_SEED}, got {seed}.")
    if methods is None:
        return list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InvalidInput(
            f"unknown explanation method(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose one or more of: {', '.join(METHODS)}."
        )
    return [m for m in METHODS if m in methods]


def select_samples(
    probs: np.ndarray,
    labels: np.ndarray,
    n_samples: int,
    seed: int = 0,
    predicted: np.ndarray | None = None,
) -> np.ndarray:
    """A reproducible sample across classes: up to half the most confidently wrong images, the
    rest drawn from each true class in turn (at random within a class), so every class shows
    when the sample has room for one image of each (the wrong ones give way to that).

    ``predicted``: the class each image is decided as (default the most probable one).
    """
    n_samples = min(n_samples, len(labels))
    predicted = probs.argmax(axis=1) if predicted is None else predicted
    wrong = np.flatnonzero(predicted != labels)
    confidence = probs[np.arange(len(probs)), predicted]  # of the class each image is decided as
    room = n_samples - len(np.unique(labels))  # what one image per class leaves
    most_wrong = np.argsort(-confidence[wrong], kind="stable")
    wrong = wrong[most_wrong][: max(0, min(n_samples // 2, room))]
    rest = np.setdiff1d(np.arange(len(labels)), wrong)
    rng = np.random.default_rng(seed)
    queues = [list(rng.permutation(rest[labels[rest] == c])) for c in np.unique(labels[rest])]
    chosen: list[int] = []
    while len(chosen) < n_samples - len(wrong):
        for queue in queues:
            if queue and len(chosen) < n_samples - len(wrong):
                chosen.append(int(queue.pop()))
    return np.concatenate([wrong, np.sort(np.asarray(chosen, dtype=np.int64))]).astype(np.int64)


def explain_images(
    model: nn.Module,
    x: torch.Tensor,
    background: torch.Tensor,
    methods: Sequence[str] = METHODS,
    *,
    seed: int = 0,
    ig_steps: int = IG_STEPS,
    shap_nsamples: int = SHAP_NSAMPLES,
    deletion_steps: int = DELETION_STEPS,
    baseline: str = BASELINE,
    internal_batch_size: int | None = INTERNAL_BATCH_SIZE,
    progress: bool = False,
    on_step: Callable[[int, int, str], None] | None = None,
    target: torch.Tensor | None = None,
) -> Explanation:
    """Explain each image of ``x`` (``N×C×H×W`` in ``[0, 1]``) for its predicted class.

    Args:
        background: Reference images for SHAP (other images of the same data set).
        target: The class to explain per image, where it is not the most probable one (a
            two-class run decides by its threshold: ``runs.decided_labels``).
        baseline: What "removed" means for IG and the deletion curves (``attributions.BASELINES``).
        on_step: ``on_step(done, total, stage)`` before each method and the deletion curves.
    """
    step = on_step or (lambda done, total, stage: None)
    model.eval()
    probs = inference.predict(model, inference.batches(x)).float()
    top = probs.argmax(dim=1)
    target = top if target is None else target.long()
    inputs = attributions.Inputs(
        model=model,
        x=x,
        target=target,
        top=top,
        baseline=attributions.make_baseline(model, x, baseline),
        background=background,
        seed=seed,
        ig_steps=ig_steps,
        shap_nsamples=shap_nsamples,
        internal_batch_size=internal_batch_size,
    )
    values: dict[str, torch.Tensor] = {}
    extras: dict[str, dict[str, np.ndarray]] = {}
    # disable=None: none where stderr is not a terminal (a service's log)
    with tqdm(total=len(methods) + 1, desc="explain", disable=None if progress else True) as bar:
        for i, method in enumerate(methods):
            bar.set_postfix_str(method)
            step(i, len(methods) + 1, f"attributions {i + 1}/{len(methods)}: {method}")
            if method not in BY_NAME:
                raise InvalidInput(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
            values[method], extras[method] = BY_NAME[method].compute(inputs)
            bar.update()
        bar.set_postfix_str("deletion curves")
        step(len(methods), len(methods) + 1, "deletion curves")
        report = deletion_report(
            model,
            x,
            target,
            inputs.baseline,
            {m: attributions.pixel_importance(v) for m, v in values.items()},
            n_steps=deletion_steps,
            seed=seed,
        )
        report["baseline"] = baseline
        bar.update()
    return Explanation(
        target=target.numpy(),
        probs=probs.numpy(),
        values={m: v.numpy() for m, v in values.items()},
        extras=extras,
        faithfulness=report,
        channel_importance={
            m: attributions.channel_importance(v).tolist()
            for m, v in values.items()
            if BY_NAME[m].per_channel
        },
    )


def prepare_inputs(
    run_id: str,
    tracking_uri: str,
    n_samples: int = DEFAULT_N_SAMPLES,
    methods: Sequence[str] | None = None,
    seed: int = 0,
    data_root: Path | None = None,
    data_dir: str | None = None,
) -> dict:
    """Check a request at submission time and return the job's inputs (data set resolved).

    The data set (``data_dir``, default the run's) must lie under ``data_root`` (``DATA_DIR``),
    as for the evaluator: neither a request nor a run logged with any other ``data_dir`` can make
    the service read and publish those images.

    Raises:
        NotFound: Unknown run. InvalidInput: bad arguments, no model, preprocessing or data, or
            data outside ``data_root``.
        ServiceUnavailable: MLflow cannot be reached.
    """
    methods = check_request(n_samples, methods, seed)
    pp, param = check_run(tracking_uri, run_id)
    path = run_data_dir(run_id, data_dir, param, data_root, confine=True)
    return {"n_samples": n_samples, "methods": methods, "seed": seed, **data_inputs(path, pp)}


def run_job(job: dict, ctx=None, *, tracking_uri: str, data_root: Path | None = None) -> dict:
    """The API's job handler: ``explain_run`` with the job's run id and inputs.

    ``ctx`` (a ``jobs.JobContext``) receives progress and fences the publishing step.
    """
    answer = earlier_answer(tracking_uri, job, "explanation")
    if answer is not None:  # published before the service died: do not publish it twice
        return answer
    inputs = job["inputs"]
    return explain_run(
        job["run_id"],
        tracking_uri,
        n_samples=inputs["n_samples"],
        methods=inputs["methods"],
        seed=inputs["seed"],
        data_dir=inputs["data_dir"],
        data_root=data_root,
        confine=True,
        on_progress=ctx.progress if ctx is not None else None,
        before_publish=ctx.fence if ctx is not None else None,
        result_id=job_result_id(job),
    )


def explain_run(
    run_id: str,
    tracking_uri: str,
    n_samples: int = DEFAULT_N_SAMPLES,
    methods: Sequence[str] | None = None,
    seed: int = 0,
    data_dir: str | Path | None = None,
    progress: bool = False,
    data_root: Path | None = None,
    confine: bool = False,
    on_progress: Callable[[float, str], None] | None = None,
    before_publish: Callable[[], None] | None = None,
    result_id: str | None = None,
) -> dict:
    """Explain a sample of the run's test images and publish them as a new folder
    ``explanations/<result id>/``, made current by the last step (``runs.publish_result``).

    Args:
        data_dir: The data set; default the run's ``data_dir`` parameter.
        data_root: Where a relative ``data_dir`` is looked up first (``DATA_DIR``).
        confine: Refuse a data set outside ``data_root`` (the API sets this).
        on_progress: Called with ``(fraction, stage)`` as the work goes on.
        before_publish: Called after every file is uploaded, right before the result is made
            current; raising there (a job whose lease was lost) leaves the previous one current.
        result_id: Name of the new folder (default: time-based).

    Returns:
        A JSON-able summary: ``run_id``, ``methods``, ``n_samples``, ``deletion`` (per method
        ``auc``, ``random_auc``, ``score``), ``ig_convergence_delta`` (mean |delta|, or None),
        ``channel_importance``, ``artifact_path``, ``files`` and ``skipped`` (test files the
        loader could not use: ``count``, ``reasons``, ``files``).

    Raises:
        NotFound: No such run. InvalidInput: bad arguments, a run without model/preprocessing, or
        missing test images. ServiceUnavailable: MLflow cannot be reached.
    """
    report_progress = on_progress or (lambda fraction, stage: None)
    methods = check_request(n_samples, methods, seed)
    report_progress(0.01, "checking the run")
    pp, param = check_run(tracking_uri, run_id)
    client = get_client(tracking_uri)
    run = get_run(client, run_id)
    report_progress(0.03, "loading the model")
    model = load_model(run_id, tracking_uri, run.data.params)
    path = run_data_dir(run_id, data_dir, param, data_root, confine)
    report_progress(0.06, "loading the test split")
    ds = load_test_split(path, pp)
    own_data, data_changed = own_test_split(
        run.data.tags, path, data_dir, param, data_root, confine, ds
    )
    images, labels = ds.test.images, ds.test.labels
    report_progress(0.1, "choosing samples")
    probs = inference.predict(model, inference.batches(images, pp)).numpy()
    # A two-class run decides by its validation threshold: explain the class it decides.
    point = read_operating_point(client, run_id, pp.class_names)
    decided = decided_labels(point, probs, pp.class_names)
    index = select_samples(probs, labels, n_samples, seed, decided)
    rest = np.setdiff1d(np.arange(len(labels)), index)
    rng = np.random.default_rng(seed + 1)
    background_index = np.sort(rng.choice(rest, min(BACKGROUND_SIZE, len(rest)), replace=False))
    if len(background_index) == 0:
        background_index = index
    x = pp.to_tensor(images[index])
    explanation = explain_images(
        model,
        x,
        pp.to_tensor(images[background_index]),
        methods,
        seed=seed,
        progress=progress,
        on_step=lambda done, total, stage: report_progress(0.15 + 0.65 * done / total, stage),
        target=torch.from_numpy(decided[index]),
    )
    faithful = explanation.faithfulness
    info = {
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "n_samples": len(index),
            "n_samples_requested": n_samples,  # more than the test split has: all of it
            "seed": seed,
            "methods": methods,
            "n_steps": IG_STEPS,
            "shap_nsamples": SHAP_NSAMPLES,
            "deletion_steps": DELETION_STEPS,
            "baseline": BASELINE,
            "internal_batch_size": INTERNAL_BATCH_SIZE,
            "background_size": len(background_index),
            "explained_class": "predicted" if point is None else "decided by the threshold",
        },
        "data": {
            "source": str(path),
            "n_test": len(labels),
            "skipped": skipped_report(ds.skipped),
            # The run's own data folder, with the test split it was trained beside
            "own_data": own_data,
            "data_changed": data_changed,
        },
        "operating_point": None if point is None else point.model_dump(),
        "sample_index": index.tolist(),
        "sample_labels": [pp.class_names[int(c)] for c in labels[index]],
        "sample_files": [ds.test.files[i] for i in index] if ds.test.files else None,
        "background_index": background_index.tolist(),
    }
    folder = f"{ARTIFACT_DIR}/{result_id or new_result_id()}"
    metrics = {f"explain_deletion_auc_{m}": e["auc"] for m, e in faithful["methods"].items()}
    metrics["explain_deletion_auc_random"] = faithful["random"]["auc"]
    # patient images: a killed job's folder is removed by the next job (common.scratch_dir)
    with scratch_dir("explain-") as tmp:
        report_progress(0.8, "embedding the test images")
        embedding = embedding_report(
            model, pp, images, labels, ds.test.files, seed=seed,
            decide=lambda p: decided_labels(point, p, pp.class_names),
        )  # fmt: skip
        report_progress(0.85, "writing panels and plots")
        written = write_artifacts(
            Path(tmp), explanation, x, labels[index], pp.class_names, info, embedding
        )
        delta = explanation.ig_delta
        answer = {
            "run_id": run_id,
            "methods": methods,
            "n_samples": len(index),
            "sample_index": index.tolist(),
            "deletion": {
                m: {k: e[k] for k in ("auc", "random_auc", "score")}
                for m, e in faithful["methods"].items()
            },
            "ig_convergence_delta": None if delta is None else float(np.abs(delta).mean()),
            "channel_importance": explanation.channel_importance,
            "artifact_path": folder,
            "files": sorted(written["files"]),
            "skipped": info["data"]["skipped"],
        }
        # The answer itself, which a retry of this job returns (``runs.earlier_answer``).
        atomic_write_json(Path(tmp) / contract.JOB_RESULT_JSON, answer)
        report_progress(0.9, f"uploading {len(written['files'])} files")
        try:
            upload(client, run, Path(tmp), folder)
        except (MlflowException, OSError) as exc:
            raise ServiceUnavailable(
                f"MLflow did not accept the explanation files of run {run_id}: {exc}; the "
                "previous explanation stays current. Check that the tracking server and its "
                "artifact store are up, then retry."
            ) from exc
    report_progress(0.97, "publishing")
    if before_publish is not None:
        before_publish()
    publish_result(client, run_id, metrics, folder, "explanation")
    return answer
