"""TensorRT backend: runs serialized engines (TensorRT 10 name-based tensor API) on the robot's GPU.

``tensorrt`` and the CUDA buffers (``polygraphy.cuda``, NVIDIA's pure-Python libcudart wrapper) are imported only
when this backend is built. Before an engine is deserialized its sidecar (``engine_meta``) is checked against the
model card, the ONNX it came from, the running TensorRT and the GPU; a stale engine raises EngineMismatchError.

A TensorRT card lists the engine files under the usual roles (``model``, or ``embedder`` + ``aggregator``) and may
list the ONNX they were built from as ``onnx_model`` / ``onnx_embedder`` / ``onnx_aggregator``: ``backend=auto``
then falls back to ONNX Runtime on machines without TensorRT or a GPU (see ``fer_ros.inference.create_backend``).
Batches larger than the engine's optimisation profile are run in chunks of the profile's maximum.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from fer_ros.errors import BackendUnavailableError, ModelLoadError
from fer_ros.inference.base import ONNX_FALLBACK_PREFIX, InferenceBackend, check_static_dims, model_roles
from fer_ros.inference.engine_meta import check_engine_meta, current_gpu
from fer_ros.model_card import ModelCard

LOG = logging.getLogger("fer_ros.inference")


def tensorrt_unavailable_reason() -> str | None:
    """Why the TensorRT backend cannot run here, or None when it can."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return ("tensorrt is not installed (on Jetson it comes with JetPack; on x86 `pip install tensorrt` from "
                "NVIDIA's index)")
    try:
        import polygraphy.cuda  # noqa: F401
    except ImportError:
        return "polygraphy is not installed (`pip install polygraphy`; it provides the CUDA buffers)"
    if current_gpu() is None:
        return "no CUDA GPU is visible (check the driver, nvidia-smi, and CUDA_VISIBLE_DEVICES)"
    return None


class _Engine:
    """One deserialized engine with its execution context, stream and reusable device buffers."""

    def __init__(self, path: Path, trt, logger) -> None:
        from polygraphy import cuda

        self._cuda = cuda
        self.path = path
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise ModelLoadError(f"TensorRT could not deserialize {path}: the file is corrupt or was built by "
                                 f"another TensorRT; rebuild it with `fer-ros build-engine`")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        min_shape, _, max_shape = self.engine.get_tensor_profile_shape(self.inputs[0], 0)
        self.min_batch, self.max_batch = int(min_shape[0]), int(max_shape[0])
        self.stream = cuda.Stream()
        self.buffers = {n: cuda.DeviceArray.raw((0,)) for n in names}

    def shapes(self) -> tuple[list, list]:
        return list(self.engine.get_tensor_shape(self.inputs[0])), list(self.engine.get_tensor_shape(self.outputs[0]))

    def run(self, feeds: list[np.ndarray]) -> np.ndarray:
        n = feeds[0].shape[0]
        if n > self.max_batch:
            return np.concatenate([self.run([f[i:i + self.max_batch] for f in feeds])
                                   for i in range(0, n, self.max_batch)])
        for name, arr in zip(self.inputs, feeds):
            arr = np.ascontiguousarray(arr, dtype=self.dtypes[name])
            if not self.context.set_input_shape(name, arr.shape):
                raise ModelLoadError(f"engine {self.path} rejects input '{name}' of shape {arr.shape} (profile "
                                     f"batch {self.min_batch}..{self.max_batch})")
            buf = self.buffers[name].resize((arr.nbytes,))  # raw bytes: copies go through uint8 views
            buf.copy_from(arr.view(np.uint8).reshape(-1), self.stream)
            self.context.set_tensor_address(name, buf.ptr)
        out_name = self.outputs[0]
        out = np.empty(tuple(self.context.get_tensor_shape(out_name)), dtype=self.dtypes[out_name])
        for name in self.outputs:  # every output needs an address, even the ones we do not read
            shape = tuple(self.context.get_tensor_shape(name))
            nbytes = int(np.prod(shape)) * self.dtypes[name].itemsize
            self.context.set_tensor_address(name, self.buffers[name].resize((nbytes,)).ptr)
        if not self.context.execute_async_v3(self.stream.ptr):
            raise ModelLoadError(f"TensorRT failed to run {self.path} (see the TensorRT log above)")
        self.buffers[out_name].copy_to(out.view(np.uint8).reshape(-1), self.stream)
        self.stream.synchronize()
        return out.astype(np.float32, copy=False)

    def close(self) -> None:
        for buf in self.buffers.values():
            buf.free()
        self.stream.free()


class TensorRTBackend(InferenceBackend):
    """Runs a TensorRT card's engines; raises BackendUnavailableError where TensorRT or a GPU is missing."""

    def __init__(self, card: ModelCard, check_meta: bool = True) -> None:
        super().__init__(card)
        reason = tensorrt_unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError(f"the TensorRT backend cannot run here: {reason}")
        if card.format != "tensorrt":
            raise ModelLoadError(f"model {card.id} is a {card.format} model; TensorRT needs an engine: build one "
                                 f"with `fer-ros build-engine --model {card.directory}` and use its card")
        import tensorrt as trt

        self._logger = trt.Logger(trt.Logger.WARNING)
        self.engines: dict[str, _Engine] = {}
        precisions: list[str] = []
        for role in model_roles(card):
            path = card.path(role)
            if check_meta:
                onnx = card.directory / card.files[ONNX_FALLBACK_PREFIX + role] \
                    if ONNX_FALLBACK_PREFIX + role in card.files else None
                meta = check_engine_meta(path, card, role=role, onnx_path=onnx)
                LOG.info("TensorRT engine %s: %s, built with TensorRT %s on %s", path.name, meta.precision,
                         meta.tensorrt_version, meta.gpu_name)
                precisions.append(meta.precision)
            engine = _Engine(path, trt, self._logger)
            check_static_dims(card, path, role, *engine.shapes())
            self.engines[role] = engine
        precision = "/".join(dict.fromkeys(precisions)) or "unchecked"  # as the sidecars say, not as assumed
        self.name = f"tensorrt[{precision}, {current_gpu().name}]"

    def _classify(self, batch: np.ndarray) -> np.ndarray:
        return self.engines["model"].run([batch])

    def _embed(self, batch: np.ndarray) -> np.ndarray:
        return self.engines["embedder"].run([batch])

    def _aggregate(self, embeddings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.engines["aggregator"].run([embeddings, mask])

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()
        self.engines.clear()
