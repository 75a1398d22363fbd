"""How a pipeline model is logged to MLflow and loaded back, in one place.

The trainer logs a ``python_function`` model whose code (the ``mlpipeline_model`` package) travels
with it (``code_paths``): ``mlflow.pyfunc.load_model`` works in any process with the pinned
packages, without this repository, and ``predict`` takes images (bytes or uint8 arrays) and
returns class probabilities. The PyTorch module is an artifact of that model, so the evaluator and
explainer get the module itself (hooks, ``target_layer``, ``embed``) through ``load_model``.

Runs logged before (the ``pytorch`` flavor, classes pickled as ``runs.models`` or
``common.models``) keep loading through ``load_model``; they cannot be served outside the
repository, so ``check_servable`` refuses them.
"""

import base64
import copy
import hashlib
import io
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path, PurePosixPath

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.models.model import MLMODEL_FILE_NAME, Model, ModelInfo
from mlflow.models.signature import ModelSignature
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.types.schema import ColSpec, Schema
from PIL import Image

import mlpipeline_model
from common import (
    DISK_FULL,
    Conflict,
    InvalidInput,
    ServiceUnavailable,
    end_download_threads,
    free_space,
    installed_version,
    scratch_dir,
)
from mlpipeline_model import (
    DECISION_COLUMN,
    FORMAT,
    INPUT_NOTE_COLUMN,
    OOD_COLUMN,
    OOD_SCORE_COLUMN,
    PREDICTED_COLUMN,
    TORCH_ARTIFACT,
    DecodingWarning,
    ImageClassifierModel,
    reference_of,
)
from runs.digest import (
    DIGEST_KEY,
    MEANING_KEY,
    checked_files,
    files_digest,
    weights_digest,
)
from runs.logged import MODEL_RECORD_KEY, model_record
from runs.preprocessing import Preprocessing
from runs.tracking import check_tracking

PACKAGE_DIR = Path(mlpipeline_model.__file__).resolve().parent
FORMAT_KEY = "mlpipeline_format"
"""Key of the MLmodel ``metadata`` entry that marks a model of this pipeline."""
MODALITIES_KEY = "modalities"
"""Key of the MLmodel ``metadata`` entry listing the DICOM Modality codes the model was trained
on (null: not known; absent: logged before it was recorded)."""


def requirements() -> list[str]:
    """The packages a loader of the model needs, pinned to the versions training used.

    Passing them explicitly spares MLflow its slow requirement inference (it reloads the model
    in a subprocess). Versions are those of the installed distributions, read by name (reading
    torchvision's ``__version__`` imported it, and torch._dynamo with it: ~1.5 s of CPU); a
    module installed under another distribution's name (mlflow-skinny, a Pillow fork) gives its
    ``__version__``.
    """

    def pin(name: str, module: str) -> str:
        version = installed_version(name) or import_module(module).__version__
        return f"{name}=={version.split('+')[0]}"

    modules = {"torch": "torch", "torchvision": "torchvision", "mlflow": "mlflow", "numpy": "numpy",
               "pandas": "pandas", "pillow": "PIL", "pydicom": "pydicom"}  # fmt: skip
    pins = [pin(name, module) for name, module in modules.items()]
    # compressed DICOM (JPEG Lossless, JPEG-LS): served models decode what training read
    gdcm = installed_version("python-gdcm")
    return pins + ([f"python-gdcm=={gdcm}"] if gdcm else [])


def signature(
    class_names: list[str], operating_point: dict | None, ood: bool = False, channels: int = 3
) -> ModelSignature:
    """The model's output columns (MLmodel ``signature``; ``ood``: it carries an
    out-of-distribution reference; ``channels`` 1: a grey model, which notes a colour image it
    read as grey). No input schema: the model takes encoded files, base64
    text and uint8 arrays alike, which one schema cannot say; the input example shows one form."""
    columns = [ColSpec("double", name) for name in class_names]
    columns.append(ColSpec("string", PREDICTED_COLUMN))
    if operating_point:
        columns.append(ColSpec("string", DECISION_COLUMN))
    if ood:
        columns += [ColSpec("double", OOD_SCORE_COLUMN), ColSpec("boolean", OOD_COLUMN)]
    if channels == 1:  # what the reading dropped: colour of an image sent to a grey model
        columns.append(ColSpec("string", INPUT_NOTE_COLUMN, required=False))
    return ModelSignature(outputs=Schema(columns))


