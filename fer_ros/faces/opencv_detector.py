"""OpenCV Haar-cascade face detector: the fallback where mediapipe cannot be installed.

Uses ``haarcascade_frontalface_alt2.xml`` from ``cv2.data.haarcascades`` (OpenCV 4.x wheels ship it; 5.x wheels do
not). It is slower and less robust than BlazeFace (frontal, roughly upright faces only) and gives no landmarks, so its
detections carry ``landmarks=None`` and alignment crops them without rotation. To keep its cost bounded the cascade
runs on a copy of the frame scaled down to ``DETECT_WIDTH`` pixels wide.

Its boxes are moved onto BlazeFace's box convention (Haar boxes reach higher, into the forehead) so that a model
card's ``crop.scale`` means the same with either detector. Its score is the number of overlapping cascade hits ``n``
mapped to ``n / (n + MIN_NEIGHBORS)``: a vote count, not a probability, 0.5 at the cascade's own acceptance level.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_ros.datatypes import Detection
from fer_ros.errors import DetectorUnavailableError
from fer_ros.faces.detector import DetectorBase, DetectorConfig, DetectorStats, select_detections

CASCADE_FILE = "haarcascade_frontalface_alt2.xml"  # the most precise frontal cascade OpenCV ships
DETECT_WIDTH = 320  # pixels: frames wider than this are scaled down first (640x480: ~110 ms -> ~35 ms here)
SCALE_FACTOR = 1.1  # cascade pyramid step: OpenCV's usual trade-off between recall and time
MIN_NEIGHBORS = 3  # overlapping hits a face needs; lower finds more faces and more false ones
# Haar box -> BlazeFace-like box: centre moved down by this fraction of the box height, side scaled by the factor.
# Medians against BlazeFace on 99 LFW faces (0.12, 0.91) and on the astronaut at 30 placements (0.16, 0.96).
BOX_SHIFT_DOWN = 0.14
BOX_SIDE_FACTOR = 0.93
# Smallest face the cascade looks for, in frame pixels: smaller windows multiply its cost and its false boxes, and
# Haar finds few faces under ~30 px anyway (0/36 at 30 px in the distance benchmark).
MIN_FACE_PX = 24


def cascade_path() -> Path:
    """The bundled cascade file, or ``DetectorUnavailableError`` saying how to get one."""
    base = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(base or "") / CASCADE_FILE
    if not base or not path.is_file():
        raise DetectorUnavailableError(f"OpenCV {cv2.__version__} ships no Haar cascade ({CASCADE_FILE} not found "
                                       f"under cv2.data.haarcascades); install opencv-python 4.x (5.x has none)")
    return path


class OpenCVDetector(DetectorBase):
    """Haar-cascade detection with fer_ros selection rules; no landmarks."""

    def __init__(self, cfg: DetectorConfig | None = None):
        self.cfg = (cfg or DetectorConfig()).validate()
        path = cascade_path()
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise DetectorUnavailableError(f"OpenCV could not load the Haar cascade {path}")
        self.name = f"opencv[{path.stem}]"
        self.stats = DetectorStats()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an HxWx3 uint8 RGB frame, best first."""
        self._check_input(rgb)
        h, w = rgb.shape[:2]
        factor = min(1.0, DETECT_WIDTH / w)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if factor < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * factor)), max(1, round(h * factor))),
                              interpolation=cv2.INTER_AREA)
        min_side = max(1, int(MIN_FACE_PX * factor / BOX_SIDE_FACTOR))
        rects, votes = self._cascade.detectMultiScale2(gray, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS,
                                                       minSize=(min_side, min_side))
        rects = np.asarray(rects, dtype=np.float32).reshape(-1, 4) / factor
        votes = np.asarray(votes, dtype=np.float32).reshape(-1)
        side = rects[:, 2] * BOX_SIDE_FACTOR
        cx = rects[:, 0] + rects[:, 2] / 2
        cy = rects[:, 1] + rects[:, 3] * (0.5 + BOX_SHIFT_DOWN)
        boxes = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)
        scores = votes / (votes + MIN_NEIGHBORS)
        return select_detections(boxes, scores, None, self.cfg, (h, w), self.stats)

    def _release(self) -> None:
        self._cascade = None
