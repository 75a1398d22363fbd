"""Compressed DICOM pixel data whose own stream declares another size than the header is refused
before a decoder runs: GDCM aborted the whole process on one such JPEG-LS file, and a 64×64
header around a 12000×12000 JPEG 2000 stream cost gigabytes. Real files: pydicom's test files."""

import glob
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.uid import JPEG2000Lossless, SecondaryCaptureImageStorage, generate_uid

from mlpipeline_model import ImageDecodeError, decode_image
from mlpipeline_model.codestream import check_stream

ROOT = Path(__file__).resolve().parents[2]


def _dicom_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_jpeg_ls_file_declaring_more_columns_than_its_stream_is_refused_not_a_crash(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("JPEGLSNearLossless_08.dcm"))  # 45×10 stream
    ds.Columns = 190
    path = tmp_path / "forged.dcm"
    path.write_bytes(_dicom_bytes(ds))
    # In a child process: before the check, GDCM aborted the interpreter (SIGABRT)
    code = (
        "from mlpipeline_model import decode_image\n"
        "try:\n"
        f"    decode_image(open({str(path)!r}, 'rb').read())\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == (
        "the DICOM file's compressed image is 45×10 with 1 component(s), but its header "
        "declares Rows 45, Columns 190, SamplesPerPixel 1: the file is damaged or forged; "
        "re-export it from its source"
    )


def test_a_jpeg_2000_stream_larger_than_its_header_is_refused_before_decoding():
    stream = io.BytesIO()
    Image.fromarray(np.full((640, 480), 90, np.uint8)).save(stream, "JPEG2000", irreversible=False)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = JPEG2000Lossless
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta, ds.SOPClassUID = meta, SecondaryCaptureImageStorage
    ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPInstanceUID, "OT"
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = encapsulate([stream.getvalue()])
    ds["PixelData"].VR = "OB"
    with pytest.raises(ImageDecodeError, match=r"^the DICOM file's compressed image is 640×480 "):
        decode_image(_dicom_bytes(ds))


def test_every_readable_compressed_test_file_of_pydicom_passes_the_check():
    folder = Path(get_testdata_file("CT_small.dcm")).parent
    checked = 0
    for path in sorted(glob.glob(str(folder / "*.dcm"))):
        try:
            ds = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:  # a test file without a preamble
            continue
        syntax = ds.file_meta.get("TransferSyntaxUID")
        if syntax is None or not syntax.is_encapsulated or "PixelData" not in ds:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds.pixel_array_options(index=0)
                ds.pixel_array  # noqa: B018 (decodable: its stream must pass)
        except Exception:  # damaged on purpose, or no decoder here
            continue
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        frame = get_frame(ds.PixelData, 0, number_of_frames=frames)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        check_stream(str(syntax), frame, int(ds.Rows), int(ds.Columns), samples)
        checked += 1
    assert checked >= 20  # JPEG baseline, lossless, JPEG-LS, JPEG 2000, RLE among them
