"""Build TensorRT engines from an exported model's ONNX files, on the robot, with NVIDIA's polygraphy.

Why polygraphy rather than raw ``tensorrt`` calls: it is NVIDIA's own pure-Python layer over the same API
(``Builder``, ``create_optimization_profile``, ``BuilderFlag.FP16/INT8``, ``IInt8EntropyCalibrator2``,
``build_serialized_network``), it papers over the differences between TensorRT 8.6 and 10.x (explicit-batch flag,
memory pools), and its ``Calibrator`` moves calibration batches to the GPU without pycuda. Everything up to the
TensorRT call (profiles, builder settings, calibration data, file names) is plain Python and tested here; the call
itself needs ``tensorrt`` and a GPU and raises ``BackendUnavailableError`` without them.

What a build produces, per ONNX graph of the card (``model``, or FAN's ``embedder`` and ``aggregator``), in
``<model folder>/tensorrt/<precision>[.dla<N>].trt<version>.<gpu>-sm<cc>/``: the engine, named
``<model-id>[.<role>].<precision>[.dla<N>].trt<version>.<gpu>-sm<cc>.engine`` (``engine_meta.engine_filename``), its
sidecar ``<engine>.json`` (``engine_meta.write_engine_meta``: model, role, precision, TensorRT version, GPU, the
ONNX's hash, the batch profile), and a TensorRT ``model.yaml`` listing the engines under the card's roles and their
ONNX under ``onnx_<role>`` (the backend's fallback). The node's TensorRT backend checks the sidecar and refuses an
engine built for another model, ONNX, TensorRT or GPU with a message instead of crashing.

Precisions: ``fp32``; ``fp16`` (the robot default); ``int8`` with a calibration set drawn from the user's images
through the core's preprocessing (``calibration.py``). TensorRT 11 removed the FP16/INT8 builder flags (strongly
typed networks only): there only fp32 is built and the others are refused with the way forward.
"""
from __future__ import annotations

import ctypes
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from fer_ros.errors import BackendUnavailableError, ConfigError, ModelLoadError
from fer_ros.inference.engine_meta import GpuInfo, current_gpu, engine_filename, meta_path, write_engine_meta
from fer_ros.model_card import ModelCard

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_MAX_BATCH = 8  # faces per frame the engine is built for; more faces are run in several calls
MAX_BATCH_LIMIT = 256  # a larger profile is certainly a typo and would waste GPU memory at build time
DEFAULT_WORKSPACE_MB = 1024  # builder scratch memory; 1 GiB fits every shipped model on an 8 GB Jetson Orin
MIN_WORKSPACE_MB = 16  # below this TensorRT finds no tactic for a 224x224 ResNet stage
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75  # CUDA driver API enum values (cuda.h)
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
ENGINE_SUFFIX = ".engine"


@dataclass(frozen=True)
class EngineBuildOptions:
    """How to build: precision, batch range of the optimisation profile, builder memory, Jetson DLA."""

    precision: str = "fp16"
    max_batch: int = DEFAULT_MAX_BATCH
    opt_batch: int | None = None  # batch TensorRT tunes for; default: max_batch (a frame full of faces)
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    dla_core: int | None = None  # Jetson Xavier/Orin: run on this DLA core (layers DLA lacks fall back to the GPU)
    gpu_fallback: bool = True  # with dla_core: allow GPU fallback (without it unsupported layers fail the build)
    device: int = 0  # CUDA device index

    def validated(self) -> "EngineBuildOptions":
        """Self, or ConfigError naming the option and its accepted values."""
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision '{self.precision}' is not one of {PRECISIONS}")
        if not 1 <= self.max_batch <= MAX_BATCH_LIMIT:
            raise ConfigError(f"max batch {self.max_batch} is outside 1..{MAX_BATCH_LIMIT}")
        if self.opt_batch is not None and not 1 <= self.opt_batch <= self.max_batch:
            raise ConfigError(f"opt batch {self.opt_batch} must lie in 1..max batch ({self.max_batch})")
        if self.workspace_mb < MIN_WORKSPACE_MB:
            raise ConfigError(f"workspace {self.workspace_mb} MB is below {MIN_WORKSPACE_MB} MB")
        if self.dla_core is not None and self.dla_core < 0:
            raise ConfigError(f"DLA core {self.dla_core} must be >= 0 (Orin and Xavier have cores 0 and 1)")
        if self.device < 0:
            raise ConfigError(f"CUDA device {self.device} must be >= 0")
        return self


@dataclass
class EngineBuild:
    """One engine written to disk."""

    role: str
    onnx_path: Path
    engine_path: Path
    meta_path: Path | None
    precision: str
    trt_version: str
    gpu: GpuInfo
    build_seconds: float


