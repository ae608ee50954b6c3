"""Image and CompressedImage messages -> numpy frame + colour name, or a classified reason why not.

Pixels are converted by the node's own functions (``fer_ros.ros.conversions``: ``image_to_array``,
``compressed_to_array``), so the offline evaluator feeds the pipeline exactly what fer_node would; this module adds
the classification the reports need (each conversion error's ``reason``, the node's counter names). Works on any
object with the sensor_msgs field names (rosbags' message classes and rclpy's alike). Four reasons make a message
unreadable, and each is counted, never silently skipped:

- ``corrupt``: the CDR bytes do not deserialize, the fields contradict each other (zero size, row stride shorter
  than a row), a compressed payload does not decode, or libjpeg reports corrupt data;
- ``unsupported_encoding``: a valid image in an encoding the node does not take (rgba8, 16-bit, Bayer, YUV, float
  depth, compressedDepth, video codecs...);
- ``truncated``: fewer bytes than the header promises (raw rows missing, JPEG without its end-of-image marker, PNG
  without its IEND chunk). OpenCV decodes a cut JPEG into a partly grey image without failing, so the end markers are
  checked here;
- ``too_large``: the header asks for more pixels than ``max_image_pixels`` (refused before decoding).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from fer_ros.errors import ImageTooLargeError, InvalidFrameError
from fer_ros.image_header import DEFAULT_MAX_IMAGE_PIXELS
from fer_ros.ros.conversions import (TruncatedImageError, UnsupportedEncodingError, compressed_to_array,
                                     image_to_array)

# the node's counter names (each error type's ``reason``), so a report and /diagnostics say the same
REASON_CORRUPT = InvalidFrameError.reason
REASON_UNSUPPORTED = UnsupportedEncodingError.reason
REASON_TRUNCATED = TruncatedImageError.reason
REASON_TOO_LARGE = ImageTooLargeError.reason
UNREADABLE_REASONS = (REASON_CORRUPT, REASON_UNSUPPORTED, REASON_TRUNCATED, REASON_TOO_LARGE)


class UnreadableMessage(InvalidFrameError):
    """A message that cannot become a frame; ``reason`` is one of UNREADABLE_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class DecodedImage:
    """A frame ready for ``EmotionPipeline.process`` plus the header it came with."""

    image: np.ndarray  # HxWx3 (rgb/bgr) or HxW (gray), uint8
    color: str  # rgb | bgr | gray
    stamp_sec: int
    stamp_nanosec: int
    frame_id: str

    @property
    def stamp(self) -> float:
        """Header stamp in seconds (what the pipeline and the label files use)."""
        return self.stamp_sec + self.stamp_nanosec * 1e-9

    @property
    def stamp_ns(self) -> int:
        return self.stamp_sec * 1_000_000_000 + self.stamp_nanosec


def _convert(convert: Callable[[Any, int], tuple[np.ndarray, str]], msg: Any,
             max_pixels: int) -> tuple[np.ndarray, str]:
    """The node's conversion, its errors classified under the node's own counter names."""
    try:
        return convert(msg, max_pixels)
    except InvalidFrameError as exc:
        raise UnreadableMessage(exc.reason, str(exc)) from exc
    except ValueError as exc:
        raise UnreadableMessage(REASON_CORRUPT, str(exc)) from exc


def decode_raw_image(msg: Any, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tuple[np.ndarray, str]:
    """``sensor_msgs/Image`` fields -> (array, colour) exactly as fer_node converts them; raises UnreadableMessage."""
    return _convert(image_to_array, msg, max_pixels)


def decode_compressed_image(msg: Any, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tuple[np.ndarray, str]:
    """``sensor_msgs/CompressedImage`` (JPEG or PNG) -> (BGR array, "bgr") as fer_node decodes it."""
    return _convert(compressed_to_array, msg, max_pixels)


def decode_image(msg: Any, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> DecodedImage:
    """Image or CompressedImage message -> DecodedImage (raises UnreadableMessage with a reason)."""
    try:
        stamp = msg.header.stamp
        sec, nanosec, frame_id = int(stamp.sec), int(stamp.nanosec), str(msg.header.frame_id)
    except (AttributeError, TypeError, ValueError) as exc:
        raise UnreadableMessage(REASON_CORRUPT, f"message has no usable header ({exc})") from exc
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        image, color = decode_compressed_image(msg, max_pixels)
    else:
        image, color = decode_raw_image(msg, max_pixels)
    return DecodedImage(image, color, sec, nanosec, frame_id)


def deserialize_and_decode(store: Any, raw: bytes, msgtype: str,
                           max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> DecodedImage:
    """CDR bytes of an image message -> DecodedImage; corrupt CDR is classified like any other unreadable data."""
    try:
        msg = store.deserialize_cdr(raw, msgtype)
    except Exception as exc:  # rosbags raises SerdeError, struct.error, IndexError, UnicodeDecodeError... on garbage
        raise UnreadableMessage(REASON_CORRUPT, f"CDR data of {len(raw)} bytes does not deserialize as "
                                f"{msgtype} ({type(exc).__name__})") from exc
    return decode_image(msg, max_pixels)
