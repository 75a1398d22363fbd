"""What the evaluator and explainer check about a run before they use it, and how they find its
test images: the run, its model and preprocessing, and a data folder confined to ``DATA_DIR``."""

import importlib
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from mlflow.tracking import MlflowClient

from common import InvalidInput, check_path_text
from common import confine as confine_path
from dataloader import DatasetSplits, any_colour, class_key, inspect_data, load_dataset
from mlpipeline_model import MAX_DISTORTION, MAX_UPSCALE, misfit
from runs import contract
from runs.logged import find_logged_model
from runs.preprocessing import Preprocessing
from runs.tracking import (
    MODEL_ARTIFACT,
    get_client,
    get_run,
    load_preprocessing,
    stopped_before_model,
)

CHECK_CACHE_S = 60.0
_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")  # MLflow's SQLAlchemy store


def warm_up(tracking_uri: str) -> None:
    """Import MLflow's tracking store for ``tracking_uri`` now (SQLAlchemy and Alembic for a
    database URI: 0.8-2 s; the REST store comes with ``mlflow`` itself).

    MLflow imports it on the first call, which in a service was the first submission's check:
    the import held the GIL on a request thread while 50 clients waited (``py-spy --gil`` under
    the load of ``benchmarks/bench_evaluator.py``). Services call this at start-up instead.
    """
    scheme = urlparse(tracking_uri).scheme.split("+")[0]
    store = "sqlalchemy_store" if scheme in _DATABASE_SCHEMES else "rest_store"
    importlib.import_module(f"mlflow.store.tracking.{store}")


def resolve_data_dir(
    value: str | Path, root: Path | None = None, confine: bool = False, fix: str | None = None
) -> Path:
    """The data folder (or ``.npz`` file) that ``value`` names, resolved.

    With ``confine`` (every service) the one rule of ``common.confine`` applies: the text is
    checked (NUL bytes, non-UTF-8, overlong names → ``InvalidInput``), a relative ``value`` is
    taken under ``root`` (``DATA_DIR``), and the result must lie inside ``root`` after resolving
    symlinks and ``..``. Without it (the CLIs) a relative ``value`` is looked up under ``root``
    first, then in the working directory.

    Raises:
        InvalidInput: The path is malformed, does not exist or, with ``confine``, lies outside
            ``root``.
    """
    text = check_path_text(value, "data_dir")
    if confine and root is not None:
        path = confine_path(text, root, "data_dir", "DATA_DIR", fix)
    else:
        path = Path(text).expanduser()
        try:
            if not path.is_absolute() and root is not None:
                under_root = root / path
                if under_root.exists() or not path.exists():
                    path = under_root
            path = path.resolve()
        except (OSError, RuntimeError) as exc:
            raise InvalidInput(f"data_dir {text[:80]!r} cannot be resolved: {exc}") from None
    shown = str(path) if len(str(path)) <= 200 else f"{str(path)[:200]}…"  # echoed: cut
    try:
        exists = path.exists()
    except OSError as exc:  # permission denied on a parent, say
        raise InvalidInput(f"data folder {shown} cannot be read: {exc.strerror}") from None
    if not exists:
        under = f" under DATA_DIR {root.resolve()}" if confine and root is not None else ""
        if under and Path(text).parts[:1] == (root.resolve().name,):
            # "data" sent to a service whose DATA_DIR is that very folder: paths are below it
            under += ' (a path relative to DATA_DIR: "." names DATA_DIR itself)'
        raise InvalidInput(
            f"data folder {shown} does not exist; pass data_dir (CLI: --data-dir) as a folder "
            f"with test/<class>/ images or a .npz file{under}"
        )
    return path


def check_model(client: MlflowClient, run_id: str) -> None:
    """Raise ``InvalidInput`` unless the run has a logged model named ``model``; of a run that
    did not finish, saying that it stopped before its model was logged and how to continue it."""
    run = get_run(client, run_id)
    if find_logged_model(client, run) is None:
        if stopped := stopped_before_model(run):
            raise InvalidInput(f"run {run_id} has nothing to evaluate or explain: {stopped}.")
        raise InvalidInput(
            f"run {run_id} has no logged model named '{MODEL_ARTIFACT}', so there is nothing to "
            "evaluate or explain; train one with "
            "`python -m trainer --data-dir DIR --experiment NAME`."
        )


_checked: dict[tuple[str, str], tuple[float, Preprocessing, str | None]] = {}
_checked_lock = threading.Lock()


def check_run(tracking_uri: str, run_id: str) -> tuple[Preprocessing, str | None]:
    """Check that the run exists and has a model and preprocessing, at submission time.

    Successful checks are remembered for ``CHECK_CACHE_S`` seconds (a trained run does not lose
    its model), so that repeated submissions cost no MLflow round trips.

    Returns:
        The run's preprocessing and its ``data_dir`` parameter (None when absent).

    Raises:
        ServiceUnavailable: MLflow is down. NotFound: unknown run. InvalidInput: no model or no
            ``preprocessing.json``.
    """
    key = (tracking_uri, run_id)
    with _checked_lock:
        hit = _checked.get(key)
    if hit is not None and time.monotonic() - hit[0] < CHECK_CACHE_S:
        return hit[1], hit[2]
    client = get_client(tracking_uri)
    run = get_run(client, run_id)
    check_model(client, run_id)
    pp = load_preprocessing(client, run_id)
    data_dir = run.data.params.get("data_dir")
    with _checked_lock:
        _checked[key] = (time.monotonic(), pp, data_dir)
    return pp, data_dir


