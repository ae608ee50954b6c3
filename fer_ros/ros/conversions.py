"""sensor_msgs images <-> numpy, and FrameResult -> EmotionArray. No cv_bridge needed (it is not on every robot).

Raw images are viewed in place (no copy) when rows are unpadded; only the encodings the core understands are
accepted, everything else raises ``UnsupportedEncodingError`` so the node can count and report it.
"""
from __future__ import annotations

import cv2
import numpy as np

from fer_ros.datatypes import FrameResult
from fer_ros.errors import InvalidFrameError
from fer_ros.image_header import (DEFAULT_MAX_IMAGE_PIXELS, JPEG_MAGIC, PNG_MAGIC, check_pixel_budget, jpeg_size,
                                  png_size)

# encoding -> (channels, colour name the core understands)
SUPPORTED_ENCODINGS: dict[str, tuple[int, str]] = {"rgb8": (3, "rgb"), "bgr8": (3, "bgr"), "mono8": (1, "gray")}
COMPRESSED_FORMATS = ("jpeg", "jpg", "png")
# image_transport formats that mention png/jpeg but are not colour images, and video codecs
UNSUPPORTED_COMPRESSED = ("compresseddepth", "h264", "h265", "hevc", "theora", "ffmpeg", "av1", "vp8", "vp9")
_JPEG_END, _PNG_END = b"\xff\xd9", b"IEND"
JPEG_TRAILER_BYTES = 64  # the end-of-image marker is searched this far from the end (some encoders pad with zeros)
PNG_TRAILER_BYTES = 12  # IEND chunk: 4 length + 4 type + 4 CRC, always the last bytes of a complete PNG


class UnsupportedEncodingError(InvalidFrameError):
    """The image encoding is not rgb8, bgr8 or mono8 (16-bit depth, Bayer, YUV...), or not JPEG/PNG colour."""

    reason = "unsupported_encoding"


class TruncatedImageError(InvalidFrameError):
    """Fewer bytes than the image needs: raw rows missing, a JPEG without its end marker, a PNG without IEND.
    (OpenCV decodes a cut JPEG into a partly grey image without failing, so the end markers are checked.)"""

    reason = "truncated"


