"""The logged model's ``python_function`` face: images in, class probabilities out.

``ImageClassifierModel`` wraps the pickled PyTorch classifier (an artifact of the logged model)
with the run's preprocessing, so a downstream process needs neither this repository nor a
separate preprocessing step: ``mlflow.pyfunc.load_model(uri).predict(images)``.
"""

import base64
import binascii
import functools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlpipeline_model.batches import stacked
from mlpipeline_model.colour import colour_note
from mlpipeline_model.images import conform, decode_image
from mlpipeline_model.modality import check_dicom_input, modality_note
from mlpipeline_model.ood import flagged, reference_of
from mlpipeline_model.pixels import (
    DECODING_VERSION,
    MAX_DISTORTION,
    MAX_UPSCALE,
    RELOAD_ADVICE,
    DecodingWarning,
    ImageDecodeError,
    decoding_note,
    distortion,
    misfit,
    too_small,
)

TORCH_ARTIFACT = "torch_model"
"""Key (and file name) of the pickled PyTorch module among the logged model's artifacts."""
PREDICTED_COLUMN = "predicted_class"
DECISION_COLUMN = "decision"
"""Two-class models with an operating point: the class by the threshold chosen on validation."""
OOD_SCORE_COLUMN = "ood_score"
"""Models with an out-of-distribution reference: the image's distance from the training images
over the threshold (``mlpipeline_model.ood``); above 1, out of distribution."""
OOD_COLUMN = "out_of_distribution"
"""Models with an out-of-distribution reference: whether ``ood_score`` exceeds 1."""
INPUT_NOTE_COLUMN = "input_note"
"""A grey model's column of what its reading dropped of each image (``colour_note``: a colour
image read as grey, its colours unused), else null; the predictor's answers' ``input_note``."""
ANSWER_COLUMNS = (
    PREDICTED_COLUMN, DECISION_COLUMN, OOD_SCORE_COLUMN, OOD_COLUMN, INPUT_NOTE_COLUMN
)  # fmt: skip
"""The columns an answer may hold beside one probability per class (no class may be named so):
``frame.drop(columns=ANSWER_COLUMNS, errors="ignore")`` leaves the probabilities."""
FORMAT = "mlpipeline-image-classifier/1"
"""Value of the ``mlpipeline_format`` entry of the MLmodel metadata of every model logged so."""


def threshold_labels(probs: np.ndarray, positive: int, threshold: float) -> np.ndarray:
    """Two classes: label ``positive`` where its probability reaches ``threshold``, else the
    other. Compared in float64 (the precision of every reported probability), so the evaluator,
    the predictor and the logged model decide alike at the threshold itself."""
    reached = np.asarray(probs)[:, positive].astype(np.float64) >= float(threshold)
    return np.where(reached, positive, 1 - positive)


try:  # the MLflow base class when MLflow is installed (always, where the model is loaded by it)
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover - a process that only uses the wrapper directly
    PythonModel = object  # type: ignore[assignment,misc]


