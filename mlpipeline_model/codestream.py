"""The image size that compressed DICOM pixel data declares inside its own stream.

A DICOM header's Rows and Columns are checked against the pixel limits before decoding, but the
decoder sizes its work by the JPEG or JPEG 2000 stream's own frame header: a file whose header
says 64×64 around a 12000×12000 stream made the decoder allocate gigabytes, and one whose
header declared more columns than its JPEG-LS stream held made GDCM abort the whole process
(a C++ exception Python cannot catch). ``check_stream`` refuses both before the decoder runs.
"""

import struct

from mlpipeline_model.pixels import ImageDecodeError

# JPEG start-of-frame markers (ITU T.81 B.1.1.3; 0xC4, 0xC8 and 0xCC are other segments) and
# JPEG-LS's SOF55 (ITU T.87 C.2.2): each holds precision, height, width and components.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_JPEG_SYNTAXES = ("1.2.840.10008.1.2.4.5", "1.2.840.10008.1.2.4.7", "1.2.840.10008.1.2.4.8")
_J2K_SYNTAXES = ("1.2.840.10008.1.2.4.9", "1.2.840.10008.1.2.4.20")  # JPEG 2000, HTJ2K


def jpeg_size(stream: bytes) -> tuple[int, int, int] | None:
    """``(rows, columns, components)`` of a JPEG or JPEG-LS stream's frame header; None when
    the stream has none before its scan data."""
    if stream[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(stream):
        if stream[at] != 0xFF:
            return None
        marker = stream[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        (length,) = struct.unpack_from(">H", stream, at + 2)
        if marker in _SOF and at + 10 <= len(stream):
            rows, columns = struct.unpack_from(">HH", stream, at + 5)
            return rows, columns, stream[at + 9]
        if marker == 0xDA or length < 2:  # scan data: no frame header came before it
            return None
        at += 2 + length
    return None


def j2k_size(stream: bytes) -> tuple[int, int, int] | None:
    """``(rows, columns, components)`` of a JPEG 2000 codestream's SIZ segment (ISO 15444-1
    A.5.1), raw or inside a JP2 file's codestream box; None when there is none."""
    at = stream.find(b"\xff\x4f\xff\x51")  # SOC, then SIZ
    if at < 0 or at + 42 > len(stream):
        return None
    x, y, x0, y0 = struct.unpack_from(">IIII", stream, at + 8)
    (components,) = struct.unpack_from(">H", stream, at + 40)
    return y - y0, x - x0, components


def check_stream(syntax: str, frame: bytes, rows: int, columns: int, samples: int) -> None:
    """Refuse a first ``frame`` of compressed pixel data (transfer syntax ``syntax``) whose own
    stream declares another size or number of components than the DICOM header's ``rows``,
    ``columns`` and ``samples`` (per pixel). Streams of other compressions, and streams whose
    header cannot be found, are left to the decoder.

    Raises:
        ImageDecodeError: One line naming both sizes.
    """
    if syntax.startswith(_JPEG_SYNTAXES):
        found = jpeg_size(frame)
    elif syntax.startswith(_J2K_SYNTAXES):
        found = j2k_size(frame)
    else:
        return
    if found is None or found == (rows, columns, samples):
        return
    raise ImageDecodeError(
        f"the DICOM file's compressed image is {found[0]}×{found[1]} with {found[2]} "
        f"component(s), but its header declares Rows {rows}, Columns {columns}, "
        f"SamplesPerPixel {samples}: the file is damaged or forged; re-export it from its source"
    )
