"""mediapipe BlazeFace detector (``mediapipe.solutions.face_detection``, models bundled in the 0.10.21 wheel).

BlazeFace gives a box and six keypoints per face: the subject's right eye, left eye, nose tip, mouth centre, right and
left ear tragion. fer_ros uses five points (see ``fer_ros.datatypes``): the two eyes and the nose tip are taken as they
are; the two mouth corners, which BlazeFace does not give, are estimated from the mouth centre and the eye geometry:
they lie on the line through the mouth centre parallel to the eye line, ``MOUTH_WIDTH_PER_EYE_DISTANCE`` eye
distances apart, raised by ``MOUTH_CORNER_RAISE`` eye distances towards the eyes. Both ratios were measured as the
median over 98 faces of scikit-image's LFW subset, comparing BlazeFace keypoints with the face mesh's mouth corners
(points 61 and 291); ``bench/bench_faces.py`` re-measures the resulting corner error. When the face mesh is on
(``fer_ros.faces.landmarks``) the mesh's own points replace these estimates.

The mediapipe graph is built once per detector; each frame is handed over as a read-only contiguous view so mediapipe
needs no defensive copy.
"""
from __future__ import annotations

import numpy as np

from fer_ros.datatypes import Detection
from fer_ros.errors import DetectorUnavailableError
from fer_ros.faces.detector import DetectorBase, DetectorConfig, DetectorStats, select_detections
from fer_ros.frames import read_only

# Mouth width over eye distance (median 0.76 on 98 LFW faces, 10-90 % 0.64-0.87): places the estimated corners.
MOUTH_WIDTH_PER_EYE_DISTANCE = 0.76
# The mesh's mouth-corner midpoint sits this many eye distances above BlazeFace's mouth centre (median 0.055).
MOUTH_CORNER_RAISE = 0.055
# mediapipe model_selection per fer_ros model name
MODEL_SELECTION = {"short": 0, "full": 1}
NUM_KEYPOINTS = 6  # BlazeFace keypoints per face


def _import_mediapipe():
    try:
        import mediapipe as mp

        return mp.solutions.face_detection, mp.solutions.face_mesh
    except (ImportError, AttributeError) as exc:  # AttributeError: a mediapipe without .solutions (>= 0.10.30)
        raise DetectorUnavailableError(
            f"mediapipe with bundled face models is not importable ({exc}); install mediapipe==0.10.21 "
            f"(0.10.18 on aarch64)") from exc


def keypoints_to_landmarks(keypoints: np.ndarray) -> np.ndarray:
    """Six BlazeFace keypoints (N, 6, 2) -> fer_ros five points (N, 5, 2): eyes, nose tip, estimated mouth corners."""
    kp = np.asarray(keypoints, dtype=np.float32).reshape(-1, NUM_KEYPOINTS, 2)
    eye_vec = kp[:, 1] - kp[:, 0]  # from the image-left eye to the image-right eye
    # the face's "up" direction, perpendicular to the eye line (image y grows downwards)
    up = np.stack([eye_vec[:, 1], -eye_vec[:, 0]], axis=1)
    mouth_mid = kp[:, 3] + MOUTH_CORNER_RAISE * up
    half = 0.5 * MOUTH_WIDTH_PER_EYE_DISTANCE * eye_vec
    out = np.empty((len(kp), 5, 2), dtype=np.float32)
    out[:, 0] = kp[:, 0]
    out[:, 1] = kp[:, 1]
    out[:, 2] = kp[:, 2]
    out[:, 3] = mouth_mid - half
    out[:, 4] = mouth_mid + half
    return out


class MediapipeDetector(DetectorBase):
    """BlazeFace short- or full-range detection with fer_ros selection rules (see ``DetectorConfig``)."""

    def __init__(self, cfg: DetectorConfig | None = None):
        self.cfg = (cfg or DetectorConfig()).validate()
        face_detection, _ = _import_mediapipe()
        # The graph applies min_confidence itself, so low-score faces never cross into Python (and are not counted
        # in stats.dropped_low_score, which counts what a backend passed on).
        self._graph = face_detection.FaceDetection(model_selection=MODEL_SELECTION[self.cfg.model],
                                                   min_detection_confidence=self.cfg.min_confidence)
        self.name = f"mediapipe[{self.cfg.model}]"
        self.stats = DetectorStats()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an HxWx3 uint8 RGB frame, best first."""
        self._check_input(rgb)
        h, w = rgb.shape[:2]
        found = self._graph.process(read_only(rgb)).detections or ()
        n = len(found)
        boxes = np.empty((n, 4), dtype=np.float32)
        scores = np.empty(n, dtype=np.float32)
        kps = np.empty((n, NUM_KEYPOINTS, 2), dtype=np.float32)
        for i, d in enumerate(found):
            loc = d.location_data
            b = loc.relative_bounding_box
            boxes[i] = (b.xmin, b.ymin, b.xmin + b.width, b.ymin + b.height)
            scores[i] = d.score[0] if d.score else 0.0
            kp = loc.relative_keypoints
            if len(kp) >= NUM_KEYPOINTS:
                kps[i] = [(p.x, p.y) for p in kp[:NUM_KEYPOINTS]]
            else:  # never seen with the bundled models; keep the face and say its landmarks are unknown
                kps[i] = np.nan
        scale = np.array([w, h], dtype=np.float32)
        boxes *= np.tile(scale, 2)
        kps *= scale
        lms = keypoints_to_landmarks(kps)
        return select_detections(boxes, scores, lms, self.cfg, (h, w), self.stats)

    def _release(self) -> None:
        self._graph.close()