def engine_name(model_id: str, precision: str, trt_version: str, gpu: GpuInfo, role: str = "model",
                dla_core: int | None = None) -> str:
    """``engine_meta.engine_filename`` plus ``.dla<N>`` after the precision for an engine built for a DLA core."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision '{precision}' is not one of {PRECISIONS}")
    name = engine_filename(model_id, precision, trt_version, gpu, role)
    if dla_core is None:
        return name
    return name.replace(f".{precision}.trt", f".{precision}.dla{int(dla_core)}.trt", 1)


def engine_tag(precision: str, trt_version: str, gpu: GpuInfo, dla_core: int | None = None) -> str:
    """Folder name of one build's TensorRT card: ``<precision>[.dla<N>].trt<version>.<gpu>-sm<cc>``."""
    stem = engine_name("x", precision, trt_version, gpu, dla_core=dla_core)[len("x."):-len(ENGINE_SUFFIX)]
    return stem


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or BackendUnavailableError saying how to get it."""
    try:
        import tensorrt  # noqa: PLC0415 - lazy: absent on every machine without an NVIDIA GPU
    except ImportError as exc:
        raise BackendUnavailableError(
            "TensorRT is not installed: engines are built on the robot (Jetson: it ships with JetPack, "
            "`python3 -c 'import tensorrt'`; x86: `pip install tensorrt` from NVIDIA's index, matching your CUDA). "
            "Until then run the ONNX model with onnxruntime") from exc
    return tensorrt


def trt_major(version: str) -> int:
    """Major version number of a TensorRT version string."""
    match = re.match(r"(\d+)", version)
    if not match:
        raise ConfigError(f"cannot read a TensorRT version from '{version}'")
    return int(match[1])


def check_precision_supported(precision: str, trt_version: str) -> None:
    """TensorRT 11 builds strongly typed networks only: no FP16/INT8 builder flags, no calibrators."""
    if trt_major(trt_version) >= 11 and precision != "fp32":
        raise ConfigError(
            f"TensorRT {trt_version} removed the {precision.upper()} builder flag and INT8 calibration (networks "
            f"are strongly typed). Build fp32 here, or convert the ONNX to fp16 first (NVIDIA ModelOpt AutoCast) "
            f"or add Q/DQ nodes for int8, then build that file as fp32")


def _cuda_driver() -> ctypes.CDLL | None:
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def gpu_from_driver(device: int = 0) -> GpuInfo | None:
    """Name and compute capability of CUDA device ``device`` from the driver API (libcuda), or None.

    Needs nothing but the NVIDIA driver, so it also answers on a Jetson without cuda-python, a CUDA torch or
    nvidia-smi (where ``engine_meta.current_gpu`` finds nothing).
    """
    cuda = _cuda_driver()
    if cuda is None:
        return None
    count, handle = ctypes.c_int(0), ctypes.c_int(0)
    name = ctypes.create_string_buffer(256)
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return None
    if not 0 <= device < count.value or cuda.cuDeviceGet(ctypes.byref(handle), device) != 0:
        return None
    results = (cuda.cuDeviceGetName(name, 256, handle),
               cuda.cuDeviceGetAttribute(ctypes.byref(major), CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, handle),
               cuda.cuDeviceGetAttribute(ctypes.byref(minor), CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, handle))
    if any(results):
        return None
    return GpuInfo(name.value.decode(errors="replace").strip(), f"{major.value}.{minor.value}")


def build_gpu(device: int = 0) -> GpuInfo:
    """The GPU this build targets, or BackendUnavailableError."""
    gpu = current_gpu(device) or gpu_from_driver(device)
    if gpu is None:
        raise BackendUnavailableError(f"no CUDA GPU {device} is visible (driver, CUDA_VISIBLE_DEVICES, container "
                                      f"--gpus?): TensorRT engines are built on the GPU that will run them")
    return gpu


def onnx_input_shapes(onnx_path: Path | str) -> dict[str, tuple[int, ...]]:
    """Input name -> shape of an ONNX graph, dynamic dimensions as -1 (read with onnx, no TensorRT needed)."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a bad file
        raise ModelLoadError(f"cannot read ONNX file {onnx_path}: {exc}") from exc
    initializers = {i.name for i in model.graph.initializer}
    shapes: dict[str, tuple[int, ...]] = {}
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        dims = inp.type.tensor_type.shape.dim
        shapes[inp.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
    return shapes


def profile_shapes(input_shapes: dict[str, tuple[int, ...]], max_batch: int, opt_batch: int | None = None,
                   frames: int | None = None) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """(min, opt, max) shape per input: batch 1..max_batch; FAN's frame axis 1..``frames`` (the card's window).

    Any other dynamic dimension is an export mistake (crops have a fixed size) and raises ConfigError.
    """
    opt_batch = opt_batch or max_batch
    out = {}
    for name, shape in input_shapes.items():
        lo, opt, hi = list(shape), list(shape), list(shape)
        for axis, dim in enumerate(shape):
            if dim > 0:
                continue
            if axis == 0:
                lo[axis], opt[axis], hi[axis] = 1, opt_batch, max_batch
            elif axis == 1 and frames:
                lo[axis], opt[axis], hi[axis] = 1, frames, frames
            else:
                raise ConfigError(f"ONNX input '{name}' has dynamic axis {axis} (shape {shape}); only the batch "
                                  f"(and a FAN aggregator's frame axis) may be dynamic: re-export the model")
        out[name] = (tuple(lo), tuple(opt), tuple(hi))
    return out


def polygraphy_profile(shapes: dict[str, tuple[tuple[int, ...], ...]]) -> Any:
    """A polygraphy ``Profile`` (one TensorRT optimisation profile) for these shapes; needs no GPU."""
    from polygraphy.backend.trt import Profile

    profile = Profile()
    for name, (lo, opt, hi) in shapes.items():
        profile.add(name, min=lo, opt=opt, max=hi)
    return profile


def _configure(options: EngineBuildOptions) -> Callable[[Any, Any, Any], None]:
    """Settings polygraphy's CreateConfig has no argument for: workspace limit and the DLA core number."""
    def apply(builder: Any, network: Any, config: Any) -> None:
        trt = import_tensorrt()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
        if options.dla_core is not None:
            if builder.num_DLA_cores <= options.dla_core:
                raise ConfigError(f"DLA core {options.dla_core} requested, this device has "
                                  f"{builder.num_DLA_cores} DLA cores")
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = options.dla_core
            if options.gpu_fallback:
                config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    return apply


def builder_config(options: EngineBuildOptions, profile: Any, calibrator: Any = None) -> Any:
    """The polygraphy config loader for these options (constructible without a GPU; called at build time)."""
    from polygraphy.backend.trt import CreateConfig, PostprocessConfig

    options.validated()
    if options.precision == "int8" and calibrator is None:
        raise ConfigError("int8 needs calibration data: pass --calibration-data DIR (the user's face images)")
    create = CreateConfig(fp16=options.precision in ("fp16", "int8"), int8=options.precision == "int8",
                          profiles=[profile], calibrator=calibrator,
                          use_dla=options.dla_core is not None, allow_gpu_fallback=options.gpu_fallback)
    return PostprocessConfig(create, _configure(options))


def build_serialized(onnx_path: Path, config_loader: Any) -> bytes:
    """Parse the ONNX and build the serialized engine (TensorRT's ``build_serialized_network``)."""
    import_tensorrt()
    from polygraphy.backend.trt import EngineBytesFromNetwork, NetworkFromOnnxPath
    from polygraphy.exception import PolygraphyException

    try:
        data = EngineBytesFromNetwork(NetworkFromOnnxPath(str(onnx_path)), config=config_loader)()
    except PolygraphyException as exc:
        raise ModelLoadError(f"TensorRT could not build an engine from {onnx_path}: {exc}") from exc
    if not data:
        raise ModelLoadError(f"TensorRT returned no engine for {onnx_path}; run with --verbose for its log")
    return bytes(data)


@dataclass
class EnginePlan:
    """One engine to build: from which ONNX, into which file, at which precision, with which profile."""

    role: str
    onnx_path: Path
    engine_path: Path
    precision: str
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]  # input -> (min, opt, max)
    note: str = ""  # why this engine's precision differs from the one asked for, if it does

    def meta_shapes(self) -> dict[str, dict[str, list[int]]]:
        """The profile in the sidecar's form (``engine_meta.write_engine_meta``)."""
        return {k: {"min": list(v[0]), "opt": list(v[1]), "max": list(v[2])} for k, v in self.shapes.items()}


