"""Detect, then track: the face front end that keeps a far-range detector at camera rate.

A whole-frame pass of a detector that reaches 5 m costs 8-20 ms per 640x480 frame on one core; following a face it
already knows costs ~0.5 ms (RetinaFace on a 96x96 window around the face's predicted box, all faces in one batch).
So ``FaceFinder.find`` does, per frame:

1. **Follow** every live track: ``detect_regions`` around each track's predicted box (``FaceTracker.predictions``).
   A track whose window holds no face is a miss for the tracker (it coasts, then is dropped).
2. **Discover** new faces with a whole-frame pass every ``full_frame_period`` seconds of stamp time (also in an empty
   scene: an idle robot spends ~15 % of a core on it, not ~50 %), and at once on the first frame, when a tracked
   face was not found in its window (it moved away fast, or the scene cut: finding it again must not wait for the
   period) or when the stamps jump back far. Its candidates that no followed face overlaps are
   verified in a window in the current frame (the detector's ``candidates`` + ``detect_regions`` at its stricter
   ``new_face_score``: strict to start a track, lenient to keep one) and added; a face
   that enters is therefore reported within one period (0.1 s by default) plus a frame.
   With ``parallel`` on, the whole-frame pass runs in its own thread on the newest frame handed to it (ONNX Runtime
   releases the GIL, so it uses the second core); its candidates, one or more frames old by then, are verified in
   the current frame the same way: the per-frame path never waits for the routine pass. While no face is tracked, or
   when a tracked face was lost in its window, the pass runs inline: the first frame of a stream is answered with
   its faces, and a face that jumped is found again in the same frame.
3. Duplicates (two windows converging on one face) are merged by overlap, best score first.

Detectors without ``detect_regions`` (mediapipe, OpenCV) run on the whole frame every frame, as before.

Which faces get the face mesh is decided here as well: the mesh (``fer_ros.faces.landmarks``) only finds faces of
about ``MESH_MIN_FACE_PX`` and more, so smaller faces keep the detector's five points, and each detection says which
source its landmarks came from (``Detection.landmark_source``).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from fer_ros.datatypes import Detection
from fer_ros.faces.detector import DetectorConfig, FaceDetector, merge_duplicates, same_face

_log = logging.getLogger(__name__)

NEW_FACE_IOU = 0.3  # a whole-frame face overlapping a followed face this much (or inside it) is that face
# A stamp earlier than the last whole-frame pass by more than this (a bag looping, a clock reset) triggers a new
# whole-frame pass at once; small steps back (jitter, a second publisher) do not.
STAMP_JUMP_S = 1.0
# The face mesh's own detector finds faces from about this width (BlazeFace short range: 36/36 at 88 px, 4/36 at
# 60 px in a 640x480 frame); below it the mesh is not run and the detector's landmarks are used.
MESH_MIN_FACE_PX = 64


@dataclass
class FinderStats:
    """Counts for diagnostics and benchmarks."""

    frames: int = 0
    full_frame_passes: int = 0
    followed: int = 0  # track windows searched
    lost_in_window: int = 0  # track windows in which no face was found
    discovered: int = 0  # faces added by a whole-frame pass
    duplicates: int = 0  # detections merged into a better one of the same face


class _BackgroundDetection:
    """One worker thread running whole-frame detection on the newest frame it is given (a one-slot mailbox)."""

    def __init__(self, detector: FaceDetector) -> None:
        self._detector = detector
        self._cond = threading.Condition()
        self._job: tuple[np.ndarray, float] | None = None
        self._result: tuple[list[Detection], float] | None = None
        self._busy = False
        self._stop = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="fer_ros-full-frame-detection", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        with self._cond:
            return not self._busy and self._job is None

    def submit(self, rgb: np.ndarray, stamp: float) -> None:
        with self._cond:
            self._job = (rgb, stamp)
            self._cond.notify()

    def take(self) -> tuple[list[Detection], float] | None:
        """The last finished pass (faces, stamp of its frame), once."""
        with self._cond:
            out, self._result = self._result, None
            return out

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._job is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                rgb, stamp = self._job
                self._job, self._busy = None, True
            try:
                found = self._detector.candidates(rgb)
            except Exception as exc:  # reported by the next find(); the thread keeps serving
                found, self.error = [], exc
            with self._cond:
                self._result, self._busy = (found, stamp), False

    def close(self, timeout: float = 2.0) -> bool:
        """Stop the thread; True when it has ended (the detector may then be closed)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()


