"""DICOM via pydicom's bundled files: rescale, window, MONOCHROME1, multi-frame, corrupt files."""

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from dataloader import describe_skipped, load_dataset
from dataloader.dicom import read_dicom
from dataloader.images import read_header
from mlpipeline_model import ImageDecodeError


def test_dicom_folder_loads_ct_and_mr(dicom_folder):
    ds = load_dataset(dicom_folder, image_size=64, val_fraction=0)
    assert ds.class_names == ["ct", "mr"]
    assert ds.channels == 1
    assert ds.train.images.shape == (2, 64, 64, 1)
    assert ds.stats["original_sizes"]["max"] == [128, 128]
    assert ds.stats["original_sizes"]["min"] == [64, 64]


def test_window_centre_and_width_are_applied():
    path = get_testdata_file("MR_small.dcm")
    raw = pydicom.dcmread(path).pixel_array.astype(float)  # window 600 ± 800, no rescale
    image = read_dicom(path)
    assert image[raw <= 600 - 0.5 - 1599 / 2].max(initial=0) == 0
    assert (image[raw > 600 - 0.5 + 1599 / 2] == 255).all()
    inside = (raw > 300) & (raw < 900)
    expected = ((raw[inside] - 599.5) / 1599 + 0.5) * 255
    np.testing.assert_allclose(image[inside], expected, atol=1.0)


def test_without_window_the_rescaled_values_are_stretched_between_percentiles():
    path = get_testdata_file("CT_small.dcm")  # rescale slope 1, intercept -1024, no window
    raw = pydicom.dcmread(path).pixel_array.astype(float)
    image = read_dicom(path)
    assert image.dtype == np.uint8 and image.min() == 0 and image.max() == 255
    low, high = np.percentile(raw, [0.5, 99.5])
    expected = np.clip((raw - low) / (high - low) * 255, 0, 255)
    np.testing.assert_allclose(image, expected, atol=1.0)


def _ct_with(tmp_path: Path, change, **attributes) -> np.ndarray:
    """CT_small.dcm decoded after ``change(pixels)`` edited its stored pixels in place (and
    ``attributes`` were set)."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # PixelPaddingValue -2000, unused
    pixels = ds.pixel_array.copy()
    change(pixels)
    ds.PixelData = pixels.tobytes()
    for name, value in attributes.items():
        setattr(ds, name, value)
    ds.save_as(tmp_path / "changed.dcm")
    return read_dicom(tmp_path / "changed.dcm").astype(float)


def test_one_burned_in_marker_does_not_darken_the_rest_of_the_image(tmp_path):
    original = read_dicom(get_testdata_file("CT_small.dcm")).astype(float)
    marked = _ct_with(tmp_path, lambda pixels: pixels.__setitem__((0, 0), 32000))
    assert marked[0, 0] == 255
    assert abs(marked[1:].mean() - original[1:].mean()) < 1  # min/max stretch: 96 -> 6


def test_padding_pixels_are_black_and_left_out_of_the_stretch(tmp_path):
    original = read_dicom(get_testdata_file("CT_small.dcm")).astype(float)
    padded = _ct_with(tmp_path, lambda pixels: pixels[:, :8].fill(-2000))  # its padding value
    assert (padded[:, :8] == 0).all()
    # The scanned field keeps its look: with padding in the stretch its mean rose by 70.
    assert abs(padded[:, 8:].mean() - original[:, 8:].mean()) < 3


def test_padding_is_black_in_a_monochrome1_image_too(tmp_path):
    padded = _ct_with(
        tmp_path, lambda pixels: pixels[:, :8].fill(-2000), PhotometricInterpretation="MONOCHROME1"
    )
    assert (padded[:, :8] == 0).all() and padded[:, 8:].mean() > 100  # the field is inverted


def test_padding_is_black_in_a_windowed_monochrome1_image(tmp_path):
    padded = _ct_with(
        tmp_path,
        lambda pixels: pixels[:, :20].fill(-2000),
        PhotometricInterpretation="MONOCHROME1",
        WindowCenter=40,
        WindowWidth=400,
    )
    assert (padded[:, :20] == 0).all() and padded[:, 20:].mean() > 100  # it was 255: white


def test_an_image_of_padding_only_is_refused_not_a_black_image(tmp_path):
    with pytest.raises(ImageDecodeError, match="padding pixels only"):
        _ct_with(tmp_path, lambda pixels: pixels.fill(-2000))


def test_a_windowed_image_of_padding_only_is_refused_as_an_unwindowed_one_is(tmp_path):
    with pytest.raises(ImageDecodeError, match="padding pixels only"):
        _ct_with(tmp_path, lambda pixels: pixels.fill(-2000), WindowCenter=40, WindowWidth=400)


def test_rescale_slope_is_applied(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.RescaleSlope = -1  # flips the value order: the stretched image must be inverted
    ds.save_as(tmp_path / "neg.dcm")
    original = read_dicom(get_testdata_file("CT_small.dcm")).astype(int)
    # Equal but for values halfway between two levels (rounded to even, so not mirrored).
    np.testing.assert_allclose(read_dicom(tmp_path / "neg.dcm"), 255 - original, atol=1)


def _saved(tmp_path: Path, source: str, **attributes) -> Path:
    ds = pydicom.dcmread(get_testdata_file(source))
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.save_as(tmp_path / "edited.dcm")
    return tmp_path / "edited.dcm"


@pytest.mark.parametrize("window", [{"WindowCenter": None}, {"WindowWidth": None},
                                    {"WindowWidth": 0}])  # fmt: skip
def test_an_empty_or_unusable_window_reads_as_none(tmp_path, window):
    """An export writing the window's attributes empty was refused with a TypeError."""
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    del ds.WindowCenter, ds.WindowWidth
    ds.save_as(none := tmp_path / "none.dcm")
    np.testing.assert_array_equal(read_dicom(_saved(tmp_path, "MR_small.dcm", **window)),
                                  read_dicom(none))  # fmt: skip


