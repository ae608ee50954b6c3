"""The perception core in one object: frame + stamp -> every face's emotion, with stage timings. No ROS import.

``EmotionPipeline(config).process(frame, stamp, color)`` runs, per frame:
validate -> find faces (``fer_ros.faces.frontend``: RetinaFace windows around every tracked face, a whole-frame pass
every ``detector.full_frame_period``; mediapipe or OpenCV on the whole frame) -> refine landmarks (face mesh, for faces
large enough for it) -> track -> align every confirmed face of at least ``detector.min_face_size`` -> ONE batched
backend call -> temporal (EMA per track | FAN ring buffers) -> ``FrameResult``. Smaller faces are reported with their
box and landmarks and no label.

Failures follow the house rule "fail fast on configuration, degrade per frame": a bad model, card or parameter raises
at construction (``ConfigError``, ``ModelCardError``, ``ModelLoadError``, ``BackendUnavailableError``); a bad frame,
a detector crash on one frame or a NaN model output raises a ``FrameError`` subclass from ``process``, is counted in
``stats``, and the next frame is processed normally.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from fer_ros.datatypes import NUM_LANDMARKS, FaceResult, FrameResult, StageTimings
from fer_ros.errors import ConfigError, FerRosError, FrameError, InvalidFrameError
from fer_ros.faces.align import align_crops, normalize
from fer_ros.faces.detector import DETECTOR_BACKENDS, DETECTOR_MODELS, DetectorConfig, create_detector
from fer_ros.faces.frontend import FaceFinder, mesh_sized, refine_mesh_sized
from fer_ros.faces.landmarks import create_landmarker
from fer_ros.frames import to_rgb
from fer_ros.inference import BACKENDS, create_backend
from fer_ros.registry import DEFAULT_MODEL, resolve_model
from fer_ros.temporal import MAX_SMOOTHING, TemporalStage
from fer_ros.tracking import FaceTracker, TrackerConfig

LOG = logging.getLogger("fer_ros.pipeline")

# flat (node parameter) name -> (section, field, accepted values or None). Sections: "" = PipelineConfig itself.
FLAT_KEYS: dict[str, tuple[str, str, tuple | None]] = {
    "model": ("", "model", None),
    "backend": ("", "backend", BACKENDS),
    "smoothing": ("", "smoothing", None),
    "fan_window": ("", "fan_window", None),
    "detector.backend": ("detector", "backend", DETECTOR_BACKENDS),
    "detector.model": ("detector", "model", DETECTOR_MODELS),
    "detector.min_confidence": ("detector", "min_confidence", None),
    "detector.min_face_size": ("detector", "min_face_size", None),
    "detector.max_faces": ("detector", "max_faces", None),
    "detector.use_mesh": ("detector", "use_mesh", None),
    "detector.max_input_size": ("detector", "max_input_size", None),
    "detector.full_frame_period": ("detector", "full_frame_period", None),
    "detector.parallel": ("detector", "parallel", None),
    "tracking.min_hits": ("tracker", "min_hits", None),
    "tracking.max_misses": ("tracker", "max_misses", None),
    "tracking.iou_threshold": ("tracker", "iou_threshold", None),
}


def _coerce(key: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default`` (int-valued floats accepted for ints), else ConfigError naming ``key``."""
    kind = type(default)
    if kind is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
    elif kind is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"parameter '{key}' = {value!r} must be a {kind.__name__}")


