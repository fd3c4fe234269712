"""How survey images are stored and served: PNG whose bytes depend only on the pixels.

A compressed PNG gives the colorized photo away: smoother colours compress better, so
the fake of a pair was the smaller file in every pair measured (issue 19). Survey
images are therefore encoded without compression and always the same way:

    signature, IHDR (8-bit RGB, no interlace), one IDAT, IEND

with filter type 0 on every row and a zlib stream of stored (uncompressed) deflate
blocks of at most 65,535 bytes. No metadata chunk is ever written. The length of the
file is `encoded_length(width, height)`, and two images of the same size differ only
in their pixel bytes and the checksums computed from them (IDAT's CRC, zlib's
Adler-32). The stored bytes are the served bytes.

Studies created before this encoding hold compressed PNGs; `served_bytes` re-encodes
those when they are read, so what a participant receives is always canonical.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image as PILImage

__all__ = [
    "PNG_SIGNATURE",
    "encode_png",
    "encoded_length",
    "is_canonical",
    "png_chunks",
    "served_bytes",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STORED_BLOCK = 65_535  # the largest stored deflate block
_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, no dictionary, "fastest" level
_CHANNELS = 3


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _stored_zlib(raw: bytes) -> bytes:
    """`raw` as a zlib stream of stored deflate blocks (length depends on len only)."""
    parts = [_ZLIB_HEADER]
    for start in range(0, max(len(raw), 1), STORED_BLOCK):
        block = raw[start : start + STORED_BLOCK]
        final = start + STORED_BLOCK >= len(raw)
        parts.append(bytes([1 if final else 0]))
        parts.append(struct.pack("<HH", len(block), len(block) ^ 0xFFFF))
        parts.append(block)
    parts.append(struct.pack(">I", zlib.adler32(raw) & 0xFFFFFFFF))
    return b"".join(parts)


def encode_png(image: PILImage.Image) -> bytes:
    """The image as canonical survey PNG bytes: RGB, uncompressed, no metadata."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    pixels = rgb.tobytes()
    stride = width * _CHANNELS
    raw = b"".join(
        b"\x00" + pixels[row * stride : (row + 1) * stride] for row in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", _stored_zlib(raw))
        + _chunk(b"IEND", b"")
    )


def encoded_length(width: int, height: int) -> int:
    """Byte length of `encode_png` of any width x height image."""
    raw = height * (1 + width * _CHANNELS)
    blocks = max(1, -(-raw // STORED_BLOCK))
    zlib_length = len(_ZLIB_HEADER) + raw + 5 * blocks + 4
    return len(PNG_SIGNATURE) + (12 + 13) + (12 + zlib_length) + 12


def png_chunks(data: bytes) -> list[tuple[bytes, int]]:
    """The (type, length) of every chunk of PNG `data`, in order.

    Raises ValueError when `data` is not a PNG or a chunk runs past its end.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    chunks = []
    at = len(PNG_SIGNATURE)
    while at < len(data):
        if at + 12 > len(data):
            raise ValueError("truncated PNG chunk")
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        if at + 12 + length > len(data):
            raise ValueError("truncated PNG chunk")
        chunks.append((kind, length))
        at += 12 + length
    return chunks


def is_canonical(data: bytes, width: int, height: int) -> bool:
    """Whether `data` is exactly what `encode_png` writes for a width x height image
    (the length and header are checked first; then the pixels are re-encoded)."""
    if len(data) != encoded_length(width, height):
        return False
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    prefix = PNG_SIGNATURE + _chunk(b"IHDR", header)
    if not data.startswith(prefix):
        return False
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            return encode_png(image) == data
    except (OSError, ValueError, SyntaxError):
        return False


def served_bytes(data: bytes, width: int, height: int) -> bytes:
    """What a participant receives for stored image bytes: `data` itself when it is
    canonical, else the same pixels re-encoded canonically (studies stored before)."""
    if is_canonical(data, width, height):
        return data
    with PILImage.open(io.BytesIO(data)) as image:
        return encode_png(image)
