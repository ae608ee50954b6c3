"""FrameResult -> ``fer_ros/msg/EmotionArray`` as a rosbags message (no rclpy), and back into FrameRecords.

Field for field the same message fer_node publishes (``fer_ros.ros.conversions.result_to_msg``): header of the source
image, model id, label order, one Emotion per face with the roi clipped to the image, five landmarks, label,
confidence, probabilities, frames used, valence/arousal; processing latency in milliseconds.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fer_ros.bag.bag_io import EMOTION_ARRAY_TYPE
from fer_ros.bag.records import FaceRecord, FrameRecord
from fer_ros.datatypes import FrameResult


def face_roi(box: np.ndarray, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x_offset, y_offset, width, height): the box clipped to the image and rounded, as the node does."""
    height, width = image_size
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, y0 = max(0.0, x0), max(0.0, y0)
    x1, y1 = min(float(width), x1), min(float(height), y1)
    return int(round(x0)), int(round(y0)), max(0, int(round(x1 - x0))), max(0, int(round(y1 - y0)))


class EmotionArrayCodec:
    """Builds and serializes EmotionArray messages with a rosbags type store that knows fer_ros's messages."""

    def __init__(self, store: Any) -> None:
        self.store = store
        t = store.types
        self._array = t[EMOTION_ARRAY_TYPE]
        self._emotion = t["fer_ros/msg/Emotion"]
        self._header = t["std_msgs/msg/Header"]
        self._time = t["builtin_interfaces/msg/Time"]
        self._roi = t["sensor_msgs/msg/RegionOfInterest"]
        self._point = t["geometry_msgs/msg/Point32"]

    def build(self, result: FrameResult, stamp_sec: int, stamp_nanosec: int, frame_id: str,
              latency_ms: float) -> Any:
        """The EmotionArray for one processed frame, stamped with the source image's header."""
        emotions = []
        for face in result.faces:
            x, y, w, h = face_roi(face.box, result.image_size)
            landmarks = [self._point(x=float(px), y=float(py), z=0.0) for px, py in np.asarray(face.landmarks)[:5]]
            emotions.append(self._emotion(
                face_id=int(face.face_id),
                roi=self._roi(x_offset=x, y_offset=y, height=h, width=w, do_rectify=False),
                landmarks=landmarks,
                landmark_source=str(face.landmark_source),
                detection_confidence=float(face.detection_score),
                label=str(face.label),
                confidence=float(face.confidence),
                probabilities=np.asarray(face.probabilities, dtype=np.float32),
                frames_used=int(face.frames_used),
                valence=float(face.valence),
                arousal=float(face.arousal),
            ))
        return self._array(
            header=self._header(stamp=self._time(sec=int(stamp_sec), nanosec=int(stamp_nanosec)),
                                frame_id=str(frame_id)),
            model_id=str(result.model_id),
            labels=[str(v) for v in result.labels],
            emotions=emotions,
            processing_latency_ms=float(latency_ms),
        )

    def serialize(self, msg: Any) -> bytes:
        return bytes(self.store.serialize_cdr(msg, EMOTION_ARRAY_TYPE))

    def deserialize(self, raw: bytes) -> Any:
        return self.store.deserialize_cdr(raw, EMOTION_ARRAY_TYPE)


def record_from_result(result: FrameResult, stamp_ns: int, latency_ms: float,
                       stage_ms: dict[str, float], raw_labels: list[str] | None = None) -> FrameRecord:
    """FrameRecord of an offline result (same roi rounding as the message, so offline and live compare exactly)."""
    faces = [FaceRecord(int(f.face_id), face_roi(f.box, result.image_size), str(f.label), float(f.confidence),
                        np.asarray(f.probabilities, dtype=np.float32),
                        raw_labels[i] if raw_labels is not None else None)
             for i, f in enumerate(result.faces)]
    return FrameRecord(int(stamp_ns), faces, float(latency_ms), dict(stage_ms))