def plan_builds(card: ModelCard, options: EngineBuildOptions, trt_version: str, gpu: GpuInfo,
                out_dir: Path | str | None = None) -> list[EnginePlan]:
    """What ``build_engines`` will build for this ONNX card; needs no TensorRT (version and GPU are given)."""
    options.validated()
    if card.format != "onnx":
        raise ConfigError(f"build-engine starts from an ONNX model card; {card.directory} holds a {card.format} "
                          f"model")
    check_precision_supported(options.precision, trt_version)
    out = Path(out_dir) if out_dir else default_output_dir(card, options, trt_version, gpu)
    roles = ("embedder", "aggregator") if card.is_temporal else ("model",)
    plans = []
    for role in roles:
        onnx_path = card.path(role)
        inputs = onnx_input_shapes(onnx_path)
        precision, note = options.precision, ""
        if precision == "int8" and role == "aggregator":
            precision, note = "fp16", "the FAN aggregator is a few small matrix products: INT8 gains nothing"
        elif precision == "int8" and len(inputs) > 1:
            raise ConfigError(f"int8 calibration feeds face images only; {onnx_path.name} takes {list(inputs)}: "
                              f"build it fp16")
        shapes = profile_shapes(inputs, options.max_batch, options.opt_batch,
                                frames=card.window if role == "aggregator" else None)
        engine = out / engine_name(card.id, precision, trt_version, gpu, role, options.dla_core)
        plans.append(EnginePlan(role, onnx_path, engine, precision, shapes, note))
    return plans


