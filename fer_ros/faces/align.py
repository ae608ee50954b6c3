"""Face alignment: from a frame and its detections to the model-ready batch the model card asks for.

One similarity transform per face: the crop is a square of side ``max(box w, box h) * card.crop.scale`` centred on the
detection box, rotated about the box centre so that the eyes are level when ``card.crop.rotate`` (and the detection
has landmarks), and scaled to the card's input size. Each face costs one ``cv2.warpAffine`` straight into a
preallocated batch; colour conversion to the card's colour and normalisation ``(pixel / 255 - mean) / std`` to NCHW
float32 then run once over the whole batch.

Training and evaluation use these same functions (``crop_face``, ``to_model_color``, ``normalize``, or
``align_batch``) for their eval preprocessing, so what a model is trained and scored on is exactly what the robot
feeds it; change the geometry here and nowhere else.

Coordinates: boxes and landmarks are continuous pixel coordinates in which pixel ``i`` spans ``[i, i + 1)`` (what
mediapipe's relative boxes times the image size give). ``face_transform`` returns the matrix in OpenCV's convention
(pixel centres at integers), ready for ``cv2.warpAffine``; ``transform_points`` maps points with it.

Large faces are shrunk with area averaging before the warp (``ANTIALIAS_BELOW``): bilinear sampling alone would
alias a 300-pixel face squeezed into 64x64 and make the crop depend on where the face falls on the pixel grid.
Pixels outside the frame repeat the frame's edge (``cv2.BORDER_REPLICATE``) rather than turning black.
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from fer_ros.datatypes import Detection
from fer_ros.errors import InvalidFrameError
from fer_ros.frames import check_color
from fer_ros.model_card import InputSpec, ModelCard

# Output/input size ratio below which the face region is first shrunk by area averaging (see module docstring).
ANTIALIAS_BELOW = 0.5
MIN_CROP_SIDE = 1.0  # pixels: a degenerate box still gives a defined (if useless) crop instead of a division by zero
BORDER_MODE = cv2.BORDER_REPLICATE  # what fills the crop where it leaves the frame

_CONVERSIONS = {  # (from, to) -> OpenCV code; identical pairs need none
    ("rgb", "bgr"): cv2.COLOR_RGB2BGR,
    ("bgr", "rgb"): cv2.COLOR_BGR2RGB,
    ("rgb", "gray"): cv2.COLOR_RGB2GRAY,
    ("bgr", "gray"): cv2.COLOR_BGR2GRAY,
    ("gray", "rgb"): cv2.COLOR_GRAY2RGB,
    ("gray", "bgr"): cv2.COLOR_GRAY2BGR,
}


def eye_angle(landmarks: np.ndarray | None) -> float:
    """Angle (radians, image axes, y down) of the line from the image-left eye to the image-right eye; 0 if unknown."""
    if landmarks is None:
        return 0.0
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape[0] < 2 or not np.isfinite(lm[:2]).all():
        return 0.0
    dx, dy = lm[1] - lm[0]
    return math.atan2(dy, dx) if (dx or dy) else 0.0


def face_transform(box: Sequence[float] | np.ndarray, landmarks: np.ndarray | None, out_h: int, out_w: int,
                   scale: float = 1.0, rotate: bool = True) -> np.ndarray:
    """The 2x3 affine (float64, OpenCV pixel-centre convention) from frame to crop for one face."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0, MIN_CROP_SIDE) * scale
    theta = eye_angle(landmarks) if rotate else 0.0
    c, s = math.cos(theta), math.sin(theta)
    kx, ky = out_w / side, out_h / side
    # rotate by -theta (levels the eye line), then scale; continuous coordinates first
    a = np.array([[kx * c, kx * s], [-ky * s, ky * c]])
    t = np.array([out_w / 2, out_h / 2]) - a @ np.array([cx, cy])
    # pixel-centre convention: u_c = A (x_c + 0.5) + t - 0.5
    t = t + a @ np.array([0.5, 0.5]) - 0.5
    return np.hstack([a, t[:, None]])


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map continuous-coordinate points (K, 2) through a ``face_transform`` matrix into crop coordinates."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2) - 0.5
    return p @ matrix[:, :2].T + matrix[:, 2] + 0.5


def _antialiased_source(image: np.ndarray, m: np.ndarray, out_h: int, out_w: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """When the warp shrinks by more than 1/ANTIALIAS_BELOW, area-shrink the needed region first; else pass through."""
    zoom = math.sqrt(abs(np.linalg.det(m[:, :2])))  # output pixels per input pixel
    if zoom >= ANTIALIAS_BELOW:
        return image, m
    f = int(1.0 / zoom)  # integer shrink keeps the pre-shrink at ~1-2 output pixels' worth of blur
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[-0.5, -0.5, 1], [out_w - 0.5, -0.5, 1], [out_w - 0.5, out_h - 0.5, 1],
                        [-0.5, out_h - 0.5, 1]]) @ inv.T
    h, w = image.shape[:2]
    margin = 2 * f
    rx0 = int(np.clip(np.floor(corners[:, 0].min()) - margin, 0, w - 1))
    ry0 = int(np.clip(np.floor(corners[:, 1].min()) - margin, 0, h - 1))
    rx1 = int(np.clip(np.ceil(corners[:, 0].max()) + margin + 1, rx0 + 1, w))
    ry1 = int(np.clip(np.ceil(corners[:, 1].max()) + margin + 1, ry0 + 1, h))
    roi = image[ry0:ry1, rx0:rx1]
    sw, sh = max(1, round(roi.shape[1] / f)), max(1, round(roi.shape[0] / f))
    small = cv2.resize(roi, (sw, sh), interpolation=cv2.INTER_AREA)
    fx, fy = roi.shape[1] / sw, roi.shape[0] / sh
    # small pixel centre i sits at source pixel centre rx0 + (i + 0.5) * fx - 0.5
    to_src = np.array([[fx, 0.0, rx0 + 0.5 * fx - 0.5], [0.0, fy, ry0 + 0.5 * fy - 0.5]])
    m2 = np.hstack([m[:, :2] @ to_src[:, :2], (m[:, :2] @ to_src[:, 2] + m[:, 2])[:, None]])
    return small, m2


