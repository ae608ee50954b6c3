"""Frame checks and colour conversion at the entrance of the perception core.

Frames are numpy arrays: ``HxWx3`` uint8 in RGB or BGR order (the caller says which) or ``HxW`` / ``HxWx1`` uint8
gray. Anything else raises ``InvalidFrameError`` with what was received and what is expected, so one bad frame is
dropped and counted by the caller instead of failing deep inside mediapipe or OpenCV.
"""
from __future__ import annotations

import cv2
import numpy as np

from fer_ros.errors import InvalidFrameError

FRAME_COLORS = ("rgb", "bgr", "gray")  # channel orders the core accepts; the ROS adapter maps encodings onto them
MIN_FRAME_SIDE = 8  # pixels: below this no face can be found, so the frame is treated as broken
MAX_FRAME_SIDE = 16384  # pixels: above this the array is certainly mis-shaped (e.g. a flattened buffer)


def check_color(color: str) -> str:
    """Normalise a colour name (case-insensitive) or raise ``InvalidFrameError`` naming the accepted ones."""
    c = str(color).lower()
    if c not in FRAME_COLORS:
        raise InvalidFrameError(f"frame colour '{color}' is not one of {FRAME_COLORS}; say how the channels are "
                                f"ordered (ROS encodings rgb8 -> 'rgb', bgr8 -> 'bgr', mono8 -> 'gray')")
    return c


def validate_frame(frame: object, color: str) -> np.ndarray:
    """Check that ``frame`` is a usable image in ``color`` and return it as an ndarray (2-D for gray, no copy).

    Raises ``InvalidFrameError`` for: not an array, empty or zero-size, a side outside
    ``MIN_FRAME_SIDE..MAX_FRAME_SIDE``, a dtype other than uint8, or a channel count that does not fit ``color``.
    """
    c = check_color(color)
    if not isinstance(frame, np.ndarray):
        raise InvalidFrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.size == 0:
        raise InvalidFrameError(f"frame is empty (shape {frame.shape})")
    if frame.dtype != np.uint8:
        raise InvalidFrameError(f"frame dtype is {frame.dtype}; expected uint8 (convert 16-bit or float images to "
                                f"8-bit first)")
    if c == "gray":
        if frame.ndim == 3 and frame.shape[2] == 1:
            frame = frame[:, :, 0]
        if frame.ndim != 2:
            raise InvalidFrameError(f"a gray frame must be HxW or HxWx1, got shape {frame.shape}")
    elif frame.ndim != 3 or frame.shape[2] != 3:
        raise InvalidFrameError(f"an {c} frame must be HxWx3, got shape {frame.shape} (for a one-channel image "
                                f"pass color='gray')")
    h, w = frame.shape[:2]
    if not (MIN_FRAME_SIDE <= h <= MAX_FRAME_SIDE and MIN_FRAME_SIDE <= w <= MAX_FRAME_SIDE):
        raise InvalidFrameError(f"frame size {w}x{h} is outside {MIN_FRAME_SIDE}..{MAX_FRAME_SIDE} pixels a side")
    return frame


_TO_RGB = {"bgr": cv2.COLOR_BGR2RGB, "gray": cv2.COLOR_GRAY2RGB}  # OpenCV codes per source colour
_TO_GRAY = {"rgb": cv2.COLOR_RGB2GRAY, "bgr": cv2.COLOR_BGR2GRAY}


def _convert(frame: np.ndarray, color: str, target: str, codes: dict[str, int]) -> np.ndarray:
    c = check_color(color)
    frame = np.ascontiguousarray(validate_frame(frame, c))
    return frame if c == target else cv2.cvtColor(frame, codes[c])


def to_rgb(frame: np.ndarray, color: str) -> np.ndarray:
    """The frame as a C-contiguous HxWx3 uint8 RGB array; no copy when it already is one (after validation)."""
    return _convert(frame, color, "rgb", _TO_RGB)


def to_gray(frame: np.ndarray, color: str) -> np.ndarray:
    """The frame as a C-contiguous HxW uint8 gray array (ITU-R 601 weights, as OpenCV), no copy when already gray."""
    return _convert(frame, color, "gray", _TO_GRAY)


def read_only(frame: np.ndarray) -> np.ndarray:
    """A C-contiguous, non-writeable view of ``frame`` (mediapipe then reads it without a defensive copy).

    The caller's array keeps its own flags: only the returned view is marked read-only.
    """
    view = np.ascontiguousarray(frame).view()
    view.flags.writeable = False
    return view
