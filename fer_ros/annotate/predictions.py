"""The node's predictions read back from a scored bag, so the annotation window can show them beside the labels.

A scored bag is one the node's ``emotions`` output (``fer_ros/msg/EmotionArray``) was recorded into (``fer-ros
replay`` writes one). Each EmotionArray carries the header stamp of the image it was computed from, so the
prediction for a frame is the array whose stamp is nearest the frame's, within half a frame period.
"""
from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fer_ros.bag.bag_io import EMOTION_ARRAY_TYPE, BagError, open_bag


@dataclass(frozen=True)
class FacePrediction:
    """One face of one EmotionArray: the node's top label and its probability."""

    face_id: int
    label: str
    confidence: float
    box: tuple[int, int, int, int]  # the roi: x, y, width, height in image pixels

    @property
    def area(self) -> float:
        """roi width * height, to find the largest face."""
        return float(self.box[2] * self.box[3])


@dataclass
class PredictionTrack:
    """EmotionArray messages of one topic, sorted by image stamp."""

    topic: str
    stamps: list[float] = field(default_factory=list)
    faces: list[list[FacePrediction]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # messages that could not be read, counted

    def at(self, stamp: float, tolerance: float) -> list[FacePrediction] | None:
        """The faces predicted for the image with ``stamp`` (largest first); None when no array is that close.

        An empty list means the node saw no face in that frame.
        """
        pos = bisect.bisect_left(self.stamps, stamp)
        near = [p for p in (pos - 1, pos) if 0 <= p < len(self.stamps)]
        if not near:
            return None
        best = min(near, key=lambda p: abs(self.stamps[p] - stamp))
        if abs(self.stamps[best] - stamp) > tolerance + 1e-9:
            return None
        return self.faces[best]

    def overlap_problem(self, frame_stamps: Sequence[float], tolerance: float) -> str | None:
        """Why no prediction will be shown, when none of the arrays is stamped on a frame of the recording (scored
        from another recording, or the stamps were changed); None when at least one frame has its prediction."""
        if not self.stamps or not len(frame_stamps):
            return None
        if any(self.at(float(s), tolerance) is not None for s in frame_stamps):
            return None
        return (f"predictions on {self.topic} ({self.stamps[0]:.3f}..{self.stamps[-1]:.3f} s) match no frame of "
                f"this recording ({float(frame_stamps[0]):.3f}..{float(frame_stamps[-1]):.3f} s): were they scored "
                f"on another recording?")


def load_predictions(bag_path: str | Path, topic: str | None = None) -> PredictionTrack:
    """Read every EmotionArray of ``topic`` (default: the bag's only EmotionArray topic) from a rosbag2 recording."""
    with open_bag(bag_path) as bag:
        if topic is None:
            found = [t.name for t in bag.topics() if t.msgtype == EMOTION_ARRAY_TYPE]
            if len(found) != 1:
                raise BagError(f"{'no' if not found else 'several'} {EMOTION_ARRAY_TYPE} topics in {bag_path}"
                               f"{': ' + ', '.join(found) if found else ''}; name one with --predictions-topic. "
                               f"{bag.describe()}")
            topic = found[0]
        track = PredictionTrack(topic)
        rows: list[tuple[float, list[FacePrediction]]] = []
        for n, message in enumerate(bag.messages(bag.connections(topic, [EMOTION_ARRAY_TYPE]))):
            try:
                msg = bag.deserialize(message)
                stamp = int(msg.header.stamp.sec) + int(msg.header.stamp.nanosec) * 1e-9
                faces = [FacePrediction(int(e.face_id), str(e.label).lower(), float(e.confidence),
                                        (int(e.roi.x_offset), int(e.roi.y_offset), int(e.roi.width),
                                         int(e.roi.height))) for e in msg.emotions]
            except Exception as exc:  # a damaged message is counted and shown, the others still serve
                track.problems.append(f"{topic} message {n}: unreadable ({type(exc).__name__}: {exc})")
                continue
            rows.append((stamp, sorted(faces, key=lambda f: -f.area)))
    rows.sort(key=lambda r: r[0])
    track.stamps = [r[0] for r in rows]
    track.faces = [r[1] for r in rows]
    return track
