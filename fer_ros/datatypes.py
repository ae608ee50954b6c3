"""Values passed between the stages of the perception core. Plain dataclasses over numpy; no ROS.

Coordinates are source-image pixels, x to the right, y down. Boxes are (x0, y0, x1, y1) float.
Landmarks are five (x, y) points in this order: eye on the image's left, eye on the image's right, nose tip,
mouth corner on the image's left, mouth corner on the image's right.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

NUM_LANDMARKS = 5  # eyes, nose tip, mouth corners: what alignment and the messages use


@dataclass
class Detection:
    """One face found by a detector (landmarks may be refined later by the face mesh)."""

    box: np.ndarray  # (4,) float32 x0, y0, x1, y1
    score: float
    landmarks: np.ndarray | None = None  # (5, 2) float32 or None when the detector gives none
    landmark_source: str = "detector"  # where the landmarks come from: detector | mesh (none when landmarks is None)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], dtype=np.float32)


@dataclass
class TrackedFace:
    """A detection associated with a track; ``confirmed`` once the track has had enough hits to be reported."""

    track_id: int
    detection: Detection
    hits: int
    confirmed: bool


@dataclass
class FaceResult:
    """What the pipeline reports for one face in one frame."""

    face_id: int
    box: np.ndarray  # (4,) float32 x0, y0, x1, y1 in source pixels
    landmarks: np.ndarray  # (5, 2) float32 in source pixels
    detection_score: float
    label: str
    confidence: float
    probabilities: np.ndarray  # (num_labels,) float32, sums to 1, in FrameResult.labels order
    frames_used: int = 1
    valence: float = math.nan
    arousal: float = math.nan
    landmark_source: str = "detector"  # detector (its five points) | mesh (the face mesh) | none (NaN landmarks)
    aligned: np.ndarray | None = None  # (H, W, C) uint8 crop the model saw, card colour; PipelineConfig.keep_aligned

    @property
    def labelled(self) -> bool:
        """False for faces below ``detector.min_face_size``: tracked and reported, but with no expression
        (``label`` "", ``confidence`` NaN, empty ``probabilities``)."""
        return bool(self.label)


@dataclass
class StageTimings:
    """Wall time of each stage for one frame, in milliseconds."""

    detect_ms: float = 0.0
    landmarks_ms: float = 0.0
    track_ms: float = 0.0
    align_ms: float = 0.0
    infer_ms: float = 0.0
    temporal_ms: float = 0.0
    total_ms: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class FrameResult:
    """Every reported face of one frame, with the labels their probability vectors follow and stage timings."""

    stamp: float  # seconds, as given to EmotionPipeline.process
    image_size: tuple[int, int]  # (height, width)
    model_id: str
    labels: tuple[str, ...]
    faces: list[FaceResult] = field(default_factory=list)
    timings: StageTimings = field(default_factory=StageTimings)