def input_example(preprocessing: Preprocessing) -> pd.DataFrame:
    """One mid-grey PNG of the model's size, base64 in a column ``image``: the JSON body that
    ``mlflow models serve`` takes (``serving_input_example.json``). Synthetic: a model must
    not carry a patient's image."""
    shape = (
        (*preprocessing.image_size, 3)
        if preprocessing.channels == 3
        else (preprocessing.image_size)
    )
    png = io.BytesIO()
    Image.fromarray(np.full(shape, 128, np.uint8)).save(png, format="PNG")
    return pd.DataFrame({"image": [base64.b64encode(png.getvalue()).decode()]})


def log_classifier(
    model: torch.nn.Module,
    preprocessing: Preprocessing,
    name: str,
    operating_point: dict | None = None,
) -> ModelInfo:
    """Log ``model`` (a CPU copy in eval mode) in the active run as the self-contained model;
    a two-class model's ``operating_point`` (``operating_point.json``) travels with it, so its
    ``decision`` column applies the threshold wherever it is loaded, and so do
    ``preprocessing.modalities``: the model refuses DICOM inputs of other modalities (and
    non-image or multi-frame ones) wherever it is loaded.

    The weights' digest (``runs.weights_digest``) goes first into the run's param
    ``weights_digest``, write-once: a run that already holds a model of other weights refuses
    this one (``Conflict``) before it could replace the model whose figures the run shows. The
    model logged is then recorded with the digest of its files as stored (``logged_model``,
    write-once: ``runs.logged``), which the choice and the evaluator check before they load it;
    the same weights logged again (a resumed trainer) keep the record."""
    model = copy.deepcopy(model).cpu().eval()
    ood = reference_of(model)  # the out-of-distribution check it carries (None: none)
    digest = weights_digest(model)
    run = mlflow.active_run()
    held = mlflow.get_run(run.info.run_id).data.params if run is not None else {}
    if MODEL_RECORD_KEY in held and DIGEST_KEY not in held:  # before any model of its training
        raise Conflict(
            f"run {run.info.run_id} records a model (param {MODEL_RECORD_KEY}) that its training "
            "never logged: someone else set it; do not use this run, train a new one"
        )
    _record_digest(DIGEST_KEY, digest, "other weights")
    # what its outputs mean (classes, input, threshold): the same weights relabelled are another
    # model too
    meaning = json.dumps([preprocessing.model_dump(mode="json"), operating_point], sort_keys=True)
    _record_digest(MEANING_KEY, hashlib.sha256(meaning.encode()).hexdigest(),
                   "other classes, preprocessing or decision threshold")  # fmt: skip
    wrapper = ImageClassifierModel(
        preprocessing.image_size,
        preprocessing.channels,
        preprocessing.class_names,
        operating_point=operating_point,
        decoding_version=preprocessing.decoding_version,  # the training's (None: this code's)
        modalities=preprocessing.modalities,  # None: not known, no modality refused
        multi_frame=preprocessing.multi_frame,  # takes cine loops' first frames as trained
    )
    with scratch_dir("mlpipeline-log-") as tmp:  # a killed trainer's copy: the next one's to remove
        weights = tmp / f"{TORCH_ARTIFACT}.pt"
        torch.save(model, weights)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=wrapper,
            artifacts={TORCH_ARTIFACT: str(weights)},
            code_paths=[str(PACKAGE_DIR)],
            pip_requirements=requirements(),
            signature=signature(
                wrapper.class_names, operating_point, ood is not None, wrapper.channels
            ),
            input_example=input_example(preprocessing),
            metadata={
                FORMAT_KEY: FORMAT,
                "preprocessing": preprocessing.model_dump(mode="json"),
                "input": "PNG/JPEG/DICOM bytes (or base64 text), or uint8 N×H×W×C arrays",
                "output": "one probability column per class name, then predicted_class (the "
                "most probable class), then for two-class models with an operating point "
                "decision (the class by its threshold), then for models with an "
                "out-of-distribution check ood_score and out_of_distribution (ood_score > 1), "
                "then for grey models input_note (a colour image read as grey, else null)",
                "operating_point": operating_point,
                "ood_check": ood.summary() if ood is not None else None,
                "decoding_version": wrapper.decoding_version,
                MODALITIES_KEY: wrapper.modalities,
                DIGEST_KEY: digest,
            },
        )
    if MODEL_RECORD_KEY not in held:  # which model, its files as stored (``runs.logged``)
        with _downloaded(info.model_uri) as local:
            record = model_record(info.model_id, files_digest(local))
        _record_digest(MODEL_RECORD_KEY, record, "another logged model")
    return info