@dataclass
class PipelineConfig:
    """Everything that shapes the pipeline; ``from_flat`` reads the node's parameter names."""

    model: str = DEFAULT_MODEL  # model id or path (see fer_ros.registry)
    backend: str = "auto"  # auto | tensorrt | onnxruntime | torch
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    smoothing: float = 0.0  # EMA factor for single-frame models: weight of the previous estimate, 0 = off
    fan_window: int = 0  # frames a FAN aggregates; 0 = the card's window
    keep_aligned: bool = False  # keep each face's aligned uint8 crop in FaceResult.aligned (ROS4HRI publishes it)

    def validate(self) -> PipelineConfig:
        """Raise ConfigError naming the bad value and what is accepted; return self."""
        if not str(self.model).strip():
            raise ConfigError(f"parameter 'model' is empty: give a model id (e.g. {DEFAULT_MODEL}) or a path")
        if self.backend not in BACKENDS:
            raise ConfigError(f"parameter 'backend' = {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if not 0.0 <= self.smoothing <= MAX_SMOOTHING:
            raise ConfigError(f"parameter 'smoothing' = {self.smoothing} must be between 0 (off) and {MAX_SMOOTHING}")
        if self.fan_window < 0:
            raise ConfigError(f"parameter 'fan_window' = {self.fan_window} must be >= 0 (0 = the model's window)")
        self.detector.validate()
        self.tracker.validate()
        return self

    @classmethod
    def from_flat(cls, flat: dict[str, Any]) -> PipelineConfig:
        """Build from node parameter names (``detector.min_confidence``, ``tracking.max_misses``, ...).

        Unknown names and values of the wrong type or outside their choices raise ConfigError naming the parameter
        and what it accepts; names not given keep their defaults.
        """
        cfg = cls()
        for key, value in flat.items():
            if key not in FLAT_KEYS:
                raise ConfigError(f"unknown pipeline parameter '{key}'; known: {', '.join(FLAT_KEYS)}")
            section, name, choices = FLAT_KEYS[key]
            target = getattr(cfg, section) if section else cfg
            value = _coerce(key, value, getattr(target, name))
            if choices is not None and value not in choices:
                raise ConfigError(f"parameter '{key}' = {value!r} is not one of {', '.join(choices)}")
            setattr(target, name, value)
        try:
            return cfg.validate()
        except ConfigError as exc:  # name the flat parameter, not the dataclass field
            raise ConfigError(f"{exc} (node parameters: {', '.join(FLAT_KEYS)})") from exc

    def to_flat(self) -> dict[str, Any]:
        """The inverse of ``from_flat``."""
        return {key: getattr(getattr(self, s) if s else self, n) for key, (s, n, _) in FLAT_KEYS.items()}


@dataclass
class PipelineStats:
    """Counts since construction: frames in, frames dropped (by error type), faces reported."""

    frames: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    faces: int = 0

    def count_failure(self, exc: BaseException) -> None:
        self.failed += 1
        name = type(exc).__name__
        self.failures[name] = self.failures.get(name, 0) + 1


_NO_LANDMARKS = np.full((NUM_LANDMARKS, 2), np.nan, dtype=np.float32)  # detectors without keypoints report NaN


class EmotionPipeline:
    """Frames in, per-face emotions out. Build once (slow: loads models), call ``process`` per frame."""

    def __init__(self, config: PipelineConfig | None = None, logger: logging.Logger | None = None) -> None:
        self.config = (config or PipelineConfig()).validate()
        self.log = logger or LOG
        self.card = resolve_model(self.config.model)
        self.backend = create_backend(self.card, self.config.backend, self.log)
        try:
            self.detector = create_detector(self.config.detector, self.log)
            self.finder = FaceFinder(self.detector, self.config.detector, self.log)
            self.landmarker = create_landmarker(self.config.detector, self.log)
            self.tracker = FaceTracker(self.config.tracker)
            self.temporal = TemporalStage(self.backend, self.config.smoothing, self.config.fan_window)
        except BaseException:
            self.close()
            raise
        self.stats = PipelineStats()
        self._empty_batch = np.zeros((0, self.card.input.channels, self.card.input.height, self.card.input.width),
                                     np.float32)

    # --- what runs ----------------------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.card.id

    @property
    def labels(self) -> tuple[str, ...]:
        return self.card.labels

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def detector_name(self) -> str:
        mesh = f" + {self.landmarker.name}" if self.landmarker is not None else ""
        return f"{self.finder.name}{mesh}"

    @property
    def window(self) -> int:
        """Frames the temporal stage aggregates (1 for single-frame models)."""
        return self.temporal.window

    def set_smoothing(self, factor: float) -> None:
        """Change the EMA factor at run time (node parameter ``smoothing``); existing per-track state is kept."""
        self.temporal.set_smoothing(factor)
        self.config.smoothing = float(factor)

    # --- per frame ----------------------------------------------------------------------------------------------
    def process(self, frame: np.ndarray, stamp: float, color: str = "rgb") -> FrameResult:
        """Every confirmed face of ``frame`` (HxWx3 uint8 RGB/BGR as ``color`` says, or HxW gray) at ``stamp`` s.

        Raises a FrameError subclass for this frame only (bad frame, detector crash, NaN output); counted in
        ``stats``.
        """
        self.stats.frames += 1
        try:
            result = self._process(frame, stamp, color)
        except FrameError as exc:
            self.stats.count_failure(exc)
            raise
        except FerRosError:
            raise
        except Exception as exc:  # a library failing on one frame (mediapipe, OpenCV): drop the frame, keep going
            self.stats.count_failure(exc)
            raise FrameError(f"frame at stamp {stamp} failed in {type(exc).__name__}: {exc}") from exc
        self.stats.faces += len(result.faces)
        return result

    def _process(self, frame: np.ndarray, stamp: float, color: str) -> FrameResult:
        t_start = time.perf_counter()
        if not isinstance(stamp, (int, float, np.number)) or not math.isfinite(float(stamp)):
            raise InvalidFrameError(f"stamp {stamp!r} is not a finite number of seconds")
        timings = StageTimings()
        rgb = to_rgb(frame, color)  # validates shape, dtype, channels
        h, w = rgb.shape[:2]

        t = time.perf_counter()
        _, predicted = self.tracker.predictions(float(stamp))
        detections = self.finder.find(rgb, float(stamp), predicted)
        timings.detect_ms = (time.perf_counter() - t) * 1e3
        big = mesh_sized(detections) if self.landmarker is not None else []
        if big:  # only the faces the mesh can find: a graph asked for more would search for them every frame
            t = time.perf_counter()
            detections = refine_mesh_sized(self.landmarker, rgb, detections, big)
            timings.landmarks_ms = (time.perf_counter() - t) * 1e3

        t = time.perf_counter()
        tracked = self.tracker.update(detections, float(stamp))
        if self.tracker.removed:
            self.temporal.drop(self.tracker.removed)
        confirmed = [f for f in tracked if f.confirmed]
        timings.track_ms = (time.perf_counter() - t) * 1e3

        t = time.perf_counter()
        labelled = [f for f in confirmed if self.config.detector.labels(f.detection)]
        dets = [f.detection for f in labelled]
        crops = align_crops(rgb, "rgb", dets, self.card) if dets else None
        batch = normalize(crops, self.card.input) if dets else self._empty_batch
        timings.align_ms = (time.perf_counter() - t) * 1e3

        estimates: dict[int, tuple[np.ndarray, int]] = {}
        if dets:
            out = self.temporal.run([f.track_id for f in labelled], batch)
            timings.infer_ms, timings.temporal_ms = out.infer_ms, out.temporal_ms
            for i, f in enumerate(labelled):
                estimates[f.track_id] = (out.probabilities[i].astype(np.float32, copy=True), int(out.frames_used[i]))
        faces = [self._face_result(f, estimates.get(f.track_id)) for f in confirmed]
        if self.config.keep_aligned and dets:  # the crops the model saw, in the card's colour
            by_id = {f.track_id: crops[i] for i, f in enumerate(labelled)}
            for face in faces:
                face.aligned = by_id.get(face.face_id)
        timings.total_ms = (time.perf_counter() - t_start) * 1e3
        return FrameResult(stamp=float(stamp), image_size=(h, w), model_id=self.card.id, labels=self.card.labels,
                           faces=faces, timings=timings)

    def _face_result(self, face, estimate: tuple[np.ndarray, int] | None) -> FaceResult:
        """One reported face; ``estimate`` (probabilities, frames used) is None for faces too small to label."""
        d = face.detection
        source = "none" if d.landmarks is None else d.landmark_source
        landmarks = (_NO_LANDMARKS if d.landmarks is None else np.asarray(d.landmarks, np.float32)).copy()
        common = dict(face_id=face.track_id, box=np.asarray(d.box, np.float32).copy(), landmarks=landmarks,
                      detection_score=float(d.score), landmark_source=source)
        if estimate is None:
            return FaceResult(label="", confidence=math.nan, probabilities=np.zeros(0, np.float32), frames_used=0,
                              **common)
        p, frames_used = estimate
        top = int(p.argmax())
        return FaceResult(label=self.card.labels[top], confidence=float(p[top]), probabilities=p,
                          frames_used=frames_used, **common)

    def reset(self) -> None:
        """Forget every track and temporal state (a new recording, a clock jump); the face mesh's tracking state too,
        so a reset pipeline gives what a fresh one would."""
        self.tracker.reset()
        self.finder.reset()
        self.temporal.reset()
        if self.landmarker is not None:
            self.landmarker.close()
            self.landmarker = create_landmarker(self.config.detector, self.log)

    def close(self) -> None:
        """Release the detector, face mesh and backend (the detector only once its background thread has ended)."""
        finder = getattr(self, "finder", None)
        parts = ("landmarker", "detector", "backend")
        if finder is not None and not finder.close():
            self.log.warning("the whole-frame detection thread did not stop in time; its detector is left open")
            parts = ("landmarker", "backend")
        for part in parts:
            obj = getattr(self, part, None)
            if obj is not None:
                try:
                    obj.close()
                except Exception as exc:  # closing must never mask the error that made us close
                    self.log.debug("closing %s failed: %s", part, exc)

    def __enter__(self) -> EmotionPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def config_field_names() -> list[str]:
    """Dataclass field names of PipelineConfig (for docs and tests)."""
    return [f.name for f in fields(PipelineConfig)]
