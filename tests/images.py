"""Image bytes the tests build by hand."""

import struct
import zlib


def png_declaring(width: int, height: int) -> bytes:
    """A few dozen bytes of PNG whose header declares ``width``×``height`` grey pixels (its
    pixel data is one empty row): what a decompression bomb looks like before it is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00"))
        + chunk(b"IEND", b"")
    )