def is_run_data(path: Path, run_param: str | None, root: Path | None, confine: bool) -> bool:
    """Whether ``path`` is the run's own data folder (its ``data_dir`` param, resolved as usual):
    what ``own_data`` of an evaluation or explanation records."""
    if not run_param:
        return False
    try:
        return path == resolve_data_dir(run_param, root, confine)
    except InvalidInput:  # the run's own folder is gone or lies elsewhere: not the same
        return False


def own_test_split(
    tags: dict[str, str],
    path: Path,
    requested: str | Path | None,
    run_param: str | None,
    root: Path | None,
    confine: bool,
    ds: DatasetSplits,
) -> tuple[bool, str | None]:
    """``(own_data, data_changed)`` of an evaluation or explanation of the loaded test split
    ``ds`` of ``path``: whether it is the run's own data folder (its ``data_dir`` param, or no
    folder ``requested``) with the test split the run (its ``tags``) was trained beside, and if
    the folder is its own but the split is not, why (``test_split_change``)."""
    own = requested is None or is_run_data(path, run_param, root, confine)
    found = ds.split_hashes.get("test") or ds.content_hash
    changed = test_split_change(tags, path, found) if own else None
    return own and changed is None, changed


def test_split_change(tags: dict[str, str], path: Path, found: str) -> str | None:
    """Why the test split of the run's own data folder ``path`` is not the one the run (its
    ``tags``) was trained beside: its hash ``found`` is not the run's ``TEST_DATA_TAG`` (images
    added, removed, rewritten or moved between classes since), or the run's trainer read no test
    split there; None when it is the same, or when the run recorded nothing (trained before
    2026-12-06)."""
    recorded = tags.get(contract.TEST_DATA_TAG)
    if not recorded or recorded == found:
        return None
    if recorded == contract.NO_TEST_DATA:
        return (
            f"the run's trainer read no test split in {path} (there was none, or it could not "
            "be read), so this one was added since and never checked against the training "
            "images: make sure none of them was trained on before trusting these figures"
        )
    return (
        f"the test split of {path} changed since the run was trained (hash {recorded[:12]} "
        f"then, {found[:12]} now: images added, removed, rewritten or moved between classes), "
        "so these are not the figures of the run's own test split: restore the split as it was "
        "to evaluate the run as trained, or read these as figures on other data"
    )


def run_data_dir(
    run_id: str,
    requested: str | Path | None,
    run_param: str | None,
    root: Path | None = None,
    confine: bool = False,
) -> Path:
    """The data set to use for a run: ``requested``, else the run's ``data_dir`` parameter.

    Raises:
        InvalidInput: Neither is given, or ``resolve_data_dir`` refuses the path.
    """
    value = requested if requested is not None else run_param
    if not value:
        raise InvalidInput(
            f"run {run_id} has no data_dir parameter; pass data_dir (CLI: --data-dir)."
        )
    fix = None  # a request's own data_dir: a path relative to DATA_DIR helps
    if requested is None:  # the run's: no path the request could name helps
        fix = (
            "the run was trained on it; set DATA_DIR to a folder that holds it, or use the "
            "command line where the data is (python -m evaluator / python -m explainer --run-id "
            f"{run_id}); a request also takes data_dir, a copy under DATA_DIR."
        )
    return resolve_data_dir(value, root, confine, fix)


def _channels(n: int) -> str:
    return f"{n} ({'grey' if n == 1 else 'RGB'})"


