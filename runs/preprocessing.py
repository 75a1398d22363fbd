"""The preprocessing description that the trainer logs and every other service reads.

The trainer writes it as ``preprocessing.json`` at the root of the run's artifacts. Normalization
with ``mean``/``std`` happens inside the model, so inputs are float32 ``N×C×H×W`` in ``[0, 1]``.
"""

import numpy as np
import torch
from pydantic import BaseModel, Field

from mlpipeline_model import decoding_note


class Preprocessing(BaseModel):
    """How to turn an image into the model's input tensor."""

    image_size: tuple[int, int] = Field(description="(height, width) the images are resized to")
    channels: int = Field(description="1 for grey, 3 for RGB")
    class_names: list[str] = Field(description="class of each logit, in order")
    mean: list[float] = Field(description="per-channel mean in [0, 1], applied inside the model")
    std: list[float] = Field(description="per-channel std, applied inside the model")
    resize: str = "bilinear, antialiased"
    decoding_version: int | None = Field(
        None,
        description="version of the image decoding the training images went through "
        "(mlpipeline_model.DECODING_VERSION); null for runs trained before it was recorded",
    )
    modalities: list[str] | None = Field(
        None,
        description="DICOM Modality codes of the training images (their files' Modality, or the "
        "trainer's --modality): the logged model refuses DICOM inputs of any other; null: not "
        "known (images that are not DICOM, none declared) or trained before it was recorded",
    )
    multi_frame: bool = Field(
        False,
        description="the training read the first frame of multi-frame DICOM files (cine loops): "
        "the logged model takes such inputs by their first frame too; false: it refuses them",
    )
    input: str = (
        "PyTorch module: float32 N×C×H×W scaled to [0, 1] (uint8 / 255); the logged pyfunc "
        "model: uint8 0–255 N×H×W×C arrays or PNG/JPEG/DICOM files"
    )

    @property
    def decoding_note(self) -> str | None:
        """Why this process may decode the images differently from the run's training; None
        when it decodes as the training did, or the run predates the record."""
        return decoding_note(self.decoding_version)

    def to_tensor(self, images: np.ndarray) -> torch.Tensor:
        """Turn uint8 ``N×H×W×C`` images (already of ``image_size``) into the model's input."""
        if images.ndim != 4 or images.shape[-1] != self.channels:
            raise ValueError(
                f"expected uint8 images of shape N×H×W×{self.channels}, got {images.shape}"
            )
        if tuple(images.shape[1:3]) != tuple(self.image_size):
            # The model would run on any size (global pooling) and answer nonsense.
            height, width = self.image_size
            raise ValueError(
                f"expected images of {height}×{width} pixels, the size the model was trained "
                f"on, got {images.shape[1]}×{images.shape[2]}; load them with "
                "dataloader.load_dataset(..., image_size=preprocessing.image_size)"
            )
        return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
