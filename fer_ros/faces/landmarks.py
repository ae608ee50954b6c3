"""Five landmarks from mediapipe's face mesh, matched onto the detector's faces.

``MeshLandmarker.refine(rgb, detections)`` runs ``mediapipe.solutions.face_mesh`` once on the frame (468 points per
face, iris refinement off) and replaces each matched detection's landmarks with mesh points: eye centres as the mean
of the eye corners 33/133 and 362/263, nose tip 1, mouth corners 61 and 291. Mesh faces are matched to detections by
the overlap of the detection box with a box derived from the mesh points (greedy, best overlap first); a detection
without a matching mesh face keeps the detector's landmarks, and that is counted in ``MeshStats.unmatched``. A mesh
face that matches no detection is never used.

Modes: tracking (``static=False``, for video: the mesh follows faces between frames and re-detects only when it
tracks fewer faces than it was built for; ~1.5-2 ms per face here) and static (``static=True``, for unrelated
images: detection on every call). Tracking mode is also the more accurate on video (95th percentile landmark error
0.055 against 0.28 eye distances on five 90-pixel faces, ``bench/bench_faces.py``). The mesh only runs its own
short-range detector, so faces the full-range model finds far away may stay unmatched.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from fer_ros.datatypes import Detection
from fer_ros.errors import ConfigError, DetectorUnavailableError
from fer_ros.faces.detector import DetectorConfig, box_iou
from fer_ros.frames import read_only

# Mesh point indices giving fer_ros's five landmarks: image-left eye corners, image-right eye corners, nose tip,
# image-left and image-right mouth corners (for an upright, unmirrored face).
MESH_LEFT_EYE = (33, 133)
MESH_RIGHT_EYE = (362, 263)
MESH_NOSE_TIP = 1
MESH_MOUTH_CORNERS = (61, 291)
_MESH_POINTS = (*MESH_LEFT_EYE, *MESH_RIGHT_EYE, MESH_NOSE_TIP, *MESH_MOUTH_CORNERS)
# A BlazeFace-like box from these seven points: a square of this many times their extent, centred on them and moved
# down by POINTS_BOX_SHIFT_DOWN of its side. Medians over 120 faces (astronaut frames, LFW): 1.67 (5-95 %: 1.50-1.92)
# and 0.053 (0.00-0.11).
POINTS_BOX_GROWTH = 1.67
POINTS_BOX_SHIFT_DOWN = 0.05
# Minimum overlap (IoU) between a detection box and a mesh face's box to take the mesh's landmarks. Right matches
# measured 0.67 (5 %) to 0.94 (95 %) over 132 faces; a tracking graph holding on to a stale face gave 0.27-0.40.
MIN_MATCH_IOU = 0.5
# A tracking graph left unused for more calls than this is restarted before it runs again: its remembered faces may
# have moved or changed size so much that it would converge on them slowly (seen: 0.26 eye distances off two frames
# after a switch). A restart costs ~1.6 ms plus ~9 ms on its next frame here, so brief flicker (a face seen in every
# other frame) does not trigger it.
MESH_IDLE_RESET_CALLS = 3
# How many faces more than max_faces a mesh graph may be built for (faces the detector filtered out, see escalation).
MESH_SPARE_FACES = 2
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
    escalations: int = 0  # face counts moved to a bigger graph (see MeshLandmarker)
    resets: int = 0  # idle tracking graphs restarted before reuse


def mesh_points_to_landmarks(points: np.ndarray) -> np.ndarray:
    """The seven mesh points (N, 7, 2) in ``_MESH_POINTS`` order -> five fer_ros landmarks (N, 5, 2)."""
    p = np.asarray(points, dtype=np.float32).reshape(-1, 7, 2)
    return np.stack([p[:, 0:2].mean(axis=1), p[:, 2:4].mean(axis=1), p[:, 4], p[:, 5], p[:, 6]], axis=1)


def points_box(points: np.ndarray) -> np.ndarray:
    """A detector-like face box (N, 4) from each face's seven mesh points (N, 7, 2)."""
    lo, hi = points.min(axis=1), points.max(axis=1)
    half = (hi - lo).max(axis=1, keepdims=True) / 2 * POINTS_BOX_GROWTH
    c = (lo + hi) / 2 + np.concatenate([np.zeros_like(half), 2 * half * POINTS_BOX_SHIFT_DOWN], axis=1)
    return np.concatenate([c - half, c + half], axis=1)


