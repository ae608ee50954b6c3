"""INT8 calibration data: the user's face images, through the core's preprocessing, in full batches.

TensorRT's entropy calibrator (``IInt8EntropyCalibrator2``) chooses each tensor's INT8 range from activations seen
on these batches, so they must look exactly like what the robot feeds the engine: the same alignment and the same
card normalisation (``face_samples`` runs ``fer_ros.faces.align``), and the same tensor shape (every batch has the
optimisation profile's batch size; the last one is completed with the first faces again, and the report says so).

The calibration cache lets a second build skip calibration. TensorRT would reuse a cache blindly, even one computed
on other images or by another TensorRT; so a manifest (``<cache>.yaml``) records the data's fingerprint, the TensorRT
version and the algorithm, and a cache that does not match is deleted before the build.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import yaml

from fer_ros.errors import ConfigError
from fer_ros.model_card import ModelCard

MIN_CALIBRATION_FACES = 32  # fewer faces give ranges from a handful of activations: INT8 accuracy then collapses
DEFAULT_CALIBRATION_FACES = 512  # NVIDIA's guidance is ~500 representative inputs for classification networks
CALIBRATOR_ALGORITHM = "EntropyCalibration2"  # what IInt8EntropyCalibrator2 writes in the cache header


@dataclass
class CalibrationBatches:
    """Full, model-ready batches for one input of one graph; iterable as polygraphy's data loader wants."""

    input_name: str
    batches: np.ndarray  # (num_batches, batch, C, H, W) float32
    faces: int  # distinct faces used
    padded: int  # faces repeated to complete the last batch
    report: str  # what the face loader skipped and why

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for batch in self.batches:
            yield {self.input_name: np.ascontiguousarray(batch)}

    def __len__(self) -> int:
        return int(self.batches.shape[0])

    def fingerprint(self) -> str:
        """SHA-256 of the batch data: a cache computed on other data is not reused."""
        h = hashlib.sha256()
        h.update(str(self.batches.shape).encode())
        h.update(np.ascontiguousarray(self.batches).tobytes())
        return h.hexdigest()


def make_batches(inputs: np.ndarray, batch_size: int, input_name: str = "input",
                 report: str = "") -> CalibrationBatches:
    """Split (N, C, H, W) faces into full batches of ``batch_size`` (the last completed from the start)."""
    inputs = np.asarray(inputs, dtype=np.float32)
    if inputs.ndim != 4:
        raise ConfigError(f"calibration faces must be (N, C, H, W), got shape {inputs.shape}")
    if batch_size < 1:
        raise ConfigError(f"calibration batch size must be >= 1, got {batch_size}")
    if not np.isfinite(inputs).all():
        raise ConfigError("calibration faces contain NaN or inf: check the card's mean/std")
    n = len(inputs)
    count = -(-n // batch_size)
    padded = count * batch_size - n
    if padded:
        inputs = np.concatenate([inputs, inputs[np.arange(padded) % n]], axis=0)
    batches = inputs.reshape(count, batch_size, *inputs.shape[1:])
    return CalibrationBatches(input_name, batches, n, padded, report)


def calibration_batches(card: ModelCard, data: Path | str, batch_size: int, input_name: str = "input",
                        limit: int = DEFAULT_CALIBRATION_FACES, mode: str = "detect", split: str | None = "train",
                        seed: int = 0, min_faces: int = MIN_CALIBRATION_FACES) -> CalibrationBatches:
    """Calibration batches from the user's images (``ROOT/<label>/*``; the train split when split.csv exists).

    Raises ConfigError when fewer than ``min_faces`` usable faces are found (INT8 ranges from too few faces are
    not representative).
    """
    from fer_ros_training.export.face_samples import faces_from_folder

    faces = faces_from_folder(data, card, mode=mode, limit=limit, split=split, seed=seed)
    if len(faces) < min_faces:
        raise ConfigError(f"only {len(faces)} usable faces for INT8 calibration under {data} ({faces.report()}); "
                          f"give at least {min_faces}, ideally ~{DEFAULT_CALIBRATION_FACES}, or build fp16")
    return make_batches(faces.inputs, batch_size, input_name, faces.report())


def cache_path_for(onnx_path: Path | str, trt_version: str) -> Path:
    """Where the calibration cache of one ONNX graph goes: beside it, named by TensorRT version."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(f"{onnx_path.stem}.int8.trt{trt_version}.calib")


def _manifest_path(cache: Path) -> Path:
    return cache.with_name(cache.name + ".yaml")


def cache_header(cache: Path) -> str:
    """First line of a TensorRT calibration cache, e.g. ``TRT-8601-EntropyCalibration2``."""
    with open(cache, "rb") as f:
        return f.readline().decode(errors="replace").strip()


def trt_cache_tag(trt_version: str) -> str:
    """The version tag TensorRT writes in cache headers: 8.6.1 -> ``8601``, 10.3.0 -> ``100300``."""
    numbers = [int(p) for p in re.findall(r"\d+", trt_version)] + [0, 0, 0]
    major, minor, patch = numbers[:3]
    return f"{major}{minor:02d}{patch:02d}" if major >= 10 else f"{major}{minor}{patch:02d}"


def cache_is_current(cache: Path, batches: CalibrationBatches, trt_version: str) -> tuple[bool, str]:
    """Whether an existing cache may be reused: same data, same TensorRT, same algorithm. Returns (ok, reason)."""
    if not cache.is_file():
        return False, "no cache yet"
    manifest = _manifest_path(cache)
    if not manifest.is_file():
        return False, f"{cache.name} has no manifest (made outside fer-ros?)"
    meta: dict[str, Any] = yaml.safe_load(manifest.read_text()) or {}
    if meta.get("fingerprint") != batches.fingerprint():
        return False, "it was computed on other calibration images"
    if str(meta.get("trt_version")) != trt_version:
        return False, f"it was made by TensorRT {meta.get('trt_version')}, this is {trt_version}"
    header = cache_header(cache)
    if CALIBRATOR_ALGORITHM not in header or trt_cache_tag(trt_version) not in header:
        return False, f"its header '{header}' does not match TensorRT {trt_version} / {CALIBRATOR_ALGORITHM}"
    return True, "same data and TensorRT"


def prepare_cache(cache: Path, batches: CalibrationBatches, trt_version: str, source: str) -> tuple[bool, str]:
    """Delete a stale cache and write the manifest for the one about to be made. Returns (reused, reason)."""
    ok, reason = cache_is_current(cache, batches, trt_version)
    if not ok:
        cache.unlink(missing_ok=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        _manifest_path(cache).write_text(yaml.safe_dump({
            "fingerprint": batches.fingerprint(), "trt_version": trt_version, "algorithm": CALIBRATOR_ALGORITHM,
            "source": source, "faces": batches.faces, "batches": len(batches),
            "batch_shape": list(batches.batches.shape[1:]), "padded": batches.padded,
        }, sort_keys=False))
    return ok, reason


def make_calibrator(batches: CalibrationBatches, cache: Path) -> Any:
    """polygraphy's Calibrator (an ``IInt8EntropyCalibrator2``) over the batches, caching to ``cache``."""
    from fer_ros_training.export.tensorrt_build import import_tensorrt

    trt = import_tensorrt()
    from polygraphy.backend.trt import Calibrator

    return Calibrator(batches, cache=str(cache), BaseClass=trt.IInt8EntropyCalibrator2)