def default_output_dir(card: ModelCard, options: EngineBuildOptions, trt_version: str, gpu: GpuInfo) -> Path:
    """``<model folder>/tensorrt/<precision>[.dla<N>].trt<version>.<gpu>/``: one folder (one card) per build target."""
    return card.directory / "tensorrt" / engine_tag(options.precision, trt_version, gpu, options.dla_core)


def engine_card(card: ModelCard, plans: list[EnginePlan], options: EngineBuildOptions, trt_version: str,
                gpu: GpuInfo) -> ModelCard:
    """The TensorRT card of a build: engines under the card's roles, their ONNX under ``onnx_<role>`` (fallback)."""
    out_dir = plans[0].engine_path.parent
    files: dict[str, str] = {}
    for plan in plans:
        files[plan.role] = plan.engine_path.name
        files[f"onnx_{plan.role}"] = os.path.relpath(plan.onnx_path.resolve(), out_dir.resolve())
    extra = dict(card.extra)
    extra["tensorrt"] = {
        "version": trt_version, "gpu": gpu.name, "compute_capability": gpu.compute_capability,
        "precision": {p.role: p.precision for p in plans}, "max_batch": options.max_batch,
        "dla_core": options.dla_core, "built_from": str(card.directory),
    }
    return replace(card, format="tensorrt", files=files, extra=extra, directory=out_dir)


def build_engines(card: ModelCard, options: EngineBuildOptions, calibration: Path | str | None = None,
                  faces_mode: str = "detect", calibration_faces: int | None = None, out_dir: Path | str | None = None,
                  log: Callable[[str], None] = print) -> tuple[ModelCard, list[EngineBuild]]:
    """Build every engine of an ONNX card, write sidecars and the TensorRT card; returns (card, builds).

    Raises BackendUnavailableError without tensorrt or a GPU, ConfigError for bad options or data.
    """
    from fer_ros_training.export import calibration as calib

    trt = import_tensorrt()
    trt_version = str(trt.__version__)
    gpu = build_gpu(options.device)
    plans = plan_builds(card, options, trt_version, gpu, out_dir)
    plans[0].engine_path.parent.mkdir(parents=True, exist_ok=True)
    builds = []
    for plan in plans:
        if plan.note:
            log(f"{plan.role}: building {plan.precision} ({plan.note})")
        calibrator = None
        if plan.precision == "int8":
            if calibration is None:
                raise ConfigError("int8 needs calibration data: pass --calibration-data DIR (the user's face images)")
            input_name = next(iter(plan.shapes))
            batch = plan.shapes[input_name][1][0]
            limit = calibration_faces or calib.DEFAULT_CALIBRATION_FACES
            batches = calib.calibration_batches(card, calibration, batch, input_name, limit=limit, mode=faces_mode)
            cache = calib.cache_path_for(plan.onnx_path, trt_version)
            reused, reason = calib.prepare_cache(cache, batches, trt_version, str(calibration))
            log(f"{plan.role}: INT8 calibration on {batches.faces} faces in {len(batches)} batches of {batch} "
                f"({batches.report}); cache {cache.name}: {'reused' if reused else 'new'} ({reason})")
            calibrator = calib.make_calibrator(batches, cache)
        role_options = replace(options, precision=plan.precision)
        config = builder_config(role_options, polygraphy_profile(plan.shapes), calibrator)
        start = time.perf_counter()
        data = build_serialized(plan.onnx_path, config)
        seconds = time.perf_counter() - start
        tmp = plan.engine_path.with_name(plan.engine_path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(plan.engine_path)
        write_engine_meta(plan.engine_path, model_id=card.id, precision=plan.precision, onnx_path=plan.onnx_path,
                          input_shapes=plan.meta_shapes(), role=plan.role, tensorrt_version=trt_version, gpu=gpu)
        builds.append(EngineBuild(plan.role, plan.onnx_path, plan.engine_path, meta_path(plan.engine_path),
                                  plan.precision, trt_version, gpu, seconds))
        log(f"{plan.role}: {plan.engine_path} ({len(data) / 1e6:.1f} MB, {seconds:.0f} s)")
    trt_card = engine_card(card, plans, options, trt_version, gpu)
    trt_card.save()
    return trt_card, builds
