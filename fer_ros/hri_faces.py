"""ROS4HRI (REP-155) conventions for fer_ros's faces, as plain values: ids, regions, landmarks, expressions. No ROS.

REP-155 clients (libhri, pyhri, hri_rviz) know a face only by a string id listed on ``/humans/faces/tracked``; every
per-face topic lives under ``/humans/faces/<id>/``. The node (``fer_ros.ros.hri``) turns these values into hri_msgs.

- Ids: ``<token><track id>``, e.g. ``kqzd3``. The token is four random lowercase letters drawn once per node run, so
  a restarted node does not reuse the ids of the previous run; the track id keeps an id stable while its track lives.
- Regions: the detection box divided by the image size and clipped to [0, 1]; ``c`` is the detection score.
- Landmarks: fer_ros's five points go to their places in FacialLandmarks' 70 (dlib/OpenPose order, "right" being the
  person's right, which is the image's left for a camera facing them): pupils 68/69, nose tip 30, outer mouth
  corners 48/54. The other 65 are zero with confidence 0.
- Expressions: FER2013 labels map onto Expression's string constants (fear -> scared, surprise -> surprised,
  disgust -> disgusted); a label with no constant is passed on as it is. Valence and arousal are 0 when the model
  gives none (Expression has no "unknown" value).
"""
from __future__ import annotations

import math
import random
import string

import numpy as np

TOKEN_LETTERS = 4  # 26**4 = 457k tokens: two nodes or runs colliding is unlikely; short enough to read in topics

# FER2013 label -> hri_msgs/Expression constant value
HRI_EXPRESSIONS = {"angry": "angry", "disgust": "disgusted", "fear": "scared", "happy": "happy", "sad": "sad",
                   "surprise": "surprised", "neutral": "neutral"}

NUM_HRI_LANDMARKS = 70  # FacialLandmarks.landmarks is a fixed array of this many points
# fer_ros landmark index (fer_ros.datatypes order) -> FacialLandmarks index
HRI_LANDMARK_SLOTS = (68,  # image-left eye: the person's right pupil (RIGHT_PUPIL)
                      69,  # image-right eye: LEFT_PUPIL
                      30,  # nose tip: NOSE
                      48,  # image-left mouth corner: MOUTH_OUTER_RIGHT
                      54)  # image-right mouth corner: MOUTH_OUTER_LEFT


def _unit(value: float) -> float:
    """``value`` clipped to [0, 1] (NaN -> 0)."""
    return min(1.0, max(0.0, float(value))) if math.isfinite(value) else 0.0


class FaceIds:
    """REP-155 string ids for one run's integer track ids."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token if token is not None else "".join(
            random.SystemRandom().choice(string.ascii_lowercase) for _ in range(TOKEN_LETTERS))

    def __call__(self, track_id: int) -> str:
        return f"{self.token}{int(track_id)}"


def normalized_roi(box: np.ndarray, image_size: tuple[int, int], score: float) -> tuple[float, ...]:
    """(xmin, ymin, xmax, ymax, c) of a pixel box in an image of (height, width), every value in [0, 1]."""
    height, width = image_size
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    return _unit(x0 / width), _unit(y0 / height), _unit(x1 / width), _unit(y1 / height), _unit(score)


def normalized_landmarks(landmarks: np.ndarray, image_size: tuple[int, int], score: float) -> np.ndarray | None:
    """(70, 3) x, y, c in FacialLandmarks order, or None when the five points are unknown (NaN)."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(pts) < len(HRI_LANDMARK_SLOTS) or not np.isfinite(pts[:len(HRI_LANDMARK_SLOTS)]).all():
        return None
    height, width = image_size
    out = np.zeros((NUM_HRI_LANDMARKS, 3), np.float32)
    for (x, y), slot in zip(pts, HRI_LANDMARK_SLOTS):
        out[slot] = (_unit(x / width), _unit(y / height), _unit(score))
    return out


def box_crop(frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The pixels of ``frame`` inside ``box`` (clipped to the frame; a view), or None when nothing is left."""
    height, width = frame.shape[:2]
    x0, y0 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
    x1, y1 = min(width, int(math.ceil(box[2]))), min(height, int(math.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        return None
    return frame[y0:y1, x0:x1]


def expression_fields(label: str, confidence: float, valence: float = math.nan,
                      arousal: float = math.nan) -> dict[str, object]:
    """The hri_msgs/Expression content for one face (the header is the caller's)."""
    return {"expression": HRI_EXPRESSIONS.get(label, label), "confidence": float(confidence),
            "valence": 0.0 if math.isnan(valence) else float(valence),
            "arousal": 0.0 if math.isnan(arousal) else float(arousal)}