class ImageClassifierModel(PythonModel):
    """Predict class probabilities for PNG/JPEG/DICOM bytes or uint8 ``N×H×W×C`` arrays.

    Attributes:
        image_size: ``(H, W)`` every image is resized to (bilinear, antialiased).
        channels: 1 (grey) or 3 (RGB); inputs are converted.
        class_names: Name of each output, in order.
        operating_point: Two-class models: the trainer's ``operating_point.json`` (the
            ``positive_class`` and its probability ``threshold`` chosen on validation for a
            target sensitivity), which adds the ``decision`` column; None otherwise.
        modalities: The DICOM Modality codes of its training images (``["US"]``), or None
            when not known (its training images were not DICOM and none was declared): a DICOM
            input of another modality is refused (``modality.check_dicom_input``), as are a
            non-image DICOM file and a multi-frame one (unless ``multi_frame``). A model pickled
            before this attribute existed has none and refuses none of these, as then.
        multi_frame: Its training read the first frame of multi-frame DICOM files (a cine
            loop): it takes such inputs the same way, where other models refuse them.
        model: The PyTorch module (float32 ``N×C×H×W`` in ``[0, 1]`` → logits), set on load.
    """

    # Inputs are bytes, base64 text or arrays: no type hint fits them all, so MLflow's type-hint
    # validation (and its warning that predict has no hints) is turned off.
    _skip_type_hint_validation = True

    def __init__(
        self,
        image_size: Sequence[int],
        channels: int,
        class_names: Sequence[str],
        batch_size: int = 64,
        operating_point: dict | None = None,
        decoding_version: int | None = None,
        modalities: Sequence[str] | None = None,
        multi_frame: bool = False,
    ) -> None:
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.channels = int(channels)
        self.class_names = [str(c) for c in class_names]
        self.batch_size = int(batch_size)
        self.operating_point = dict(operating_point) if operating_point else None
        self.decoding_version = DECODING_VERSION if decoding_version is None else decoding_version
        codes = sorted({str(m).strip().upper() for m in modalities or ()} - {""})
        self.modalities = codes or None
        self.multi_frame = bool(multi_frame)
        self.model = None

    @property
    def decoding_note(self) -> str | None:
        """Why this process may decode images differently from the model's training (its code
        is a newer or older copy than the one logged with the model); None when it cannot."""
        return decoding_note(self.__dict__.get("decoding_version"))  # absent: logged before it

    @property
    def guards_dicom(self) -> bool:
        """Whether DICOM inputs are checked (``modality.check_dicom_input``): models logged
        since the modality was recorded; older pickles lack the attribute and check nothing."""
        return "modalities" in self.__dict__

    @property
    def modality_note(self) -> str | None:
        """Why this model classifies DICOM images of any modality (it records none, or was
        logged before modalities were recorded); None when it refuses other modalities."""
        return modality_note(self.__dict__.get("modalities"), recorded=self.guards_dicom)

    def load_context(self, context) -> None:
        """Load the PyTorch module from the model's artifacts (CPU, eval mode); warn when this
        process decodes images otherwise than the model's training did (``decoding_note``: a
        process keeps the first ``mlpipeline_model`` it imports, not each model's own copy)."""
        self.load_torch(context.artifacts[TORCH_ARTIFACT])
        if note := self.decoding_note:
            warnings.warn(f"{note} ({RELOAD_ADVICE})", DecodingWarning, stacklevel=2)

    def load_torch(self, path: str) -> None:
        import torch

        self.model = torch.load(path, map_location="cpu", weights_only=False).eval()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["model"] = None  # the module travels as its own artifact, not inside this pickle
        return state

    # --- inputs -------------------------------------------------------------------------------

    def decode(self, data: bytes | str, index: int | None = None) -> np.ndarray:
        """One encoded image (bytes, or base64 text as JSON carries it) as uint8 ``H×W×C``."""
        return self.decode_with_note(data, index)[0]

    def decode_with_note(
        self, data: bytes | str, index: int | None = None
    ) -> tuple[np.ndarray, str | None]:
        """``decode``, and what the client should know of the image's conversion: that a colour
        image was read as grey by a grey model (``colour_note``), else None."""
        if isinstance(data, str):
            # Line breaks (base64 without -w0, MIME encoders) and a data URL's head are not data
            text = "".join(data.split())
            if text.startswith("data:") and ";base64," in text[:100]:
                text = text.split(";base64,", 1)[1]
            try:
                data = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ImageDecodeError(
                    f"text input must be a base64-encoded PNG, JPEG or DICOM image ({exc}; the "
                    f"text starts {text[:20]!r})",
                    index,
                ) from exc
        check = self._check_dicom if self.guards_dicom else None
        try:
            pixels = decode_image(bytes(data), check_dicom=check)
        except ImageDecodeError as exc:
            raise ImageDecodeError(str(exc), index) from exc
        self._check_size(pixels.shape[:2], index)
        note = colour_note(pixels, self.channels)
        return conform(pixels, self.image_size, self.channels), note

    def _check_dicom(self, ds) -> None:
        """Refuse a DICOM input that is no image, holds several frames (unless its training
        did) or is of another modality than the model's (``modality.check_dicom_input``)."""
        check_dicom_input(ds, self.modalities, self.__dict__.get("multi_frame", False))

    def _check_size(self, size: tuple[int, ...], index: int | None = None) -> None:
        """Refuse an image the model would have to stretch more than ``MAX_UPSCALE``× a side,
        or squash more than ``MAX_DISTORTION``× against its other side."""
        image, model = (size[0], size[1]), tuple(self.image_size)
        why = misfit(image, model)  # one check per image; which kind only when it misfits
        if why is None:
            return
        if too_small(image, model):
            height, width = self.image_size
            # a strip (one side far longer) is no thumbnail: it needs more pixels and a crop
            strip = distortion(image, model) > MAX_DISTORTION
            fix = f"send a larger original, cropped to at most {MAX_DISTORTION}:1"
            fix = fix if strip else "send the original image"
            raise ImageDecodeError(
                f"the image is {size[0]}×{size[1]} px (height×width); the model takes "
                f"{height}×{width} and stretches an image at most {MAX_UPSCALE}× a side: {fix}"
                f"{'' if strip else ', not a thumbnail'}",
                index,
            )
        raise ImageDecodeError(f"the image {why}: crop it to the region to classify", index)

    def to_batch(self, model_input: Any) -> np.ndarray:
        """Any accepted input as uint8 ``N×H×W×C`` of the model's size and channels (see
        ``read``)."""
        return self.read(model_input)[0]

    def read(self, model_input: Any) -> tuple[np.ndarray, list[str | None]]:
        """Any accepted input as uint8 ``N×H×W×C`` of the model's size and channels, and each
        image's note (``colour_note``: a colour image read as grey by a grey model, else None).

        Accepted: uint8 (or integer 0–255) arrays ``N×H×W×C`` or ``N×H×W`` of any size; bytes;
        a list of bytes or base64 strings; a one-column DataFrame of those.

        A 3-D array is ``N×H×W``, N grey images. For a colour model one whose first side is 3 or
        4 and last is not 1, 3 or 4 is refused (``_channel_first``): it is far more likely one
        channel-first image (``C×H×W``, as PyTorch holds it) than 3 or 4 grey images, and read
        as these it would answer one row per channel. ``N×H×W×1`` says grey images plainly.
        """
        if isinstance(model_input, pd.DataFrame):
            if model_input.shape[1] != 1:
                raise ImageDecodeError(
                    "a DataFrame input must have one column of encoded images (bytes or base64)"
                )
            model_input = list(model_input.iloc[:, 0])
        if isinstance(model_input, bytes | bytearray | str):
            model_input = [model_input]
        if isinstance(model_input, np.ndarray) and model_input.dtype.kind not in "OUS":
            return self._arrays(model_input)  # (JSON "inputs": [base64, ...] come as kind U)
        if isinstance(model_input, list | tuple | np.ndarray | pd.Series):
            items = list(model_input)
            if items and all(isinstance(i, bytes | bytearray | str) for i in items):
                images, notes = zip(
                    *(self.decode_with_note(item, i) for i, item in enumerate(items)), strict=True
                )
                return np.stack(images), list(notes)
            return self._arrays(stacked(items))
        raise ImageDecodeError(
            f"unsupported input {type(model_input).__name__}; send uint8 N×H×W×C images or "
            "encoded PNG/JPEG/DICOM bytes"
        )

    def _channel_first(self, images: np.ndarray) -> None:
        """Refuse a 3-D array that a colour model would read as 3 or 4 grey images but that is
        shaped as one channel-first RGB or RGBA image (``C×H×W``); see ``to_batch``. A grey
        model keeps the ``N×H×W`` reading: its channel-first image is ``1×H×W``, one image."""
        n, height, width = images.shape
        if self.channels == 1 or n not in (3, 4) or width in (1, 3, 4):
            return  # (last side 1, 3 or 4: an H×W×C image, which the size check words)
        # RGBA: the arrays take no alpha (the decoder drops it from RGBA files), so drop it too
        one = "np.moveaxis(image, 0, -1)[None]" if n == 3 else "np.moveaxis(image[:3], 0, -1)[None]"
        raise ImageDecodeError(
            f"got one {n}×{height}×{width} array, which reads as {n} grey images of "
            f"{height}×{width} px (N×H×W) but is shaped as one channel-first image (C×H×W, "
            f"PyTorch's order) and this model takes colour: send one image as 1×H×W×3 "
            f"({one}), or {n} grey images as {n}×H×W×1"
        )

    def _arrays(self, images: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
        if images.ndim == 3:
            self._channel_first(images)
        one_image = images.ndim == 3 and images.shape[-1] in (1, 3)  # or N grey images?
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
            raise ImageDecodeError(
                f"images must be uint8 N×H×W×C with C 1 or 3, got shape {images.shape}"
            )
        if images.dtype != np.uint8:
            if not np.issubdtype(images.dtype, np.number) or images.min() < 0 or images.max() > 255:
                raise ImageDecodeError("image arrays must hold uint8 values 0–255")
            if not np.issubdtype(images.dtype, np.integer) and not np.all(images % 1 == 0):
                # [0, 1]-scaled pixels would become a black image and a confident wrong answer
                raise ImageDecodeError(
                    f"image arrays must hold whole pixel values 0–255 (uint8); these "
                    f"{images.dtype} values have fractions (max {float(np.nanmax(images)):g}): "
                    "scale [0, 1] pixels by 255 and round, or send the image files"
                )
            images = images.astype(np.uint8)
        notes = ([colour_note(image, self.channels) for image in images]
                 if images.shape[-1] == 3 else [None] * len(images))  # fmt: skip
        if images.shape[1:] == (*self.image_size, self.channels):
            return images, notes
        try:
            self._check_size(images.shape[1:3])
        except ImageDecodeError as exc:
            if not one_image:
                raise
            raise ImageDecodeError(
                f"{exc} (read as {len(images)} grey images of {images.shape[1]}×"
                f"{images.shape[2]} px; for one H×W×C image send a batch of one: 1×H×W×C)"
            ) from exc
        return np.stack([conform(im, self.image_size, self.channels) for im in images]), notes

    # --- prediction ---------------------------------------------------------------------------

    @property
    def ood_check(self) -> dict | None:
        """What the model's out-of-distribution check is (``OODReference.summary``); None for a
        model trained without one, or before it existed."""
        reference = reference_of(self.model)
        return reference.summary() if reference is not None else None

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Softmax probabilities (``N×classes``) of uint8 ``N×H×W×C`` images of the model's size."""
        return self.assess(images)[0]

    def assess(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Softmax probabilities (``N×classes``) of uint8 ``N×H×W×C`` images of the model's size
        and, for a model with an out-of-distribution reference, each image's ``ood_score`` (else
        None), from one pass."""
        import torch

        if self.model is None:
            raise RuntimeError("the PyTorch model is not loaded (load_context was not called)")
        reference = reference_of(self.model)
        out, scores = [], []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                # torch wants a writable array (np.asarray of a PIL image is read-only).
                chunk = np.ascontiguousarray(chunk) if chunk.flags.writeable else chunk.copy()
                x = torch.from_numpy(chunk).permute(0, 3, 1, 2).float().div_(255.0)
                if reference is None:
                    logits = self.model(x)
                else:
                    features, logits = self.model.features_and_logits(x)
                    scores.append(reference.scores(features, x))
                # Softmax in float64, as the evaluator's (runs.inference): a validation image's
                # probability equal to the threshold must be decided alike by both.
                out.append(torch.softmax(logits.double(), dim=1).numpy())
        return np.concatenate(out), np.concatenate(scores) if reference is not None else None

    def decisions(self, probs: np.ndarray) -> list[str] | None:
        """The class of each image by the operating point's threshold (the positive class where
        its probability reaches it, else the other); None without an operating point."""
        point = getattr(self, "operating_point", None)  # models pickled before it existed
        if not point or len(self.class_names) != 2:
            return None
        positive = self.class_names.index(point["positive_class"])
        labels = threshold_labels(probs, positive, float(point["threshold"]))
        return [self.class_names[i] for i in labels]

    def table(self, probs: np.ndarray, ood: np.ndarray | None = None) -> pd.DataFrame:
        """One row per image: a probability column per class name, then ``predicted_class`` (the
        most probable class), then for models with an operating point ``decision``, then for
        models with an out-of-distribution reference (``ood``: its scores) ``ood_score`` and
        ``out_of_distribution``."""
        frame = pd.DataFrame(probs.astype(np.float64), columns=self.class_names)
        frame[PREDICTED_COLUMN] = [self.class_names[i] for i in probs.argmax(axis=1)]
        decisions = self.decisions(probs)
        if decisions is not None:
            frame[DECISION_COLUMN] = decisions
        if ood is not None:
            frame[OOD_SCORE_COLUMN] = np.asarray(ood, dtype=np.float64)
            frame[OOD_COLUMN] = flagged(frame[OOD_SCORE_COLUMN].to_numpy())
        return frame

    def predict(self, context, model_input, params=None):
        """Class probabilities of ``model_input`` (see ``read``) as a DataFrame (``table``; a
        grey model adds ``input_note``); an input that is not an image the model can read raises
        ``ImageDecodeError`` that is also MLflow's invalid-parameter error (``mlflow models
        serve``: a 400 with the reason, no traceback)."""
        try:
            batch, notes = self.read(model_input)
        except ImageDecodeError as exc:
            where = "" if exc.index is None else f"input {exc.index} (counted from 0): "
            raise _invalid_input_error()(where + str(exc), exc.index) from exc
        frame = self.table(*self.assess(batch))
        if self.channels == 1:  # only a grey model drops anything of an image it reads
            frame[INPUT_NOTE_COLUMN] = pd.Series(notes, dtype=object)
        return frame


@functools.cache
def _invalid_input_error() -> type:
    """``ImageDecodeError`` and ``MlflowException(INVALID_PARAMETER_VALUE)`` in one type, made
    on first use: importing MLflow takes a second, which the dataloader should not pay."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    class InvalidImageInput(MlflowException, ImageDecodeError):
        def __init__(self, message: str, index: int | None = None) -> None:
            super().__init__(message, error_code=INVALID_PARAMETER_VALUE)
            self.index = index

        def __reduce__(self):  # a class made here cannot be pickled by name: travel as its base
            return ImageDecodeError, (self.message, self.index)

    return InvalidImageInput