@pytest.mark.parametrize(("empty", "identity"), [("RescaleSlope", 1), ("RescaleIntercept", 0)])
def test_an_empty_rescale_value_is_the_standards_identity(tmp_path, empty, identity):
    window = {"WindowCenter": 40, "WindowWidth": 400}  # the intercept matters under a window
    expected = read_dicom(_saved(tmp_path, "CT_small.dcm", **{empty: identity}, **window))
    got = read_dicom(_saved(tmp_path, "CT_small.dcm", **{empty: None}, **window))
    np.testing.assert_array_equal(got, expected)


def test_both_rescale_values_empty_read_as_no_rescale(tmp_path):
    window = {"WindowCenter": 40, "WindowWidth": 400}
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.RescaleSlope, ds.RescaleIntercept
    for keyword, value in window.items():
        setattr(ds, keyword, value)
    ds.save_as(none := tmp_path / "none.dcm")
    got = read_dicom(_saved(tmp_path, "CT_small.dcm", RescaleSlope=None, RescaleIntercept=None,
                            **window))  # fmt: skip
    np.testing.assert_array_equal(got, read_dicom(none))


def test_monochrome1_is_inverted(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "mono1.dcm")
    original = read_dicom(get_testdata_file("MR_small.dcm")).astype(int)
    np.testing.assert_array_equal(read_dicom(tmp_path / "mono1.dcm"), 255 - original)


def test_multi_frame_gives_the_first_frame():
    path = get_testdata_file("SC_rgb_rle_2frame.dcm")
    frames = pydicom.dcmread(path).pixel_array
    assert frames.ndim == 4
    np.testing.assert_array_equal(read_dicom(path), frames[0])


def test_corrupt_dicom_is_skipped(dicom_folder):
    (dicom_folder / "train" / "ct" / "broken.dcm").write_bytes(b"DICM" * 50)
    ds = load_dataset(dicom_folder, image_size=32, val_fraction=0)
    assert len(ds.train) == 2
    assert [s["file"] for s in ds.skipped] == ["train/ct/broken.dcm"]


@pytest.mark.parametrize(
    "name", ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm"]
)
def test_losslessly_compressed_dicom_reads_as_its_uncompressed_original(name):
    # JPEG-LS needs python-gdcm (requirements.txt); JPEG 2000 and RLE decode without it
    original = read_dicom(get_testdata_file("MR_small.dcm"))
    np.testing.assert_array_equal(read_dicom(get_testdata_file(name)), original)


def test_jpeg_lossless_dicom_as_pacs_export_it_is_read():
    path = get_testdata_file("SC_rgb_jpeg_gdcm.dcm")  # JPEG Lossless, Process 14 SV1
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
    image = read_dicom(path)
    assert image.shape == (100, 100, 3) and image.dtype == np.uint8 and image.std() > 0


def _the_skipped_copy(dicom_folder: Path, source: str, name: str) -> dict:
    """Copy pydicom's test file ``source`` into the test split's ``mr`` class as ``name``; the
    one entry the loader skips, which must be that copy."""
    shutil.copy(get_testdata_file(source), dicom_folder / "test" / "mr" / name)
    [entry] = load_dataset(dicom_folder, image_size=32, splits=("test",)).skipped
    assert entry["file"] == f"test/mr/{name}"
    return entry


