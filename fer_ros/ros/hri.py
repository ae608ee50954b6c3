"""Optional ROS4HRI output (REP-155): hri_msgs/Expression on /humans/faces/<id>/expression for every tracked face.

Enabled when ``hri_msgs`` is importable (it is not on PyPI, so not in this repository's venv; on a robot with the
ROS4HRI stack installed it is). Publishers are created when a face appears and destroyed with its track.
"""
from __future__ import annotations

import math

PUBLISHER_GRACE_FRAMES = 30  # frames a face may be absent before its publisher goes (1 s at 30 Hz; avoids churn)

# FER2013 label -> hri_msgs/Expression constant (the values of its string constants)
HRI_EXPRESSIONS = {"angry": "angry", "disgust": "disgusted", "fear": "scared", "happy": "happy", "sad": "sad",
                   "surprise": "surprised", "neutral": "neutral"}


def hri_face_id(face_id: int) -> str:
    """ROS4HRI face ids are strings of letters/digits; ours are integers."""
    return f"fer{face_id}"


def expression_fields(label: str, confidence: float, valence: float, arousal: float) -> dict:
    """The hri_msgs/Expression content for one face (header set by the caller)."""
    return {"expression": HRI_EXPRESSIONS.get(label, label), "confidence": float(confidence),
            "valence": 0.0 if math.isnan(valence) else float(valence),
            "arousal": 0.0 if math.isnan(arousal) else float(arousal)}


def import_expression():
    """hri_msgs.msg.Expression, or None with the reason when hri_msgs is not installed."""
    try:
        from hri_msgs.msg import Expression
    except ImportError as exc:
        return None, f"hri_msgs is not installed ({exc})"
    return Expression, ""


class HriPublisher:
    """Keeps one Expression publisher per visible face id, and drops those of faces that are gone."""

    def __init__(self, node, expression_type) -> None:
        self._node = node
        self._type = expression_type
        self._publishers: dict[int, object] = {}
        self._last_seen: dict[int, int] = {}
        self._frame = 0

    def publish(self, header, faces) -> None:
        self._frame += 1
        for face in faces:
            self._last_seen[face.face_id] = self._frame
            pub = self._publishers.get(face.face_id)
            if pub is None:
                topic = f"/humans/faces/{hri_face_id(face.face_id)}/expression"
                pub = self._publishers[face.face_id] = self._node.create_publisher(self._type, topic, 1)
            msg = self._type()
            msg.header = header
            for key, value in expression_fields(face.label, face.confidence, face.valence, face.arousal).items():
                setattr(msg, key, value)
            pub.publish(msg)
        gone = [i for i, last in self._last_seen.items() if self._frame - last > PUBLISHER_GRACE_FRAMES]
        for face_id in gone:
            del self._last_seen[face_id]
            self._node.destroy_publisher(self._publishers.pop(face_id))