def _record_digest(key: str, digest: str, other: str) -> None:
    """Log ``digest`` as the active run's param ``key`` (the same value again is accepted: the
    same model logged once more); a run holding another is a model of ``other``: refused."""
    try:
        mlflow.log_param(key, digest)
    except MlflowException as exc:
        run = mlflow.active_run()
        run_id = run.info.run_id if run else "?"
        if exc.error_code != "INVALID_PARAMETER_VALUE":
            raise ServiceUnavailable(f"MLflow failed to record the model's digest ({key}) of "
                                     f"run {run_id}: {exc.message}") from exc  # fmt: skip
        raise Conflict(
            f"run {run_id} already holds a model of {other} (param {key}): a run's model is "
            "logged once, so that its figures describe it; log this model in a new run (a "
            "`with mlflow.start_run(run_id=...)` block that this ends marks the run FAILED: set "
            "it back with MlflowClient().set_terminated(run_id, 'FINISHED'))"
        ) from exc


def _alias_legacy_modules() -> None:
    """Let models pickled before the package split (classes in ``common.models``) unpickle."""
    from runs import models

    sys.modules.setdefault("common.models", models)


@contextmanager
def _downloaded(model_uri: str, only: str | None = None) -> Iterator[str]:
    """The local path of the model at ``model_uri`` (or of its one file ``only``), downloaded
    into a temporary folder that is removed on leaving (``common.scratch_dir``: the folder a
    killed process left is removed by the next load once that process is gone).

    MLflow's own loaders (``get_model_info``, ``pyfunc.load_model``, ``pytorch.load_model``)
    download from a tracking server into a fresh ``mkdtemp`` folder that nothing removes, a
    model's worth of disk per load: the evaluator and explainer load one per job and the
    predictor one per alias change, so a long-running service would fill its disk. Loaded
    models live in memory; their package is this repository's ``mlpipeline_model``, already
    imported, so nothing reads the folder after loading. The loaders also put the model's code
    folder on ``sys.path``; it goes with the folder, so ``sys.path`` does not grow per load.

    Raises:
        InvalidInput: No model there, or it cannot be read (here or in the ``with`` body).
        ServiceUnavailable: MLflow failed otherwise (an outage: retry later).
    """
    with scratch_dir("mlpipeline-model-") as folder:
        tmp = str(folder)  # MLflow's dst_path, and the sys.path entries under it
        try:
            try:
                if only is None:
                    local = mlflow.artifacts.download_artifacts(
                        artifact_uri=model_uri, dst_path=tmp
                    )
                else:  # the model's repository resolves runs:/, models:/name@alias, models:/m-<id>
                    local = get_artifact_repository(model_uri).download_artifacts(only, tmp)
            except (MlflowException, OSError) as exc:
                if here := download_failure(model_uri, tempfile.gettempdir(), exc):
                    raise here from exc
                raise
            yield local
        except MlflowException as exc:
            codes = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")
            if exc.error_code in codes:
                raise InvalidInput(f"no model at {model_uri} ({exc.message})") from exc
            raise ServiceUnavailable(f"MLflow failed to read {model_uri}: {exc.message}") from exc
        except OSError as exc:
            raise InvalidInput(f"no readable model at {model_uri} ({exc})") from exc
        finally:
            sys.path[:] = [p for p in sys.path if not str(p).startswith(tmp)]
            end_download_threads()


