"""Print the EmotionArray messages a node publishes, one line per frame (what behaviour code would receive).

    python -m fer_ros.ros.emotion_echo [--count N] [--json]   (remap with --ros-args -r emotions:=/ns/emotions)
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from rclpy.node import Node

from fer_ros.msg import EmotionArray
from fer_ros.ros.lifecycle import run_node


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def format_emotions(msg: EmotionArray, age_ms: float | None = None) -> str:
    """One human-readable line for one EmotionArray."""
    faces = " | ".join(
        f"#{e.face_id} {e.label} {e.confidence:.2f} at ({e.roi.x_offset},{e.roi.y_offset} {e.roi.width}x"
        f"{e.roi.height})" for e in msg.emotions) or "no face"
    age = f", camera->msg {age_ms:.1f} ms" if age_ms is not None else ""
    return (f"[{stamp_seconds(msg.header.stamp):.3f}] {len(msg.emotions)} face(s): {faces}  "
            f"(processing {msg.processing_latency_ms:.1f} ms{age})")


def to_dict(msg: EmotionArray) -> dict:
    """A JSON-ready copy of an EmotionArray (tests and scripts parse it)."""
    return {
        "stamp": stamp_seconds(msg.header.stamp), "frame_id": msg.header.frame_id, "model_id": msg.model_id,
        "labels": list(msg.labels), "processing_latency_ms": msg.processing_latency_ms,
        "emotions": [{
            "face_id": e.face_id, "roi": [e.roi.x_offset, e.roi.y_offset, e.roi.width, e.roi.height],
            "landmarks": [[p.x, p.y] for p in e.landmarks], "detection_confidence": e.detection_confidence,
            "label": e.label, "confidence": e.confidence, "probabilities": list(e.probabilities),
            "frames_used": e.frames_used, "valence": e.valence, "arousal": e.arousal,
        } for e in msg.emotions],
    }


class EmotionEcho(Node):
    def __init__(self, count: int, as_json: bool) -> None:
        super().__init__("emotion_echo")
        self.count, self.as_json, self.received = count, as_json, 0
        self.create_subscription(EmotionArray, "emotions", self._on_msg, 10)

    def _on_msg(self, msg: EmotionArray) -> None:
        age_ms = (self.get_clock().now().nanoseconds * 1e-9 - stamp_seconds(msg.header.stamp)) * 1000.0
        if self.as_json:
            d = to_dict(msg)
            d["age_ms"] = age_ms
            d["received"] = time.time()
            print(json.dumps(d), flush=True)
        else:
            print(format_emotions(msg, age_ms), flush=True)
        self.received += 1
        if self.count and self.received >= self.count:
            raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=0, help="exit after this many messages (0 = never)")
    parser.add_argument("--json", action="store_true", help="one JSON object per message")
    args, ros_args = parser.parse_known_args(argv)
    return run_node(lambda: EmotionEcho(args.count, args.json), [sys.argv[0], *ros_args], "emotion_echo")


if __name__ == "__main__":
    sys.exit(main())