def _warp(image: np.ndarray, m: np.ndarray, out_h: int, out_w: int, dst: np.ndarray | None = None) -> np.ndarray:
    src, m = _antialiased_source(image, m, out_h, out_w)
    if dst is None:
        return cv2.warpAffine(src, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=BORDER_MODE)
    cv2.warpAffine(src, m, (out_w, out_h), dst=dst, flags=cv2.INTER_LINEAR, borderMode=BORDER_MODE)
    return dst


def crop_face(image: np.ndarray, box: Sequence[float] | np.ndarray, landmarks: np.ndarray | None, out_h: int,
              out_w: int, scale: float = 1.0, rotate: bool = True) -> np.ndarray:
    """The aligned ``out_h x out_w`` uint8 crop of one face, in the image's own colour (HxWxC, or HxW for gray)."""
    m = face_transform(box, landmarks, out_h, out_w, scale, rotate)
    return _warp(np.ascontiguousarray(image), m, out_h, out_w)


def to_model_color(crop: np.ndarray, color_in: str, color_out: str) -> np.ndarray:
    """Convert a uint8 crop (HxWxC / HxW) or batch (NxHxWxC / NxHxW for gray) between rgb, bgr and gray.

    Gray output keeps the input's layout: a trailing channel axis of 1 when the input had a channel axis, none when
    it was a plain HxW (or NxHxW gray) array. The whole batch is converted in one OpenCV call.
    """
    cin, cout = check_color(color_in), check_color(color_out)
    if cin == cout:
        return crop
    code = _CONVERSIONS[(cin, cout)]
    arr = np.ascontiguousarray(crop)
    if cin == "gray" and arr.shape[-1] == 1 and arr.ndim in (3, 4):
        arr = arr[..., 0]
    batched = arr.ndim == (3 if cin == "gray" else 4)
    if batched and arr.shape[0] == 0:
        channels = 1 if cout == "gray" else 3
        return np.empty(arr.shape[:3] + (channels,), dtype=np.uint8)
    if batched:  # stack the batch vertically: one cvtColor call for every face
        n, h = arr.shape[0], arr.shape[1]
        flat = arr.reshape(n * h, *arr.shape[2:])
        out = cv2.cvtColor(flat, code)
        out = out.reshape(n, h, *out.shape[1:])
    else:
        out = cv2.cvtColor(arr, code)
    if cout == "gray":
        out = out[..., None]
    return out


def normalize(crops_uint8: np.ndarray, spec: InputSpec) -> np.ndarray:
    """``(N, H, W, C)`` (or ``(N, H, W)`` gray) uint8 -> ``(N, C, H, W)`` float32 ``(pixel / 255 - mean) / std``."""
    x = np.asarray(crops_uint8)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != spec.channels:
        raise ValueError(f"normalize expects (N, H, W, {spec.channels}) crops for {spec.color}, got {x.shape}")
    std = np.asarray(spec.std, dtype=np.float32)
    gain = (1.0 / (255.0 * std)).reshape(1, -1, 1, 1)
    offset = (-np.asarray(spec.mean, dtype=np.float32) / std).reshape(1, -1, 1, 1)
    out = np.empty((x.shape[0], x.shape[3], x.shape[1], x.shape[2]), dtype=np.float32)
    np.multiply(x.transpose(0, 3, 1, 2), gain, out=out)
    out += offset
    return out


def align_crops(image: np.ndarray, color: str, detections: Sequence[Detection], card: ModelCard) -> np.ndarray:
    """The aligned uint8 crops ``(N, H, W, C)`` of every detection in the card's colour (debug images, data sets)."""
    color = check_color(color)
    img = np.asarray(image)
    if color == "gray" and img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.dtype != np.uint8 or img.ndim != (2 if color == "gray" else 3):
        raise InvalidFrameError(f"align needs a uint8 {color} image, got {img.dtype} {img.shape}")
    img = np.ascontiguousarray(img)
    spec, crop = card.input, card.crop
    shape = (len(detections), spec.height, spec.width) + (() if color == "gray" else (img.shape[2],))
    batch = np.empty(shape, dtype=np.uint8)
    for i, d in enumerate(detections):
        m = face_transform(d.box, d.landmarks, spec.height, spec.width, crop.scale, crop.rotate)
        _warp(img, m, spec.height, spec.width, dst=batch[i])
    out = to_model_color(batch, color, spec.color)
    return out if out.ndim == 4 else out[..., None]


def align_batch(image: np.ndarray, color: str, detections: Sequence[Detection], card: ModelCard) -> np.ndarray:
    """Every detection of one frame as the model's input batch ``(N, C, H, W)`` float32 (N may be 0)."""
    return normalize(align_crops(image, color, detections, card), card.input)
