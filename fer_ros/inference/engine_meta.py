"""TensorRT engine sidecars: what an engine was built for, written next to it, checked before it is loaded.

A serialized TensorRT engine only runs on the TensorRT version and GPU (compute capability) it was built with, and
only means something for the exact ONNX it came from. ``write_engine_meta`` (called by the engine builder) records
this in ``<engine>.json``; ``check_engine_meta`` (called by the TensorRT backend before deserializing) compares it
with the running TensorRT, the GPU and the model card, and raises ``EngineMismatchError`` saying what differs and how
to rebuild. ``engine_filename`` gives the builder a file name that carries the same facts, so engines built for
different targets never overwrite each other.

Sidecar (JSON)::

    {"schema": 1, "model_id": "mini_xception_fer2013", "role": "model", "precision": "fp16",
     "tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7",
     "onnx_sha256": "<hex>", "input_shapes": {"input": {"min": [1,1,64,64], "opt": [4,1,64,64], "max": [16,1,64,64]}},
     "created": "2025-01-01T00:00:00+00:00"}
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fer_ros.errors import EngineMismatchError
from fer_ros.model_card import ModelCard, file_sha256

META_SCHEMA = 1  # bump when a field changes meaning; older sidecars are then refused with a rebuild hint
PRECISIONS = ("fp32", "fp16", "int8")
NVIDIA_SMI_TIMEOUT_S = 5.0  # bound on the last-resort GPU query; nvidia-smi answers in well under a second
REBUILD_HINT = "rebuild it on this machine: fer-ros build-engine --model <model folder> --precision <p>"


@dataclass(frozen=True)
class GpuInfo:
    """The GPU an engine runs on: marketing name and compute capability ("major.minor")."""

    name: str
    compute_capability: str


@dataclass
class EngineMeta:
    """What one engine file was built for (one per file: FAN has an embedder and an aggregator engine)."""

    model_id: str
    precision: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    onnx_sha256: str
    input_shapes: dict[str, dict[str, list[int]]]  # tensor name -> {"min", "opt", "max"} shapes
    role: str = "model"  # model | embedder | aggregator
    schema: int = META_SCHEMA
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))


def meta_path(engine_path: Path | str) -> Path:
    """The sidecar of an engine: ``model.engine`` -> ``model.engine.json``."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "unknown"


def engine_filename(model_id: str, precision: str, tensorrt_version: str, gpu: GpuInfo, role: str = "model") -> str:
    """``<model>[.<role>].<precision>.trt<version>.<gpu>-sm<cc>.engine``, e.g.
    ``mini_xception_fer2013.fp16.trt10.3.0.orin-sm87.engine``."""
    role_part = "" if role == "model" else f".{role}"
    sm = gpu.compute_capability.replace(".", "")
    return f"{model_id}{role_part}.{precision}.trt{tensorrt_version}.{_slug(gpu.name)}-sm{sm}.engine"


def running_tensorrt_version() -> str | None:
    """The importable TensorRT's version, or None when tensorrt is not installed."""
    try:
        import tensorrt as trt
    except ImportError:
        return None
    return str(trt.__version__)


def _gpu_from_cuda_python(device: int) -> GpuInfo | None:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            return None
    err, props = cudart.cudaGetDeviceProperties(device)
    if int(err) != 0:
        return None
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    return GpuInfo(name.strip("\x00 "), f"{props.major}.{props.minor}")


def _gpu_from_torch(device: int) -> GpuInfo | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available() or device >= torch.cuda.device_count():
        return None
    major, minor = torch.cuda.get_device_capability(device)
    return GpuInfo(torch.cuda.get_device_name(device), f"{major}.{minor}")


def _gpu_from_nvidia_smi(device: int) -> GpuInfo | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, f"--id={device}", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    parts = [p.strip() for p in out.strip().split(",")]
    return GpuInfo(parts[0], parts[1]) if len(parts) == 2 and parts[1] else None


def current_gpu(device: int = 0) -> GpuInfo | None:
    """The CUDA GPU ``device`` (cuda-python, else torch, else nvidia-smi), or None when there is none."""
    for probe in (_gpu_from_cuda_python, _gpu_from_torch, _gpu_from_nvidia_smi):
        try:
            info = probe(device)
        except Exception:  # a broken driver install must read as "no GPU", not crash start-up
            info = None
        if info is not None:
            return info
    return None