def test_dicom_in_a_compression_without_a_decoder_is_skipped_naming_it(dicom_folder):
    entry = _the_skipped_copy(dicom_folder, "JPGExtended.dcm", "x.dcm")
    assert "compressed as JPEG Extended (Process 2 and 4)" in entry["reason"]
    assert "export it uncompressed" in entry["reason"]


def test_a_skipped_12_bit_jpeg_names_its_transfer_syntax_and_the_packages_that_read_it(
    dicom_folder,
):
    """It said "compressed as JPEG Extended (Process 2 and 4) cannot be decoded here" and what
    GDCM and Pillow refuse, cut at 300 characters: neither the UID nor what would read it."""
    from pydicom.pixels import get_decoder

    if not get_decoder("1.2.840.10008.1.2.4.51").missing_dependencies:
        pytest.skip("every plugin of pydicom for 12-bit JPEG is installed here")
    entry = _the_skipped_copy(dicom_folder, "JPGExtended.dcm", "x.dcm")
    assert entry["reason"].startswith(
        "cannot decode: DICOM pixel data compressed as JPEG Extended (Process 2 and 4) (transfer "
        "syntax 1.2.840.10008.1.2.4.51, 12 bits stored) cannot be decoded by this installation: "
        "pydicom would read it with its pylibjpeg plugin (needs pylibjpeg"
    )
    assert "pylibjpeg-libjpeg" in entry["reason"]
    assert (
        "export it uncompressed or as JPEG Lossless, JPEG-LS, JPEG 2000 or RLE" in entry["reason"]
    )
    line = describe_skipped(
        load_dataset(dicom_folder, image_size=32, splits=("test",)).skipped, "x"
    )
    assert line.startswith("1 file was left out (unreadable, or not an image): test/mr/x.dcm (")


