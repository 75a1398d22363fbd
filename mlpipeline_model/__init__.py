"""The code that travels with every logged model: architectures, image decoding, pyfunc wrapper.

It depends only on torch, torchvision, numpy, pandas, Pillow and pydicom (never on other
packages of this repository), because the trainer logs this folder with the model
(``code_paths``) and a downstream process loads it without the repository.
"""

from mlpipeline_model.dicom import (
    COLOUR_INTERPRETATIONS,
    check_image,
    dicom_pixels,
    frame_count,
    open_dicom,
)
from mlpipeline_model.images import (
    HEAD_BYTES,
    NOT_AN_IMAGE,
    conform,
    declared_pixels,
    decode_image,
    image_kind,
    is_grey,
    open_image,
    pil_pixels,
    stored_bits,
    undecodable,
    upright_size,
)
from mlpipeline_model.modality import (
    MODALITY_CODES,
    check_dicom_input,
    dicom_modality,
    modality_note,
    not_an_image,
    parse_modalities,
)
from mlpipeline_model.models import MODEL_NAMES, Ensemble, ImageClassifier, SmallCNN, build_model
from mlpipeline_model.ood import OODReference, conformal_threshold, reference_of
from mlpipeline_model.pixels import (
    DECODING_VERSION,
    MAX_DISTORTION,
    MAX_FRAMES,
    MAX_PIXELS,
    MAX_UPSCALE,
    ImageDecodeError,
    check_pixels,
    decoding_note,
    distortion,
    misfit,
    too_small,
)
from mlpipeline_model.pyfunc import (
    DECISION_COLUMN,
    FORMAT,
    OOD_COLUMN,
    OOD_SCORE_COLUMN,
    PREDICTED_COLUMN,
    TORCH_ARTIFACT,
    ImageClassifierModel,
    threshold_labels,
)

__all__ = [
    "COLOUR_INTERPRETATIONS",
    "DECISION_COLUMN",
    "DECODING_VERSION",
    "FORMAT",
    "HEAD_BYTES",
    "MAX_DISTORTION",
    "MAX_FRAMES",
    "MAX_PIXELS",
    "MAX_UPSCALE",
    "MODALITY_CODES",
    "MODEL_NAMES",
    "NOT_AN_IMAGE",
    "OOD_COLUMN",
    "OOD_SCORE_COLUMN",
    "PREDICTED_COLUMN",
    "TORCH_ARTIFACT",
    "Ensemble",
    "ImageClassifier",
    "ImageClassifierModel",
    "ImageDecodeError",
    "OODReference",
    "SmallCNN",
    "build_model",
    "check_dicom_input",
    "check_image",
    "check_pixels",
    "conform",
    "conformal_threshold",
    "declared_pixels",
    "decode_image",
    "decoding_note",
    "dicom_modality",
    "dicom_pixels",
    "distortion",
    "frame_count",
    "image_kind",
    "is_grey",
    "misfit",
    "modality_note",
    "not_an_image",
    "open_dicom",
    "open_image",
    "parse_modalities",
    "pil_pixels",
    "reference_of",
    "stored_bits",
    "threshold_labels",
    "too_small",
    "undecodable",
    "upright_size",
]
