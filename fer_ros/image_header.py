"""Image size read from a compressed image's header (JPEG SOF, PNG IHDR), without decoding it.

A 748 KB PNG can decode to 16000x16000 pixels (768 MB of RGB); the decoder allocates that before the node sees a
pixel. Reading the size from the header first lets the caller refuse such a frame for the cost of a few bytes.
Pure Python, no decoder involved.
"""
from __future__ import annotations

from fer_ros.errors import ImageTooLargeError, InvalidFrameError

# The default pixel budget: a 4K UHD (8.3 Mpx) or 12 Mpx camera fits, a decompression bomb of 16000x16000 does not.
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers (baseline, extended, progressive, lossless, arithmetic); C4 (DHT), C8 (JPG) and CC (DAC)
# share the range but carry no frame size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])  # TEM and RSTn: a marker without a length field


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the first start-of-frame segment; InvalidFrameError when the segments are malformed."""
    i, n = 2, len(data)  # after SOI
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise InvalidFrameError(f"JPEG header is corrupt: byte {i} is not a marker (0x{data[i]:02x})")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # EOI or start of scan before any frame header
            break
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2:
            raise InvalidFrameError(f"JPEG header is corrupt: segment 0x{marker:02x} at byte {i} has length {length}")
        if marker in _JPEG_SOF:
            if i + 9 > n:
                break
            height = int.from_bytes(data[i + 5:i + 7], "big")
            width = int.from_bytes(data[i + 7:i + 9], "big")
            if width == 0 or height == 0:
                raise InvalidFrameError(f"JPEG frame header says {width}x{height}: no image")
            return width, height
        i += 2 + length
    raise InvalidFrameError("JPEG has no frame header (SOF segment) before its image data: corrupt")


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which the PNG standard puts first."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise InvalidFrameError("PNG does not start with its IHDR chunk: corrupt")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if width == 0 or height == 0:
        raise InvalidFrameError(f"PNG header says {width}x{height}: no image")
    return width, height


def check_pixel_budget(width: int, height: int, max_pixels: int, what: str) -> None:
    """ImageTooLargeError when ``width * height`` exceeds ``max_pixels`` (the node parameter ``max_image_pixels``)."""
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{what} is {width}x{height} ({width * height / 1e6:.1f} Mpx), above max_image_pixels {max_pixels} "
            f"({max_pixels / 1e6:.1f} Mpx): refused before decoding (raise max_image_pixels if the camera really "
            f"sends images this large)")