@pytest.mark.parametrize(
    ("uid", "readers"),
    [
        ("1.2.840.10008.1.2.4.201", "pydicom would read it with its pylibjpeg plugin (needs "),
        ("1.2.840.10008.1.2.4.100.1", "pydicom has no decoder for it, whatever is installed"),
    ],
)
def test_a_compression_without_an_installed_decoder_names_the_syntax_and_what_reads_it(
    dicom_folder, uid, readers
):
    """High-Throughput JPEG 2000 (read by pylibjpeg-openjpeg, not GDCM) and MPEG-2 video (no
    decoder of pydicom's): the syntax's name, its UID and what would read it."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    if uid.endswith(".201") and get_decoder(uid).is_available:
        pytest.skip("a decoder of High-Throughput JPEG 2000 is installed here")
    ds = pydicom.dcmread(get_testdata_file("MR_small_jp2klossless.dcm"))
    ds.file_meta.TransferSyntaxUID = UID(uid)
    ds.save_as(dicom_folder / "test" / "mr" / "x.dcm", enforce_file_format=True)
    [entry] = load_dataset(dicom_folder, image_size=32, splits=("test",)).skipped
    assert entry["file"] == "test/mr/x.dcm"
    said = entry["reason"]
    assert f"compressed as {UID(uid).name} (transfer syntax {uid}, 16 bits stored)" in said
    assert f"cannot be decoded by this installation: {readers}" in said


def test_truncated_dicom_pixels_are_skipped(dicom_folder):
    shutil.copy(get_testdata_file("MR_truncated.dcm"), dicom_folder / "test" / "mr" / "t.dcm")
    ds = load_dataset(dicom_folder, image_size=32, splits=("test",))
    assert ds.test.files == ["test/ct/CT_small.dcm", "test/mr/MR_small.dcm"]
    assert ds.skipped[0]["file"] == "test/mr/t.dcm"


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_grey_dicom_becomes_rgb_on_request(dicom_folder, name):
    ds = load_dataset(dicom_folder, image_size=16, channels=3, splits=("test",))
    index = [f.endswith(name) for f in ds.test.files].index(True)
    image = ds.test.images[index]
    np.testing.assert_array_equal(image[..., 0], image[..., 1])


def test_palette_colour_becomes_rgb():
    path = get_testdata_file("examples_palette.dcm")
    image = read_dicom(path)
    assert image.shape == (350, 800, 3) and image.dtype == np.uint8
    assert (image[..., 0] != image[..., 1]).any()


def test_dicom_folder_of_colour_and_grey_defaults_to_rgb(dicom_folder):
    shutil.copy(get_testdata_file("SC_rgb_small_odd.dcm"), dicom_folder / "train" / "ct" / "c.dcm")
    ds = load_dataset(dicom_folder, image_size=8, val_fraction=0)
    assert ds.channels == 3 and ds.train.images.shape == (3, 8, 8, 3)


@pytest.mark.parametrize("name", ["IM0001", "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"])
def test_dicom_files_named_without_dcm_are_read_by_their_content(dicom_folder, name):
    # PACS exports name DICOM files IM0001 or by their UID ("suffix" .12322).
    (dicom_folder / "test" / "mr" / "MR_small.dcm").rename(dicom_folder / "test" / "mr" / name)
    ds = load_dataset(dicom_folder, image_size=32, splits=("test",))
    assert ds.test.files == ["test/ct/CT_small.dcm", f"test/mr/{name}"] and ds.skipped == []
    np.testing.assert_array_equal(ds.test.groups, ["test-ct", "test-mr"])  # PatientID read


def test_a_dicom_file_without_an_image_is_skipped_saying_so(dicom_folder):
    entry = _the_skipped_copy(dicom_folder, "reportsi.dcm", "report")
    assert "a DICOM file without an image (Basic Text SR Storage, " in entry["reason"]


def test_a_dcm_file_without_the_part_10_header_says_so(dicom_folder):
    raw = (dicom_folder / "test" / "mr" / "MR_small.dcm").read_bytes()[132:]  # no preamble, DICM
    (dicom_folder / "test" / "mr" / "raw.dcm").write_bytes(raw)
    ds = load_dataset(dicom_folder, image_size=32, splits=("test",))
    [entry] = ds.skipped
    assert entry["file"] == "test/mr/raw.dcm" and "without the Part 10 header" in entry["reason"]


def test_a_header_declaring_too_many_frames_is_refused_before_the_pixels(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.NumberOfFrames = 100000
    ds.save_as(tmp_path / "many.dcm", enforce_file_format=True)
    with pytest.raises(ImageDecodeError, match=r"declares 100,000 frames, more than the 10,000"):
        read_header(tmp_path / "many.dcm")


def test_the_header_gives_a_dicom_file_s_modality():
    assert read_header(Path(get_testdata_file("CT_small.dcm")))[4] == "CT"


def test_the_modalities_of_the_training_images_are_counted(dicom_folder):
    ds = load_dataset(dicom_folder, image_size=32, val_fraction=0)
    assert ds.stats["modalities"] == {
        "counts": {"CT": 1, "MR": 1},
        "no_modality": 0,
        "multi_frame": 0,
        "not_dicom": 0,
        "splits": ["train"],
    }


def test_a_dicom_file_without_modality_counts_as_such(dicom_folder):
    ds = pydicom.dcmread(dicom_folder / "train" / "ct" / "CT_small.dcm")
    del ds.Modality
    ds.save_as(dicom_folder / "train" / "ct" / "CT_small.dcm")
    stats = load_dataset(dicom_folder, image_size=32, val_fraction=0).stats["modalities"]
    assert stats["counts"] == {"MR": 1} and stats["no_modality"] == 1


def test_a_dicom_object_that_is_not_an_image_is_skipped_with_its_reason(dicom_folder):
    """An RT dose grid holds pixel data but is no picture: the served model refuses it, so the
    dataloader does not train on it (it read its first frame as an image)."""
    from tests.dataloader.conftest import write_dicom

    write_dicom(dicom_folder / "train" / "ct" / "dose.dcm", "rtdose.dcm", patient="dose")
    ds = load_dataset(dicom_folder, image_size=32, splits=("train",))
    assert "ct/dose.dcm" not in " ".join(ds.train.files)
    [skipped] = [s for s in ds.stats["skipped"] if s["file"].endswith("dose.dcm")]
    assert "a DICOM object that is not an image (RT Dose Storage" in skipped["reason"]


def test_multi_frame_training_files_are_counted_as_such(dicom_folder):
    """A cine loop is trained on by its first frame, but the served model refuses multi-frame
    files: the statistics count them, so that the trainer can say so."""
    from dataloader.stats import training_stats
    from tests.dataloader.conftest import write_dicom

    write_dicom(dicom_folder / "train" / "mr" / "cine.dcm", "examples_ybr_color.dcm", "cine")
    ds = load_dataset(dicom_folder, image_size=32, channels=1, splits=("train",))
    assert sorted(ds.train.frames.tolist()) == [1, 1, 30]
    assert training_stats(ds)["modalities"]["multi_frame"] == 1
