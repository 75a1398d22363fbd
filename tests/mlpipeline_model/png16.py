"""16-bit PNG files written by hand (Pillow cannot write 16-bit colour): every row filter of the
PNG specification in turn, optionally Adam7-interlaced, so that a decoder must undo them all."""

import struct
import zlib

import numpy as np

COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, +alpha, RGB, RGBA)
# Adam7 passes: (first row, first column, row step, column step).
ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2))
ADAM7 += ((1, 0, 2, 1),)


def _paeth(left: np.ndarray, up: np.ndarray, up_left: np.ndarray) -> np.ndarray:
    estimate = left + up - up_left
    to_left, to_up, to_corner = (np.abs(estimate - v) for v in (left, up, up_left))
    return np.where(
        (to_left <= to_up) & (to_left <= to_corner), left, np.where(to_up <= to_corner, up, up_left)
    )


def _filtered(rows: np.ndarray, bpp: int) -> bytes:
    """``rows`` (H × row bytes) filtered with filter type ``y % 5`` on row ``y``."""
    out = []
    previous = np.zeros(rows.shape[1], dtype=np.int32)
    for y, row in enumerate(rows.astype(np.int32)):
        left = np.concatenate([np.zeros(bpp, dtype=np.int32), row[:-bpp]])
        up_left = np.concatenate([np.zeros(bpp, dtype=np.int32), previous[:-bpp]])
        kind = y % 5
        predictor = (
            0,
            left,
            previous,
            (left + previous) // 2,
            _paeth(left, previous, up_left),
        )[kind]
        out.append(bytes([kind]) + ((row - predictor) % 256).astype(np.uint8).tobytes())
        previous = row
    return b"".join(out)


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png16(values: np.ndarray, interlaced: bool = False, exif: bytes = b"") -> bytes:
    """A 16-bit PNG of ``values`` (uint16 H×W×C, C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), with
    an eXIf chunk when ``exif`` (``Image.Exif().tobytes()``) is given."""
    height, width, channels = values.shape
    bpp = 2 * channels
    samples = values.astype(">u2")
    passes = ADAM7 if interlaced else ((0, 0, 1, 1),)
    data = b""
    for top, first, down, across in passes:
        part = np.ascontiguousarray(samples[top::down, first::across])
        if part.size:
            data += _filtered(part.reshape(part.shape[0], -1).view(np.uint8), bpp)
    header = struct.pack(
        ">IIBBBBB", width, height, 16, COLOUR_TYPES[channels], 0, 0, int(interlaced)
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + (_chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00")) if exif else b"")
        + _chunk(b"IDAT", zlib.compress(data))
        + _chunk(b"IEND", b"")
    )