def write_engine_meta(engine_path: Path | str, *, model_id: str, precision: str, onnx_path: Path | str,
                      input_shapes: dict[str, dict[str, list[int]]], role: str = "model",
                      tensorrt_version: str | None = None, gpu: GpuInfo | None = None) -> EngineMeta:
    """Write ``<engine>.json`` for an engine just built; TensorRT version and GPU default to this machine's."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision '{precision}' is not one of {PRECISIONS}")
    version = tensorrt_version or running_tensorrt_version()
    gpu = gpu or current_gpu()
    if version is None or gpu is None:
        raise EngineMismatchError("write_engine_meta needs the TensorRT version and the GPU the engine was built "
                                  "on; pass tensorrt_version and gpu when building elsewhere")
    meta = EngineMeta(model_id=model_id, precision=precision, tensorrt_version=version, gpu_name=gpu.name,
                      compute_capability=gpu.compute_capability, onnx_sha256=file_sha256(onnx_path),
                      input_shapes={k: {s: [int(d) for d in v[s]] for s in ("min", "opt", "max")}
                                    for k, v in input_shapes.items()},
                      role=role)
    target = meta_path(engine_path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(asdict(meta), indent=2) + "\n")
    tmp.replace(target)
    return meta


def read_engine_meta(engine_path: Path | str) -> EngineMeta:
    """The sidecar of an engine; EngineMismatchError when it is missing, unreadable or of another schema."""
    path = meta_path(engine_path)
    if not path.is_file():
        raise EngineMismatchError(f"engine {engine_path} has no sidecar {path.name}: its model, TensorRT version "
                                  f"and GPU are unknown, so it is not loaded; {REBUILD_HINT}")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        if int(data.get("schema", 0)) != META_SCHEMA:
            raise EngineMismatchError(f"engine sidecar {path} has schema {data.get('schema')}, this fer_ros reads "
                                      f"{META_SCHEMA}; {REBUILD_HINT}")
        return EngineMeta(**data)
    except (ValueError, TypeError) as exc:
        raise EngineMismatchError(f"engine sidecar {path} is unreadable ({exc}); {REBUILD_HINT}") from exc


def check_engine_meta(engine_path: Path | str, card: ModelCard | None = None, *, role: str = "model",
                      onnx_path: Path | str | None = None, tensorrt_version: str | None = None,
                      gpu: GpuInfo | None = None) -> EngineMeta:
    """Refuse a stale engine: compare its sidecar with the card, the ONNX, the running TensorRT and the GPU.

    ``tensorrt_version`` and ``gpu`` default to this machine's; everything that differs is listed in one
    EngineMismatchError together with how to rebuild.
    """
    meta = read_engine_meta(engine_path)
    problems: list[str] = []
    if card is not None:
        if meta.model_id != card.id:
            problems.append(f"built for model '{meta.model_id}', the card is '{card.id}'")
        want = [card.input.channels, card.input.height, card.input.width]
        if role in ("model", "embedder"):
            for name, shapes in meta.input_shapes.items():
                if any(list(shapes[s][1:]) != want for s in ("min", "opt", "max")):
                    problems.append(f"input '{name}' profile {shapes} does not take (N, {want[0]}, {want[1]}, "
                                    f"{want[2]}) as the card says")
    if meta.role != role:
        problems.append(f"it is the {meta.role} engine, loaded as the {role}")
    if onnx_path is not None and Path(onnx_path).is_file():
        sha = file_sha256(onnx_path)
        if sha != meta.onnx_sha256:
            problems.append(f"built from an ONNX with sha256 {meta.onnx_sha256[:12]}..., {Path(onnx_path).name} "
                            f"now has {sha[:12]}...")
    running = tensorrt_version or running_tensorrt_version()
    if running is not None and running != meta.tensorrt_version:
        problems.append(f"built with TensorRT {meta.tensorrt_version}, running TensorRT {running}")
    gpu = gpu or current_gpu()
    if gpu is not None and (gpu.compute_capability != meta.compute_capability or gpu.name != meta.gpu_name):
        problems.append(f"built on {meta.gpu_name} (sm {meta.compute_capability}), running on {gpu.name} "
                        f"(sm {gpu.compute_capability})")
    if problems:
        raise EngineMismatchError(f"engine {engine_path} does not fit: " + "; ".join(problems) + f"; {REBUILD_HINT}")
    return meta