def image_to_array(msg, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tuple[np.ndarray, str]:
    """View a sensor_msgs/Image as HxWx3 or HxW uint8 and return it with its colour ("rgb", "bgr" or "gray").
    Images of more than ``max_pixels`` pixels raise ImageTooLargeError."""
    encoding = msg.encoding.lower()
    if encoding not in SUPPORTED_ENCODINGS:
        raise UnsupportedEncodingError(
            f"image encoding '{msg.encoding}' is not supported; publish one of {sorted(SUPPORTED_ENCODINGS)} "
            f"(e.g. set the camera driver's pixel format, or add an image_proc debayer/convert node)")
    channels, color = SUPPORTED_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise InvalidFrameError(f"image is empty ({width}x{height})")
    check_pixel_budget(width, height, max_pixels, "image")
    if step < width * channels:
        raise InvalidFrameError(f"image step {step} is smaller than width*channels {width * channels}")
    buf = np.frombuffer(msg.data, dtype=np.uint8)  # rclpy gives array('B') or bytes: zero-copy view either way
    if buf.size < step * height:
        raise TruncatedImageError(f"image data has {buf.size} bytes, {step * height} expected "
                                f"({height} rows x step {step}): truncated message")
    rows = buf[: step * height].reshape(height, step)
    pixels = rows[:, : width * channels]  # a strided view when rows are padded
    frame = pixels.reshape(height, width, channels) if channels == 3 else pixels
    return frame, color


def compressed_to_array(msg, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tuple[np.ndarray, str]:
    """Decode a sensor_msgs/CompressedImage (JPEG or PNG) to HxWx3 BGR uint8.

    Checked before decoding: the data starts as a JPEG or PNG, ends with its end marker (else TruncatedImageError),
    and its header's size is within ``max_pixels`` (else ImageTooLargeError). JPEGs are decoded by libjpeg-turbo in
    strict mode (simplejpeg): data libjpeg has to guess over ("Corrupt JPEG data: ...") raises InvalidFrameError
    instead of giving a damaged frame, and nothing is printed on stderr.
    """
    fmt = str(msg.format).lower()
    if not any(f in fmt for f in COMPRESSED_FORMATS) or any(f in fmt for f in UNSUPPORTED_COMPRESSED):
        raise UnsupportedEncodingError(f"compressed format '{msg.format}' is not supported; use jpeg or png "
                                       f"(image_transport's compressed plugin)")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size == 0:
        raise TruncatedImageError("compressed image has no data")
    head = data[:32].tobytes()
    if head.startswith(JPEG_MAGIC):
        if not data[-JPEG_TRAILER_BYTES:].tobytes().rstrip(b"\0").endswith(_JPEG_END):
            raise TruncatedImageError(f"JPEG of {data.size} bytes has no end-of-image marker: truncated")
        check_pixel_budget(*jpeg_size(memoryview(data)), max_pixels, "JPEG")
        return _decode_jpeg(data), "bgr"
    if not head.startswith(PNG_MAGIC):
        raise InvalidFrameError(f"compressed image ({msg.format}, {data.size} bytes) is neither JPEG nor PNG data: "
                                f"corrupt")
    if _PNG_END not in data[-PNG_TRAILER_BYTES:].tobytes():
        raise TruncatedImageError(f"PNG of {data.size} bytes has no IEND chunk: truncated")
    check_pixel_budget(*png_size(head), max_pixels, "PNG")
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if frame is None:
        raise InvalidFrameError(f"PNG of {data.size} bytes could not be decoded: corrupt data")
    return frame, "bgr"


def _decode_jpeg(data: np.ndarray) -> np.ndarray:
    import simplejpeg

    try:
        return simplejpeg.decode_jpeg(data, colorspace="BGR", strict=True)
    except ValueError as exc:
        if "premature end" in str(exc).lower() and "file" in str(exc).lower():
            raise TruncatedImageError(f"JPEG of {data.size} bytes ends early: {exc}") from exc
        raise InvalidFrameError(f"JPEG of {data.size} bytes has corrupt data: {exc}") from exc


def array_to_image(frame: np.ndarray, encoding: str = "rgb8", header=None):
    """Build a sensor_msgs/Image from a uint8 array (rgb8/bgr8 HxWx3 or mono8 HxW)."""
    from sensor_msgs.msg import Image

    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(frame.shape[0]), int(frame.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(frame.strides[0])
    msg.data = frame.tobytes()
    return msg


def array_to_compressed(frame_bgr: np.ndarray, fmt: str = "jpeg", quality: int = 90, header=None):
    """Encode a BGR uint8 frame into a sensor_msgs/CompressedImage."""
    from sensor_msgs.msg import CompressedImage

    ext = ".png" if fmt == "png" else ".jpg"
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, encoded = cv2.imencode(ext, frame_bgr, params)
    if not ok:
        raise InvalidFrameError("could not encode the frame")
    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format = "png" if ext == ".png" else "jpeg"
    msg.data = encoded.tobytes()
    return msg


def result_to_msg(result: FrameResult, header, latency_ms: float):
    """Fill an EmotionArray from a FrameResult, stamped with the source image's header."""
    from geometry_msgs.msg import Point32

    from fer_ros.msg import Emotion, EmotionArray

    out = EmotionArray()
    out.header = header
    out.model_id = result.model_id
    out.labels = list(result.labels)
    out.processing_latency_ms = float(latency_ms)
    height, width = result.image_size
    for face in result.faces:
        e = Emotion()
        e.face_id = int(face.face_id)
        x0, y0, x1, y1 = (float(v) for v in face.box)
        x0, y0 = max(0.0, x0), max(0.0, y0)
        x1, y1 = min(float(width), x1), min(float(height), y1)
        e.roi.x_offset, e.roi.y_offset = int(round(x0)), int(round(y0))
        e.roi.width, e.roi.height = max(0, int(round(x1 - x0))), max(0, int(round(y1 - y0)))
        e.landmarks = [Point32(x=float(x), y=float(y), z=0.0) for x, y in face.landmarks[:5]]
        e.landmark_source = face.landmark_source
        e.detection_confidence = float(face.detection_score)
        e.label = face.label
        e.confidence = float(face.confidence)
        e.probabilities = [float(p) for p in face.probabilities]
        e.frames_used = int(face.frames_used)
        e.valence, e.arousal = float(face.valence), float(face.arousal)
        out.emotions.append(e)
    return out