class MeshLandmarker:
    """Refines detections' landmarks with the face mesh.

    One mediapipe graph per face count, built on first use: a tracking-mode graph asked for ``max_num_faces`` faces
    runs its own face detector on every frame until it tracks that many, so a frame with ``k`` detections goes to the
    graph built for ``k`` faces, which then only tracks (measured here: 1 face 1.4 ms instead of 2.5 ms with a
    graph for 8; 5 faces 11 ms instead of 19-27 ms, where the oversized graph also tracked duplicate faces).

    When the graph for ``k`` follows a face that no detection confirms while a detection stays unmatched (the
    detector dropped a face by ``max_faces`` or ``min_face_size`` and the mesh picked that one), frames with ``k``
    detections move to a graph for one more face (up to ``MESH_SPARE_FACES`` more), counted in
    ``MeshStats.escalations``; the unconfirmed face is never used. A graph idle for more than
    ``MESH_IDLE_RESET_CALLS`` calls is restarted before reuse (``MeshStats.resets``).
    """

    def __init__(self, max_faces: int = 8, static: bool = False):
        try:
            import mediapipe as mp

            self._face_mesh = mp.solutions.face_mesh
        except (ImportError, AttributeError) as exc:
            raise DetectorUnavailableError(f"the face mesh needs mediapipe 0.10.21 (0.10.18 on aarch64): {exc}; "
                                           f"or switch it off (use_mesh: false)") from exc
        if max_faces < 1:
            raise ConfigError(f"face mesh max_faces {max_faces} must be >= 1")
        self.static = static
        self.max_faces = max_faces
        self._graphs: dict[int, object] = {}
        self._size_for: dict[int, int] = {}  # detections per frame -> graph size (grows on escalation)
        self._last_used: dict[int, int] = {}  # graph size -> call number it last ran at
        self._calls = 0
        self._closed = False
        self._graph(1)  # build one now: a broken mediapipe install fails at start-up, not on the first face
        self.name = f"mediapipe-face-mesh[{'static' if static else 'tracking'}]"
        self.stats = MeshStats()

    def _graph(self, faces: int):
        k = max(faces, 1)
        k = self._size_for.get(k, min(k, self.max_faces))
        if k not in self._graphs:
            self._graphs[k] = self._face_mesh.FaceMesh(
                static_image_mode=self.static, max_num_faces=k, refine_landmarks=False,
                min_detection_confidence=MESH_MIN_DETECTION_CONFIDENCE,
                min_tracking_confidence=MESH_MIN_TRACKING_CONFIDENCE)
        elif not self.static and self._calls - self._last_used.get(k, self._calls) > MESH_IDLE_RESET_CALLS:
            self._graphs[k].reset()  # it remembers faces from long ago: start afresh
            self.stats.resets += 1
        self._calls += 1
        self._last_used[k] = self._calls
        return self._graphs[k]

    def mesh_points(self, rgb: np.ndarray, expected_faces: int) -> np.ndarray:
        """The seven mesh points (M, 7, 2) per face (see ``_MESH_POINTS``), from the graph for ``expected_faces``."""
        if self._closed:
            raise RuntimeError(f"{self.name} was closed")
        h, w = rgb.shape[:2]
        faces = self._graph(expected_faces).process(read_only(rgb)).multi_face_landmarks or ()
        pts = np.empty((len(faces), len(_MESH_POINTS), 2), dtype=np.float32)
        for i, f in enumerate(faces):
            lm = f.landmark
            pts[i] = [(lm[j].x, lm[j].y) for j in _MESH_POINTS]
        pts *= np.array([w, h], dtype=np.float32)
        return pts

    def landmarks(self, rgb: np.ndarray, expected_faces: int | None = None) -> np.ndarray:
        """Five landmarks (M, 5, 2) of every face the mesh finds (up to ``expected_faces``, default max_faces)."""
        return mesh_points_to_landmarks(self.mesh_points(rgb, expected_faces or self.max_faces))

    def refine(self, rgb: np.ndarray, detections: list[Detection]) -> list[Detection]:
        """The same detections, those the mesh covers with mesh landmarks (new objects; inputs are not modified)."""
        self.stats.frames += 1
        if not detections:
            return []
        pts = self.mesh_points(rgb, len(detections))
        out = list(detections)
        matched = 0
        if len(pts):
            lms = mesh_points_to_landmarks(pts)
            iou = box_iou(np.stack([d.box for d in detections]), points_box(pts))
            for _ in range(min(iou.shape)):
                i, j = np.unravel_index(np.argmax(iou), iou.shape)
                if iou[i, j] < MIN_MATCH_IOU:
                    break
                out[i] = replace(detections[i], landmarks=lms[j].copy(), landmark_source="mesh")
                iou[i, :] = -1.0
                iou[:, j] = -1.0
                matched += 1
        self.stats.refined += matched
        self.stats.unmatched += len(detections) - matched
        if matched < len(pts) and matched < len(detections):
            k = len(detections)
            size = self._size_for.get(k, min(k, self.max_faces))
            if size < self.max_faces + MESH_SPARE_FACES:
                self._size_for[k] = size + 1
                self.stats.escalations += 1
        return out

    def close(self) -> None:
        for g in self._graphs.values():
            g.close()
        self._graphs.clear()
        self._closed = True

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