def download_failure(model_uri: str, folder: str | os.PathLike, exc: Exception | None = None,
                     tracking_uri: str | None = None,
                     setting: str = "TMPDIR") -> ServiceUnavailable | None:  # fmt: skip
    """A ``ServiceUnavailable`` when downloading ``model_uri`` into ``folder`` (which the
    environment variable ``setting`` chooses) failed here, else None: ``exc`` is a full disk, or
    MLflow lists the model's ``MLmodel`` (every download, whole or of that one file, needs it),
    so the model is there.

    MLflow's ``runs:/`` repository reports every failed download, a full disk included, as
    RESOURCE_DOES_NOT_EXIST (the cause only in its debug log), which read as "the run has no
    model": the run's fault, never retried, and an operator told to train again. Listing the
    model (one call, on failure only) tells the two apart; a model folder without the file
    (files deleted from the artifact store, a run's own ``model/`` folder) stays the run's fault.
    """
    if getattr(exc, "errno", None) not in DISK_FULL:
        try:
            # MLflow down: the caller's outage at once, not after the listing's own retries
            check_tracking(tracking_uri or mlflow.get_tracking_uri())
            found = mlflow.artifacts.list_artifacts(
                artifact_uri=model_uri, tracking_uri=tracking_uri
            )
        except Exception:  # cannot tell: the caller's reading stands
            return None
        if not any(PurePosixPath(f.path).name == MLMODEL_FILE_NAME and not f.is_dir
                   for f in found):  # fmt: skip
            return None
    cause = getattr(exc, "strerror", None) or "the download failed"
    return ServiceUnavailable(
        f"the model at {model_uri} could not be downloaded into {folder} ({cause}; "
        f"{free_space(folder)}): a full disk or a broken connection, not a problem of the run; "
        f"free space there (or point {setting} at a folder with room) and try again."
    )


def model_info(model_uri: str) -> ModelInfo:
    """The MLmodel of ``model_uri`` (flavors, metadata); ``InvalidInput`` when there is none.

    Reads that one small file (the dashboard asks this of every run it offers for choosing).
    """
    with _downloaded(model_uri, only=MLMODEL_FILE_NAME) as mlmodel:
        return Model.load(mlmodel).get_model_info()


def servable_problem(info) -> str | None:
    """Why the model described by ``info`` cannot be served by the predictor, or None."""
    if info.metadata and info.metadata.get(FORMAT_KEY) == FORMAT:
        return None
    if "pytorch" in info.flavors:
        return (
            "its model was logged before models carried their own code (a bare PyTorch model "
            "that loads only inside this repository); train it again to deploy it (python -m "
            "trainer --from-run RUN_ID retrains the run's settings; evaluate and choose the new "
            "run)"
        )
    flavors = ", ".join(f for f in info.flavors if f != "python_function") or "python_function"
    return f"its model is not an image classifier of this pipeline ({flavors} flavor)"


def load_torch(model_uri: str, files: str | None = None) -> torch.nn.Module:
    """The PyTorch module of a pipeline model (either format), on the CPU in eval mode; files
    other than ``files`` (their digest, when given) are refused before they are read."""
    with _downloaded(model_uri) as local:
        if files:
            checked_files(local, model_uri, files)
        info = Model.load(local).get_model_info()
        if "pytorch" in info.flavors:
            import mlflow.pytorch

            _alias_legacy_modules()
            return mlflow.pytorch.load_model(local, map_location="cpu").eval()
        return _classifier_at(local, info, model_uri).model


def load_classifier(model_uri: str, files: str | None = None) -> ImageClassifierModel:
    """The served form of a pipeline model: ``predict`` on images, ``model`` the module, and
    ``files_digest`` the ``runs.files_digest`` of the files it was loaded from.

    Args:
        files: The files' digest they must have (a chosen version's tag ``files_digest``),
            checked before anything of them is read: loading unpickles, which runs code.

    Raises:
        InvalidInput: No model there, or not a self-contained model of this pipeline.
        FilesRefused: Its files are not those of ``files``.
        ServiceUnavailable: MLflow failed otherwise (an outage: retry later).
    """
    with _downloaded(model_uri) as local:
        actual = checked_files(local, model_uri, files)
        classifier = _classifier_at(local, Model.load(local).get_model_info(), model_uri)
        classifier.files_digest = actual
        return classifier


def _classifier_at(local: str, info: ModelInfo, model_uri: str) -> ImageClassifierModel:
    """``load_classifier`` of the model downloaded to ``local``."""
    problem = servable_problem(info)
    if problem:
        raise InvalidInput(f"{model_uri} cannot be served: {problem}.")
    try:
        with warnings.catch_warnings():  # its decoding_note is answered (/ready, the evaluation)
            warnings.simplefilter("ignore", DecodingWarning)
            loaded = mlflow.pyfunc.load_model(local)
    except (MlflowException, OSError, ImportError) as exc:
        raise InvalidInput(f"the model at {model_uri} does not load ({exc})") from exc
    wrapper = loaded.unwrap_python_model()
    if type(wrapper).__name__ != ImageClassifierModel.__name__:
        raise InvalidInput(f"{model_uri} holds a {type(wrapper).__name__}, not a classifier")
    return wrapper
