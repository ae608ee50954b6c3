"""Every parameter of fer_node: name, default, meaning and the check applied when it is set.

One table serves the node (declaration with descriptions and validation), ``config/fer.yaml`` (a test checks that it
holds exactly these names) and the README's parameter table. ROS-free so tools can read it without rclpy.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from fer_ros.faces.detector import DETECTOR_BACKENDS, DETECTOR_MODELS
from fer_ros.frames import MAX_FRAME_SIDE
from fer_ros.image_header import DEFAULT_MAX_IMAGE_PIXELS

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
HRI_MODES = ("pipeline", "companion", "disabled")  # not "off": YAML (params files, -p, launch) reads that as false
HRI_COMPANION_IMAGES = ("aligned", "cropped")


def _choice(options: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


def _between(lo: float, hi: float) -> Callable[[Any], str | None]:
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}"


def _nonempty(v: Any) -> str | None:
    return None if str(v).strip() else "must not be empty"


@dataclass(frozen=True)
class NodeParameter:
    name: str
    default: Any
    description: str
    check: Callable[[Any], str | None] | None = None
    read_only: bool = False  # needs a restart: the pipeline is built from it at start-up
    pipeline: bool = False  # passed to PipelineConfig.from_flat

    @property
    def type_name(self) -> str:
        return {bool: "bool", int: "int", float: "double", str: "string"}[type(self.default)]

    def coerce(self, value: Any) -> Any:
        """``value`` as the declared type where that loses nothing: an integer where a double is expected (``1`` for
        ``1.0``, an easy slip in YAML) becomes a float; anything else is returned as it is."""
        if isinstance(self.default, float) and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    def validate(self, value: Any) -> str | None:
        """None when ``value`` is acceptable, else the reason it is refused (saying what to write instead)."""
        value = self.coerce(value)
        if type(value) is not type(self.default):
            example = str(self.default).lower() if isinstance(self.default, bool) else repr(self.default)
            return (f"must be {_TYPE_NAMES[type(self.default)]}, got "
                    f"{_TYPE_NAMES.get(type(value), type(value).__name__)} (write it like {self.name}: {example})")
        return self.check(value) if self.check else None


PARAMETERS: tuple[NodeParameter, ...] = (
    NodeParameter("compressed", False, "Subscribe to <image>/compressed (sensor_msgs/CompressedImage, JPEG or "
                  "PNG; the resolved image topic + /compressed unless image/compressed is remapped) instead of image (sensor_msgs/Image: rgb8, bgr8 or mono8).", read_only=True),
    NodeParameter("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS, "Images of more pixels (width x height, read from "
                  "the JPEG/PNG header before decoding) are refused and counted as too_large: a small compressed "
                  "file cannot make the node allocate gigabytes. The default fits 4K and 12 Mpx cameras.",
                  _between(64, MAX_FRAME_SIDE * MAX_FRAME_SIDE)),
    NodeParameter("model", "mini_xception_fer2013", "Model id (a folder under models/ or share/fer_ros/models with "
                  "a model.yaml card) or a path to a model.yaml or model file.", _nonempty, True, True),
    NodeParameter("backend", "auto", "Inference backend: auto (TensorRT engine if the card names one and tensorrt "
                  "and a GPU are present, else ONNX Runtime), tensorrt, onnxruntime, torch.",
                  _choice(BACKENDS), True, True),
    NodeParameter("detector.backend", "auto", "Face detector: auto (retinaface, else mediapipe, else opencv), "
                  "retinaface (RetinaFace MobileNet-0.25: faces from ~18 px, 0.5-5 m), mediapipe (BlazeFace: within "
                  "~1.2 m short, ~2.5 m full), opencv (Haar cascade, frontal faces).",
                  _choice(DETECTOR_BACKENDS), True, True),
    NodeParameter("detector.model", "short", "mediapipe only: short (faces within ~1.2 m at 640x480) or full "
                  "(within ~2.5 m, ~3x slower).", _choice(DETECTOR_MODELS), True, True),
    NodeParameter("detector.min_confidence", 0.6, "Minimum face detection score.", _between(0.0, 1.0), True, True),
    NodeParameter("detector.min_face_size", 32, "Faces narrower than this many pixels are detected, tracked and "
                  "reported with their box, but get no expression label (a 64x64 model guesses on them).",
                  _between(0, 4096), True, True),
    NodeParameter("detector.max_faces", 8, "At most this many faces per frame (the most confident).",
                  _between(1, 64), True, True),
    NodeParameter("detector.use_mesh", True, "Refine the five landmarks with the face mesh for faces large enough "
                  "for it (~64 px and up; smaller faces keep the detector's points).", None, True, True),
    NodeParameter("detector.max_input_size", 640, "retinaface: the whole frame is scaled so its long side is at "
                  "most this many pixels for the whole-frame pass (tracked faces are followed at full resolution).",
                  _between(160, 4096), True, True),
    NodeParameter("detector.full_frame_period", 0.1, "retinaface: seconds between whole-frame passes that find new "
                  "faces (known faces are followed every frame); 0 = every frame.", _between(0.0, 10.0), True, True),
    NodeParameter("detector.parallel", True, "retinaface: run the whole-frame pass in its own thread on the newest "
                  "frame, so the per-frame path never waits for it (uses a second core).", None, True, True),
    NodeParameter("tracking.min_hits", 1, "Frames a face must be seen before it is reported.",
                  _between(1, 100), True, True),
    NodeParameter("tracking.max_misses", 5, "Frames a face may be missed before its track (and id) is dropped.",
                  _between(0, 1000), True, True),
    NodeParameter("tracking.iou_threshold", 0.2, "Minimum box overlap (IoU) to associate a detection with a track.",
                  _between(0.0, 1.0), True, True),
    NodeParameter("smoothing", 0.0, "Per-track exponential smoothing of probabilities for single-frame models: "
                  "weight of the previous estimate (0 = off, 0.9 = heavy).", _between(0.0, 0.99), False, True),
    NodeParameter("fan_window", 0, "Frames aggregated by a multi-frame (FAN) model; 0 = the model card's window.",
                  _between(0, 1000), True, True),
    NodeParameter("max_rate", 0.0, "Process at most this many frames per second (0 = as fast as frames come); "
                  "skipped frames are counted as rate-limited.", _between(0.0, 1000.0)),
    NodeParameter("debug_image", True, "Publish debug_image (boxes, ids, labels) when someone subscribes to it.",
                  None),
    NodeParameter("hri.mode", "pipeline", "ROS4HRI (REP-155) role. pipeline: also publish /humans/faces/tracked "
                  "and, per face, roi, cropped, aligned, landmarks and expression (off with a log line when hri_msgs "
                  "is not installed). companion: no camera and no detector; add /humans/faces/<id>/expression to "
                  "the faces another REP-155 detector lists. disabled: EmotionArray only.", _choice(HRI_MODES), True),
    NodeParameter("hri.companion_image", "aligned", "Companion role: the per-face image classified, "
                  "/humans/faces/<id>/aligned or /humans/faces/<id>/cropped.", _choice(HRI_COMPANION_IMAGES), True),
    NodeParameter("diagnostics.period", 1.0, "Seconds between /diagnostics messages.", _between(0.1, 60.0), True),
    NodeParameter("diagnostics.latency_warn_ms", 50.0, "Processing latency p95 above which diagnostics say WARN.",
                  _between(0.0, 1e6)),
    NodeParameter("diagnostics.latency_error_ms", 200.0, "Processing latency p95 above which diagnostics say ERROR.",
                  _between(0.0, 1e6)),
    NodeParameter("diagnostics.min_rate_hz", 5.0, "Output rate below which diagnostics say WARN while frames "
                  "arrive.", _between(0.0, 1000.0)),
)

BY_NAME = {p.name: p for p in PARAMETERS}
_TYPE_NAMES = {bool: "a bool", int: "an int", float: "a double", str: "a string", list: "a list",
               type(None): "nothing"}


def cross_check(values: Mapping[str, Any]) -> str | None:
    """Why a set of parameter values that are each valid alone is refused together, or None."""
    warn, error = values["diagnostics.latency_warn_ms"], values["diagnostics.latency_error_ms"]
    if warn > error:
        return (f"diagnostics.latency_warn_ms ({warn:g}) is above diagnostics.latency_error_ms ({error:g}): WARN "
                f"would never come before ERROR; set latency_warn_ms <= latency_error_ms")
    return None


def closest_name(name: str) -> str | None:
    """The declared parameter name most like ``name`` (a misspelling), or None when none is close."""
    match = difflib.get_close_matches(name, BY_NAME, n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_name_message(name: str) -> str:
    """What the node and eval-bag say about a parameter name fer_node does not declare."""
    close = closest_name(name)
    hint = f"did you mean '{close}'?" if close else "see the README's parameter table"
    return f"unknown parameter '{name}' is ignored: {hint}"


def refusal(params) -> str | None:
    """Why a run-time set of rclpy Parameters is refused (its first bad value), or None; unknown names pass."""
    for param in params:
        reason = BY_NAME[param.name].validate(param.value) if param.name in BY_NAME else None
        if reason:
            return f"{param.name} {reason}"
    return None


def defaults() -> dict[str, Any]:
    return {p.name: p.default for p in PARAMETERS}


def pipeline_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of the node's parameters that configures the pipeline (``PipelineConfig.from_flat``)."""
    return {p.name: params[p.name] for p in PARAMETERS if p.pipeline}


def markdown_table() -> str:
    """The README's parameter table."""
    rows = ["| parameter | type | default | meaning |", "|---|---|---|---|"]
    for p in PARAMETERS:
        default = f"`{str(p.default).lower() if isinstance(p.default, bool) else p.default}`"
        note = " (start-up only)" if p.read_only else ""
        rows.append(f"| `{p.name}` | {p.type_name} | {default} | {p.description}{note} |")
    return "\n".join(rows)