def check_compatible(path: Path, pp: Preprocessing) -> dict:
    """Raise ``InvalidInput`` naming both sides when the test split of ``path`` does not fit the
    model described by ``pp`` (the run's ``preprocessing.json``).

    Checked from file headers (``dataloader.inspect_data``; for a grey model whose sampled files
    are all stored as colour, some are decoded to tell grey scans stored as RGB): some images
    must have the model's channels (the others are converted); every class folder must be a
    class of the model (a ``.npz`` must have as many label values as the model has classes);
    some images must fit the model's input (``mlpipeline_model.misfit``: at most
    ``MAX_UPSCALE``× smaller per side, at most ``MAX_DISTORTION``× out of its shape; the others
    are skipped when the split is loaded); no DICOM file looked at may be of a Modality the model
    refuses (``check_test_modalities``; loading the split checks every file).

    Returns:
        What was found: ``format``, ``channels``, ``n_classes``, ``min_size``, ``version`` (of
        the test split's files, ``dataloader.DataSummary.version``).
    """
    found = inspect_data(path, "test")
    problems = []
    # Mixed grey and colour files are converted to the model's channels, as the served model
    # converts a request; only data without a single image of the model's kind is refused. Grey
    # scans stored as RGB (JPEG exports) are of a grey model's kind, told by what they show.
    matching = found.colour_images if pp.channels == 3 else len(found.sizes) - found.colour_images
    if not matching and pp.channels == 1 and not any_colour(list(found.colour_files)):
        matching = len(found.sizes)
    if matching == 0:
        problems.append(
            f"channels: the data has {_channels(found.channels)}, the model takes "
            f"{_channels(pp.channels)}"
        )
    if found.class_names is not None:
        known = {class_key(name) for name in pp.class_names}  # as the split is loaded
        foreign = [n for n in found.class_names if class_key(n) not in known]
        if foreign:
            problems.append(
                f"classes: the data has {', '.join(found.class_names)}, the model "
                f"{', '.join(pp.class_names)} ({', '.join(foreign)} is not one of them)"
            )
    elif found.n_classes != len(pp.class_names):
        problems.append(
            f"classes: the data has labels 0..{found.n_classes - 1} ({found.n_classes} classes), "
            f"the model {len(pp.class_names)} classes ({', '.join(pp.class_names)})"
        )
    height, width = pp.image_size
    small_h, small_w = min(h for h, _ in found.sizes), min(w for _, w in found.sizes)
    # Images too small or of another shape are skipped (and listed) when the split is loaded;
    # only data without a single image of a size the model can take is refused.
    misfits = [misfit(size, (height, width)) for size in found.sizes]
    if all(misfits):
        problems.append(
            f"image size: the data has images of {'×'.join(map(str, found.sizes[0]))} (first: "
            f"{misfits[0]}; none of the {len(misfits)} looked at fits), the model takes "
            f"{height}×{width} and resizes ({pp.resize}) at most {MAX_UPSCALE}× up and "
            f"{MAX_DISTORTION}× out of shape"
        )
    if problems:
        raise InvalidInput(
            f"the data in {path} does not fit the run's model: " + "; ".join(problems) + ". "
            "Use data like the run's training data (its preprocessing.json says what the model "
            "takes)."
        )
    # The files looked at already show another modality: said at submission, not by the job
    # (which checks every file when it loads the split).
    check_test_modalities(path, np.array(found.modalities, dtype=object), pp.modalities)
    return {
        "format": found.format,
        "channels": found.channels,
        "n_classes": found.n_classes,
        "min_size": [small_h, small_w],
        # Unknown (a folder could not be listed): unique, so no stored result is reused for it.
        "version": found.version or f"unknown-{uuid.uuid4().hex}",
    }


def skipped_report(skipped: list[dict], limit: int = 50) -> dict:
    """``{count, reasons: {reason: n}, files: [{file, reason}] (at most limit)}`` of the files
    the loader skipped, for job results and ``metrics.json``."""
    reasons: dict[str, int] = {}
    for entry in skipped:
        reason = entry["reason"].split(":", 1)[0]
        reasons[reason] = reasons.get(reason, 0) + 1
    return {"count": len(skipped), "reasons": reasons, "files": list(skipped[:limit])}


def data_inputs(path: Path, pp: Preprocessing) -> dict:
    """The part of an evaluation's or explanation's job inputs that names its data, after
    ``check_compatible``: ``data_dir`` and ``data_version`` (a stored result is reused only
    while the test files stay put)."""
    return {"data_dir": str(path), "data_version": check_compatible(path, pp)["version"]}


def load_test_split(path: Path, pp: Preprocessing):
    """The test split of ``path`` resized like the model's training data, labelled by its classes.

    Raises:
        InvalidInput: Data that does not fit the model (``check_compatible``), no test split, or
            a class the model does not know (``DataError``).
    """
    check_compatible(path, pp)
    ds = load_dataset(
        path,
        image_size=pp.image_size,
        channels=pp.channels,
        splits=("test",),
        class_names=pp.class_names,
    )
    if list(ds.class_names) != list(pp.class_names):
        raise InvalidInput(
            f"the classes in {path} ({', '.join(ds.class_names)}) differ from the model's "
            f"({', '.join(pp.class_names)}); use the data set the run was trained on."
        )
    if ds.test is None or len(ds.test.labels) == 0:
        raise InvalidInput(f"{path} has no test images; add a test/<class>/ folder of images.")
    check_test_modalities(path, ds.test.modalities, pp.modalities)
    return ds


def check_test_modalities(path: Path, found: np.ndarray | None, model: list[str] | None) -> None:
    """Refuse test DICOM files of another Modality than the model's (``model``; None: it records
    none), as the served model refuses them: figures on them would describe answers it never
    gives. ``found``: each test image's Modality (``ImageSet.modalities``)."""
    if not model or found is None:
        return
    other = sorted({str(m) or "none" for m in found if m is not None and str(m) not in model})
    if other:
        raise InvalidInput(
            f"the test split of {path} holds DICOM files of Modality {', '.join(other)}, and the "
            f"model was trained on {', '.join(model)} images only (the served model refuses "
            "the others): evaluate it on test images of its modality"
        )
