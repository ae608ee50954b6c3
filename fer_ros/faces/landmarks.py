"""Five landmarks from mediapipe's face mesh, matched onto the detector's faces.

``MeshLandmarker.refine(rgb, detections)`` runs ``mediapipe.solutions.face_mesh`` once on the frame (468 points per
face, iris refinement off) and replaces each matched detection's landmarks with mesh points: eye centres as the mean
of the eye corners 33/133 and 362/263, nose tip 1, mouth corners 61 and 291. Mesh faces are matched to detections by
the overlap of the detection box with the box around the mesh points (greedy, best overlap first); a detection
without a matching mesh face keeps the detector's landmarks, and that is counted in ``MeshStats.unmatched``.

Modes: tracking (``static=False``, for video: the mesh follows faces between frames and re-detects only when it loses
one; ~1 ms per face here) and static (``static=True``, for unrelated images: detection on every call). The mesh only
runs its own short-range detector, so faces the full-range model finds far away may stay unmatched.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from fer_ros.datatypes import Detection
from fer_ros.errors import DetectorUnavailableError
from fer_ros.faces.detector import DetectorConfig, box_iou
from fer_ros.frames import read_only

# Mesh point indices giving fer_ros's five landmarks: image-left eye corners, image-right eye corners, nose tip,
# image-left and image-right mouth corners (for an upright, unmirrored face).
MESH_LEFT_EYE = (33, 133)
MESH_RIGHT_EYE = (362, 263)
MESH_NOSE_TIP = 1
MESH_MOUTH_CORNERS = (61, 291)
_MESH_POINTS = (*MESH_LEFT_EYE, *MESH_RIGHT_EYE, MESH_NOSE_TIP, *MESH_MOUTH_CORNERS)
# The box around these seven points, grown by this factor about its centre, approximates a detector's face box.
POINTS_BOX_GROWTH = 1.6
# Minimum overlap (IoU) between a detection box and a mesh face's box to take the mesh's landmarks.
MIN_MATCH_IOU = 0.3
# Mesh confidence thresholds: mediapipe's documented defaults.
MESH_MIN_DETECTION_CONFIDENCE = 0.5
MESH_MIN_TRACKING_CONFIDENCE = 0.5

_log = logging.getLogger(__name__)


@dataclass
class MeshStats:
    """Counts for diagnostics: faces refined by the mesh and detections the mesh did not cover."""

    frames: int = 0
    refined: int = 0
    unmatched: int = 0


def mesh_points_to_landmarks(points: np.ndarray) -> np.ndarray:
    """The seven mesh points (N, 7, 2) in ``_MESH_POINTS`` order -> five fer_ros landmarks (N, 5, 2)."""
    p = np.asarray(points, dtype=np.float32).reshape(-1, 7, 2)
    return np.stack([p[:, 0:2].mean(axis=1), p[:, 2:4].mean(axis=1), p[:, 4], p[:, 5], p[:, 6]], axis=1)


def points_box(points: np.ndarray) -> np.ndarray:
    """A face-sized box (N, 4) around each face's mesh points (N, K, 2)."""
    lo, hi = points.min(axis=1), points.max(axis=1)
    c, half = (lo + hi) / 2, (hi - lo).max(axis=1, keepdims=True) / 2 * POINTS_BOX_GROWTH
    return np.concatenate([c - half, c + half], axis=1)


class MeshLandmarker:
    """Refines detections' landmarks with the face mesh; one mediapipe graph per instance."""

    def __init__(self, max_faces: int = 8, static: bool = False):
        try:
            import mediapipe as mp

            face_mesh = mp.solutions.face_mesh
        except (ImportError, AttributeError) as exc:
            raise DetectorUnavailableError(f"the face mesh needs mediapipe 0.10.21 (0.10.18 on aarch64): {exc}; "
                                           f"or switch it off (use_mesh: false)") from exc
        self.static = static
        self.max_faces = max_faces
        self._graph = face_mesh.FaceMesh(static_image_mode=static, max_num_faces=max_faces, refine_landmarks=False,
                                         min_detection_confidence=MESH_MIN_DETECTION_CONFIDENCE,
                                         min_tracking_confidence=MESH_MIN_TRACKING_CONFIDENCE)
        self.name = f"mediapipe-face-mesh[{'static' if static else 'tracking'}]"
        self.stats = MeshStats()

    def landmarks(self, rgb: np.ndarray) -> np.ndarray:
        """Five landmarks (M, 5, 2) of every face the mesh finds in an RGB frame."""
        if self._graph is None:
            raise RuntimeError(f"{self.name} was closed")
        h, w = rgb.shape[:2]
        faces = self._graph.process(read_only(rgb)).multi_face_landmarks or ()
        pts = np.empty((len(faces), len(_MESH_POINTS), 2), dtype=np.float32)
        for i, f in enumerate(faces):
            lm = f.landmark
            pts[i] = [(lm[j].x, lm[j].y) for j in _MESH_POINTS]
        pts *= np.array([w, h], dtype=np.float32)
        return mesh_points_to_landmarks(pts)

    def refine(self, rgb: np.ndarray, detections: list[Detection]) -> list[Detection]:
        """The same detections, those the mesh covers with mesh landmarks (new objects; inputs are not modified)."""
        self.stats.frames += 1
        if not detections:
            return []
        lms = self.landmarks(rgb)
        out = list(detections)
        matched = 0
        if len(lms):
            iou = box_iou(np.stack([d.box for d in detections]), points_box(lms))
            for _ in range(min(iou.shape)):
                i, j = np.unravel_index(np.argmax(iou), iou.shape)
                if iou[i, j] < MIN_MATCH_IOU:
                    break
                out[i] = replace(detections[i], landmarks=lms[j].copy())
                iou[i, :] = -1.0
                iou[:, j] = -1.0
                matched += 1
        self.stats.refined += matched
        self.stats.unmatched += len(detections) - matched
        return out

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def __enter__(self) -> MeshLandmarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def create_landmarker(cfg: DetectorConfig, logger: logging.Logger | None = None) -> MeshLandmarker | None:
    """The mesh refiner a detector configuration asks for, or None when ``use_mesh`` is off.

    When mediapipe is missing (the OpenCV fallback) this logs a warning and returns None instead of failing, so the
    fallback detector keeps working; the detector's own landmarks are used then.
    """
    if not cfg.use_mesh:
        return None
    try:
        mesh = MeshLandmarker(max_faces=cfg.max_faces, static=cfg.static_images)
    except DetectorUnavailableError as exc:
        (logger or _log).warning("face mesh off: %s", exc)
        return None
    (logger or _log).info("landmarks: %s", mesh.name)
    return mesh
