"""Decoding refuses images that declare more pixels than ``MAX_PIXELS``, before decoding them."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, get_frame

from mlpipeline_model import MAX_PIXELS, ImageDecodeError, decode_image
from tests.images import png_declaring


def test_a_png_over_the_pixel_limit_is_refused_saying_how_large_it_is():
    with pytest.raises(ImageDecodeError, match=r"8000×6000 px is more than the 40 megapixels"):
        decode_image(png_declaring(8000, 6000))


def test_a_png_over_pil_s_own_bomb_limit_is_the_same_clear_error_in_our_words():
    with pytest.raises(ImageDecodeError, match=r"declares 400 megapixels, which is more than"):
        decode_image(png_declaring(20000, 20000))


def test_a_png_over_pil_s_bomb_limit_does_not_quote_pillow():
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(png_declaring(50000, 50000))
    assert "decompression bomb" not in str(caught.value) and "downscale it" in str(caught.value)


def _png_with_chunk(kind: bytes, data: bytes) -> bytes:
    """A small PNG with the chunk ``kind`` (holding ``data``) right after its header."""
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 7).save(buffer, "PNG")
    png, after_header = buffer.getvalue(), 8 + 25
    chunk = struct.pack(">I", len(data)) + kind + data
    chunk += struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return png[:after_header] + chunk + png[after_header:]


@pytest.mark.parametrize(("kind", "head"), [(b"zTXt", b"Comment\0\0"), (b"iCCP", b"icc\0\0")])
def test_png_metadata_that_inflates_too_far_is_named_with_its_limit(kind, head):
    inflating = zlib.compress(b"\0" * (8 * 2**20))  # 8 KB that inflate to 8 MiB
    with pytest.raises(ImageDecodeError, match=r"PNG's metadata .* more than the 1 MiB allowed"):
        decode_image(_png_with_chunk(kind, head + inflating))


def _mr_small(**attributes) -> bytes:
    """pydicom's real MR_small.dcm with ``attributes`` set in its header, as file bytes."""
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    for name, value in attributes.items():
        setattr(ds, name, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_dicom_declaring_too_many_frames_is_refused_naming_the_limit():
    with pytest.raises(ImageDecodeError, match=r"declares 100,000 frames, more than the 10,000"):
        decode_image(_mr_small(NumberOfFrames=100000))


def test_a_dicom_with_fewer_pixel_bytes_than_its_frames_need_is_called_truncated():
    with pytest.raises(ImageDecodeError, match=r"^DICOM pixel data holds fewer bytes than its h"):
        decode_image(_mr_small(NumberOfFrames=50))


def test_a_dicom_over_the_pixel_limit_is_refused_before_its_pixels_are_read():
    header = _mr_small(Rows=10000, Columns=10000)  # the pixel data stays 64×64
    with pytest.raises(ImageDecodeError, match=r"^10000×10000 px is more than the 40 megapixels"):
        decode_image(header)


def test_an_image_at_the_limit_is_decoded():
    side = int(MAX_PIXELS**0.5)
    buffer = io.BytesIO()
    Image.new("L", (side, side), 7).save(buffer, "PNG")
    pixels = decode_image(buffer.getvalue())
    assert pixels.shape == (side, side) and pixels.dtype == np.uint8 and pixels[0, 0] == 7


def test_jpeg_ls_dicom_bytes_decode_like_the_uncompressed_file():
    def read(name: str) -> np.ndarray:
        with open(get_testdata_file(name), "rb") as f:
            return decode_image(f.read())

    np.testing.assert_array_equal(read("MR_small_jpeg_ls_lossless.dcm"), read("MR_small.dcm"))


def test_a_photo_s_exif_orientation_is_applied():
    stored = np.zeros((20, 40), dtype=np.uint8)  # 40 wide, 20 high as the sensor wrote it
    stored[:5, :5] = 255  # a bright corner at the stored top left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, "JPEG", exif=exif, quality=95)
    upright = decode_image(buffer.getvalue())
    assert upright.shape == (40, 20)  # shown portrait
    assert upright[:5, -5:].mean() > 200 and upright[:5, :5].mean() < 50  # corner now top right


def test_a_dicom_holding_more_pixels_than_its_header_says_is_a_clear_error():
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.Rows = 32  # the 64 rows of pixel data now read as two frames of 32 that nothing declares
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(ImageDecodeError, match=r"shape 2×32×64 does not match its header"):
        decode_image(buffer.getvalue())


@pytest.mark.parametrize(
    ("source", "syntax"),
    [
        ("JPEG2000.dcm", "JPEG 2000 Image Compression (transfer syntax 1.2.840.10008.1.2.4.91, 16"),
        # 8-bit JPEG was called a compression not read here, with the cures for one
        (
            "SC_rgb_jpeg_dcmtk.dcm",
            "JPEG Baseline (Process 1) (transfer syntax 1.2.840.10008.1.2.4.50, 8",
        ),
    ],
)
def test_damaged_pixels_in_a_compression_read_here_are_called_damaged_not_unsupported(
    source, syntax
):
    ds = pydicom.dcmread(get_testdata_file(source))
    frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    ds.PixelData = encapsulate([frame[:200]])  # its codestream cut short, its header intact
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(buffer.getvalue())
    message = str(caught.value)
    assert message.startswith(
        f"DICOM pixel data compressed as {syntax} bits stored) could not be decoded, though that "
        "compression is read here: the pixel data may be damaged; re-export"
    )
    assert "export it uncompressed or as" not in message  # it named JPEG 2000 among the cures


def _dicom_bytes(**changes) -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for key, value in changes.items():
        setattr(ds, key, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def test_a_deflated_dicom_is_refused_before_it_is_inflated(monkeypatch):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    # The refusal comes from the file meta: pydicom never gets to read (inflate) the data set.
    monkeypatch.setattr(pydicom, "dcmread", lambda *a, **k: pytest.fail("inflated"))
    with pytest.raises(ImageDecodeError, match=r"deflated DICOM .* is not accepted"):
        decode_image(buffer.getvalue())


@pytest.mark.parametrize("slope", ["0", "NaN", "1e400"])
def test_a_rescale_slope_that_blanks_the_image_is_refused(slope):
    with pytest.raises(ImageDecodeError, match=f"RescaleSlope {slope} leaves no usable"):
        decode_image(_dicom_bytes(RescaleSlope=slope))


def test_an_ordinary_rescale_slope_decodes():
    assert decode_image(_dicom_bytes(RescaleSlope="2")).std() > 0


def test_a_gif_named_png_is_refused():
    gif = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(gif, format="GIF")
    with pytest.raises(ImageDecodeError, match="GIF images are not accepted"):
        decode_image(gif.getvalue())


@pytest.mark.parametrize("kind", ["PNG", "JPEG"])
def test_a_truncated_image_is_named_as_damaged_not_as_another_format(kind):
    encoded = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8)
    Image.fromarray(pixels).save(encoded, format=kind)
    with pytest.raises(ImageDecodeError, match=rf"^a damaged or truncated {kind} file \("):
        decode_image(encoded.getvalue()[:300])


def test_bytes_of_no_image_format_say_so_without_an_object_address():
    with pytest.raises(ImageDecodeError, match="not a PNG, JPEG or DICOM image") as caught:
        decode_image(b"this is a text file, not a scan")
    assert "0x" not in str(caught.value) and "BytesIO" not in str(caught.value)


@pytest.mark.parametrize(("center", "width"), [("NaN", "400"), ("40", "NaN"), ("40", "1e400")])
def test_a_window_that_blanks_the_image_is_refused(center, width):
    with pytest.raises(ImageDecodeError, match="gives undefined or constant pixel values"):
        decode_image(_dicom_bytes(WindowCenter=center, WindowWidth=width))


def test_an_ordinary_window_decodes():
    assert decode_image(_dicom_bytes(WindowCenter="40", WindowWidth="400")).std() > 0


def test_a_dicom_data_set_without_its_part_10_header_is_refused_saying_what_it_lacks():
    with open(get_testdata_file("ExplVR_LitEndNoMeta.dcm"), "rb") as f:
        raw = f.read()  # a data set as some tools write it: no preamble, no 'DICM'
    with pytest.raises(ImageDecodeError, match=r"needs its Part 10 header: the 128-byte preamble"):
        decode_image(raw)


def test_a_dicomdir_sent_to_the_model_is_named_as_a_file_without_an_image():
    data = Path(get_testdata_file("DICOMDIR")).read_bytes()
    with pytest.raises(ImageDecodeError, match=r"a DICOM file without an image \(Media Storage"):
        decode_image(data)  # it was "unreadable DICOM (AttributeError: ...)"


def test_a_12_bit_jpeg_is_named_as_a_jpeg_variant_not_as_no_image():
    """Its first bytes are JPEG's: "none of these formats" sent people looking elsewhere."""
    ds = pydicom.dcmread(get_testdata_file("JPEG-lossy.dcm"))  # a 12-bit JPEG (SOF1) frame
    frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    with pytest.raises(
        ImageDecodeError, match=r"^a JPEG that cannot be decoded here: a variant such as a 12"
    ):
        decode_image(frame)


def test_a_dicom_image_without_pixel_data_says_its_pixels_are_missing():
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    del ds.PixelData, ds.Rows, ds.Columns
    out = io.BytesIO()
    ds.save_as(out)
    with pytest.raises(ImageDecodeError, match=r"a DICOM image without pixel data \(MR Image St"):
        decode_image(out.getvalue())


def _progressive_jpeg(repeats: int) -> bytes:
    """A progressive JPEG whose last scan is written ``repeats`` more times (each one decoded
    over the whole image: a file made to cost CPU)."""
    out = io.BytesIO()
    Image.new("L", (64, 64), 100).save(out, "JPEG", progressive=True, quality=90)
    data = out.getvalue()
    last, end = data.rindex(b"\xff\xda"), data.rindex(b"\xff\xd9")
    return data[:end] + data[last:end] * repeats + b"\xff\xd9"


def test_a_progressive_jpeg_of_thousands_of_scans_is_refused_naming_them():
    with pytest.raises(ImageDecodeError, match=r"^the JPEG file holds 2,006 scans, more than "):
        decode_image(_progressive_jpeg(2000))


def test_a_progressive_jpeg_as_encoders_write_it_is_decoded():
    assert decode_image(_progressive_jpeg(0)).shape == (64, 64)


def test_pillow_s_large_image_warning_is_not_printed(monkeypatch, recwarn):
    """Pillow warned on stderr of a 144-megapixel PNG, in its words, before our refusal."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # warns over 1000, refuses over 2000
    buffer = io.BytesIO()
    Image.new("L", (40, 40), 7).save(buffer, "PNG")
    decode_image(buffer.getvalue())
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