class FaceFinder:
    """Per frame: the faces to give the tracker, from followed tracks and periodic whole-frame passes."""

    def __init__(self, detector: FaceDetector, cfg: DetectorConfig, logger: logging.Logger | None = None) -> None:
        self.detector = detector
        self.cfg = cfg
        self.log = logger or _log
        self.stats = FinderStats()
        self.follows = all(hasattr(detector, a) for a in ("detect_regions", "candidates", "new_face_score"))
        self._last_full: float | None = None
        self._background = _BackgroundDetection(detector) if (cfg.parallel and self.follows) else None

    @property
    def name(self) -> str:
        if not self.follows:
            return self.detector.name
        mode = "parallel" if self._background is not None else "inline"
        return f"{self.detector.name} every {self.cfg.full_frame_period:g} s ({mode}) + per-frame tracking"

    def reset(self) -> None:
        """Forget the schedule: the next frame gets a whole-frame pass."""
        self._last_full = None
        if self._background is not None:
            self._background.take()

    def _full_due(self, stamp: float, lost: bool) -> bool:
        if self._last_full is None or lost and stamp != self._last_full:
            return True
        if stamp < self._last_full - STAMP_JUMP_S:
            return True
        return stamp - self._last_full >= self.cfg.full_frame_period

    def find(self, rgb: np.ndarray, stamp: float, predicted: np.ndarray) -> list[Detection]:
        """Faces in ``rgb`` at ``stamp``, given the tracker's predicted boxes (N, 4) of its live tracks."""
        self.stats.frames += 1
        if not self.follows:
            return self.detector.detect(rgb)
        predicted = np.asarray(predicted, np.float32).reshape(-1, 4)
        followed = [d for d in self.detector.detect_regions(rgb, predicted) if d is not None]
        self.stats.followed += len(predicted)
        self.stats.lost_in_window += len(predicted) - len(followed)
        candidates = self._whole_frame(rgb, stamp, len(predicted), len(followed) < len(predicted))
        if candidates:
            known = np.concatenate([predicted] + [d.box[None] for d in followed])
            unknown = [d for d in candidates if not len(known) or not same_face(d.box, known, NEW_FACE_IOU).any()]
            if unknown:
                again = self.detector.detect_regions(rgb, np.stack([d.box for d in unknown]), self.detector.new_face_score)
                new = [d for d in again if d is not None]
                self.stats.discovered += len(new)
                followed += new
        kept = merge_duplicates(followed)
        self.stats.duplicates += len(followed) - len(kept)
        return kept[: self.cfg.max_faces]

    def _whole_frame(self, rgb: np.ndarray, stamp: float, tracked: int, lost: bool) -> list[Detection]:
        """Candidates of a whole-frame pass (of this frame, or of an earlier one in parallel mode), or []."""
        bg = self._background
        if bg is None or tracked == 0 or lost:  # nothing to follow, or a face to find again: not worth a frame's wait
            done = bg.take() if bg is not None else None  # a pass started while all faces were followed
            if not self._full_due(stamp, lost):
                return done[0] if done is not None else []
            self._last_full = stamp
            self.stats.full_frame_passes += 1
            return self.detector.candidates(rgb)
        if bg.error is not None:
            exc, bg.error = bg.error, None
            raise exc
        done = bg.take()
        if bg.idle and self._full_due(stamp, lost):
            self._last_full = stamp
            self.stats.full_frame_passes += 1
            bg.submit(rgb.copy(), stamp)  # the caller may reuse its buffer
        return done[0] if done is not None else []

    def close(self) -> bool:
        """Stop the background thread; True when the detector is no longer in use and may be closed."""
        return self._background.close() if self._background is not None else True


def mesh_sized(detections: list[Detection]) -> list[int]:
    """Indices of the detections large enough for the face mesh to find them."""
    return [i for i, d in enumerate(detections) if min(d.width, d.height) >= MESH_MIN_FACE_PX]


def refine_mesh_sized(landmarker, rgb: np.ndarray, detections: list[Detection], big: list[int] | None = None
                      ) -> list[Detection]:
    """``detections`` with the landmarks of those large enough for the face mesh (``MESH_MIN_FACE_PX``; ``big``
    when the caller has them) refined by ``landmarker`` (a ``fer_ros.faces.landmarks.MeshLandmarker`` or None); the
    others keep the detector's points."""
    if landmarker is None:
        return list(detections)
    big = mesh_sized(detections) if big is None else big
    out = list(detections)
    if big:
        for i, d in zip(big, landmarker.refine(rgb, [out[i] for i in big])):
            out[i] = d
    return out


def find_in_image(finder: FaceFinder, landmarker, rgb: np.ndarray) -> list[Detection]:
    """The faces of one unrelated image, found as the node finds the faces of a stream's first frame (whole-frame
    candidates verified in windows, then the mesh on the faces large enough for it). Offline training and
    evaluation call this, so they crop the faces the robot would."""
    finder.reset()
    found = finder.find(rgb, 0.0, np.zeros((0, 4), np.float32))
    return refine_mesh_sized(landmarker, rgb, found)
