"""Draw a FrameResult onto a frame: boxes, landmarks, ids and labels (the node's debug image, demos, reports)."""
from __future__ import annotations

import cv2
import numpy as np

from fer_ros.datatypes import FrameResult

# BGR colour per FER2013 label; other label sets fall back to white.
LABEL_COLORS = {"angry": (40, 40, 230), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (40, 200, 240),
                "sad": (200, 120, 40), "surprise": (40, 160, 255), "neutral": (200, 200, 200)}


def draw_results(frame_bgr: np.ndarray, result: FrameResult) -> np.ndarray:
    """Return a copy of ``frame_bgr`` (HxWx3 uint8) with every face of ``result`` drawn on it.

    Draws what exists: the box always, only the landmarks that are finite (detectors without keypoints, or a face
    the mesh was not run on, give NaN), the label only for labelled faces. A box that is not finite is skipped.
    """
    canvas = np.array(frame_bgr, dtype=np.uint8, copy=True)
    for face in result.faces:
        box = np.asarray(face.box, dtype=np.float64)
        if box.shape != (4,) or not np.isfinite(box).all():
            continue
        color = LABEL_COLORS.get(face.label, (255, 255, 255))
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, 2)
        points = np.asarray(face.landmarks, dtype=np.float64).reshape(-1, 2)
        for x, y in points[np.isfinite(points).all(axis=1)]:
            cv2.circle(canvas, (int(round(x)), int(round(y))), 2, (0, 255, 0), -1)
        text = f"#{face.face_id} {face.label} {face.confidence:.2f}" if face.label else f"#{face.face_id}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y0 - th - 6)
        cv2.rectangle(canvas, (x0, top), (x0 + tw + 4, top + th + 6), color, -1)
        cv2.putText(canvas, text, (x0 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
