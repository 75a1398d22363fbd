"""Which DICOM inputs a model may classify: its training modalities, single images only.

A model records the DICOM ``Modality`` codes of the images it was trained on (``US``, ``CT``,
``XC`` for photographs...), from its DICOM training files or the trainer's ``--modality``.
``check_dicom_input`` refuses, before the pixels are decoded, a file that is no image (an RT
dose grid, a segmentation, a report), a multi-frame file (a cine loop or a volume: the model
classifies one image; a model trained on the first frames of such files takes their first frame,
as its training did) and, when the model knows its modalities, an image of another modality: a
model of breast ultrasound gave a CT slice class "1" at 0.95, an answer with no meaning.
"""

from collections.abc import Sequence

from mlpipeline_model.dicom import frame_count, has_pixels, sop_class
from mlpipeline_model.pixels import ImageDecodeError

# The defined terms of DICOM's Modality (PS3.3 C.7.3.1.1.1), retired ones included: what
# ``--modality`` accepts, so that a typo does not make a model that refuses every file.
_CODES = """ANN AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DG DMS DOC DX ECG EEG EMG EOG EPS ES FID
    GM HC HD IO IOL IVOCT IVUS KER KO LEN LS M3D MG MR NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV
    OSS OT PA PLAN POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD
    RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA XAPROTOCOL XC
    AS CD CF CP CS DD DF DM DS EC FA FS LP MA MS OPR ST VF"""
MODALITY_CODES = frozenset(_CODES.split())
EXAMPLES = "US, CT, MR, CR, DX, MG, XC (clinical photographs), DMS (dermoscopy), OT"
# Codes of DICOM objects that are not images (reports, dose grids, segmentations, plans,
# waveforms, registrations...): a model declared so would refuse every image it is sent.
_OBJECTS = """ANN AR ASMT AU CTPROTOCOL DOC ECG EEG EMG EOG EPS FID HD IOL KER KO LEN M3D OAM OPV
    PLAN POS PR REG RESP RTDOSE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SMR SR
    SRF STAIN TEXTUREMAP VA XAPROTOCOL"""
NOT_IMAGES = frozenset(_OBJECTS.split())


def parse_modalities(text: str) -> list[str]:
    """``"us, CT"`` → ``["CT", "US"]``: DICOM Modality codes, upper-cased, sorted, unique.

    Raises:
        ValueError: No code, or one that is not a DICOM Modality code (one line saying which).
    """
    codes = sorted({part.strip().upper() for part in text.split(",") if part.strip()})
    if not codes:
        raise ValueError(f"name at least one DICOM Modality code, such as {EXAMPLES}")
    if unknown := [c for c in codes if c not in MODALITY_CODES]:
        raise ValueError(
            f"{', '.join(unknown)} is not a DICOM Modality code; use codes such as {EXAMPLES}"
        )
    if objects := [c for c in codes if c in NOT_IMAGES]:
        raise ValueError(
            f"{', '.join(objects)} is the Modality of DICOM objects that are not images (reports, "
            "dose grids, segmentations...): a model declared so would refuse every image; use "
            f"the images' own codes, such as {EXAMPLES}"
        )
    return codes


def dicom_modality(ds) -> str:
    """The file's ``Modality`` (upper-cased, stripped); ``""`` when it has none."""
    return str(ds.get("Modality", "") or "").strip().upper()


def not_an_image(ds, with_pixels: bool = True) -> str | None:
    """What the DICOM dataset ``ds`` is when it is not an image a classifier can read (an RT
    dose grid, a segmentation, a structured report, a file without pixel data); None for an
    image. A SOP class that pydicom knows is an image when its name says "Image Storage"; an
    unknown (private) one is judged by its pixel data alone (``with_pixels`` False: ``ds`` was
    read without it, so only by its Rows and Columns)."""
    sop = sop_class(ds)
    name = getattr(sop, "name", "") if sop is not None else ""
    known = sop is not None and name != str(sop)  # pydicom names a UID it knows
    if known and "Image Storage" not in name:
        return name
    if not has_pixels(ds, with_pixels):
        return f"{name or 'no SOP class'}, without pixel data"
    return None


def check_dicom_input(ds, modalities: Sequence[str] | None, multi_frame: bool = False) -> None:
    """Refuse a DICOM input that the model, trained on images of ``modalities`` (None: not
    recorded, none refused), cannot read: not an image, more than one frame (unless
    ``multi_frame``: the model was trained on the first frames of such files, and is given the
    first frame as its training was), or (with ``modalities``) another modality or none.

    Raises:
        ImageDecodeError: One line naming what the file is and what the model takes.
    """
    modality = dicom_modality(ds)
    if what := not_an_image(ds):
        raise ImageDecodeError(
            f"the DICOM file ({what}, Modality {modality or 'not given'}) is not an image this "
            "model can read; send the image itself"
        )
    if (frames := frame_count(ds)) > 1 and not multi_frame:
        raise ImageDecodeError(
            f"the DICOM file holds {frames:,} frames (a cine loop, a series or a volume); this "
            "model classifies single images: send the frame to classify as its own "
            "single-frame file"
        )
    if not modalities or modality in modalities:
        return
    trained = ", ".join(modalities)
    if not modality:
        raise ImageDecodeError(
            f"the DICOM file has no Modality; this model was trained on {trained} images only "
            f"and cannot tell that this one is such an image: send a file whose Modality is "
            f"{' or '.join(modalities)}"
        )
    raise ImageDecodeError(
        f"the DICOM file's Modality is {modality}; this model was trained on {trained} images "
        f"only, so its answer for this image would mean nothing: send it to a model "
        f"trained on {modality}"
    )


def modality_note(modalities: Sequence[str] | None, recorded: bool = True) -> str | None:
    """Why a model classifies DICOM files of any modality: it records none (``recorded``: the
    model was logged with the guard, its training images were not DICOM and no ``--modality``
    was declared) or predates the record; None when it knows its modalities."""
    if modalities:
        return None
    if not recorded:
        return (
            "the model was logged before models recorded their modality: DICOM files of every "
            "modality, multi-frame and non-image files included, are classified as before"
        )
    return (
        "the model records no modality (its training images were not DICOM and no --modality "
        "was declared): DICOM images of every modality are classified; train it with "
        "--modality CODE to have other modalities refused"
    )
