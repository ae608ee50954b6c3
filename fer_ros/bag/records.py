"""What a run over a bag produced, in one shape for offline evaluation and live replay alike.

- :class:`MessageLedger`: every input message is counted exactly once as processed, dropped (with a reason) or
  unreadable (with a reason); ``check()`` proves nothing was lost.
- :class:`FrameRecord`: one processed frame (stamp, faces with id, box, label), from a ``FrameResult`` offline or
  from an ``EmotionArray`` read back from a bag.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_EXAMPLES_PER_REASON = 3  # messages quoted per drop/unreadable reason in a report: enough to find them in the bag


@dataclass
class MessageLedger:
    """Counts of the input messages of one topic by fate, with a few examples of each failure reason."""

    total: int = 0
    processed: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    unreadable: Counter = field(default_factory=Counter)  # reason -> count
    examples: list[dict[str, Any]] = field(default_factory=list)

    def _example(self, fate: str, reason: str, index: int, stamp: float | None, detail: str) -> None:
        if sum(1 for e in self.examples if e["fate"] == fate and e["reason"] == reason) < MAX_EXAMPLES_PER_REASON:
            self.examples.append({"fate": fate, "reason": reason, "message_index": index,
                                  "stamp": stamp, "detail": detail})

    def add_processed(self) -> None:
        self.total += 1
        self.processed += 1

    def add_dropped(self, reason: str, index: int, stamp: float | None, detail: str = "") -> None:
        self.total += 1
        self.dropped[reason] += 1
        self._example("dropped", reason, index, stamp, detail)

    def add_unreadable(self, reason: str, index: int, stamp: float | None, detail: str = "", count: int = 1) -> None:
        """``count`` > 1: a run of messages lost together (a damaged storage from message ``index`` on)."""
        self.total += count
        self.unreadable[reason] += count
        self._example("unreadable", reason, index, stamp, detail)

    def check(self) -> None:
        """Raise AssertionError if a message is unaccounted for (a bug in the tool, never the bag's fault)."""
        accounted = self.processed + sum(self.dropped.values()) + sum(self.unreadable.values())
        if accounted != self.total:
            raise AssertionError(f"message ledger does not add up: {self.total} messages, {accounted} accounted for")

    def as_dict(self) -> dict[str, Any]:
        self.check()
        return {
            "total": self.total,
            "processed": self.processed,
            "dropped": sum(self.dropped.values()),
            "unreadable": sum(self.unreadable.values()),
            "dropped_reasons": dict(sorted(self.dropped.items())),
            "unreadable_reasons": dict(sorted(self.unreadable.items())),
            "examples": list(self.examples),
        }


@dataclass
class FaceRecord:
    """One face of one processed frame, as the EmotionArray carries it."""

    face_id: int
    roi: tuple[int, int, int, int]  # x_offset, y_offset, width, height in source pixels
    label: str
    confidence: float
    probabilities: np.ndarray
    raw_label: str | None = None  # before temporal smoothing, when known

    @property
    def area(self) -> int:
        return int(self.roi[2]) * int(self.roi[3])


@dataclass
class FrameRecord:
    """One processed frame: header stamp, faces, and how long it took."""

    stamp_ns: int
    faces: list[FaceRecord]
    latency_ms: float  # processing_latency_ms of the EmotionArray (offline: decode + pipeline)
    stage_ms: dict[str, float] = field(default_factory=dict)  # per-stage timings, offline only

    @property
    def stamp(self) -> float:
        return self.stamp_ns * 1e-9

    def target_face(self, face_id: int | None) -> FaceRecord | None:
        """The face a label refers to: by face_id, or the largest when ``face_id`` is None."""
        if not self.faces:
            return None
        if face_id is None:
            return max(self.faces, key=lambda f: f.area)
        return next((f for f in self.faces if f.face_id == face_id), None)


def record_from_emotion_array(msg: Any) -> FrameRecord:
    """FrameRecord from an EmotionArray (rosbags or rclpy object)."""
    faces = [FaceRecord(int(e.face_id), (int(e.roi.x_offset), int(e.roi.y_offset), int(e.roi.width),
                                         int(e.roi.height)),
                        str(e.label), float(e.confidence), np.asarray(e.probabilities, dtype=np.float32))
             for e in msg.emotions]
    stamp_ns = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
    return FrameRecord(stamp_ns, faces, float(msg.processing_latency_ms))
