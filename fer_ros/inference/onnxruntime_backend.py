"""ONNX Runtime backend: CPU everywhere, the CUDA execution provider where onnxruntime-gpu and a GPU are present.

Session options are tuned for a small shared CPU: measured here (2 cores, mini-Xception, onnxruntime 1.32) one
intra-op thread runs a face in 0.18 ms and five in 0.88 ms; two spinning threads gain ~40% on the model alone but
spin-wait on the core mediapipe needs next, and two threads without spinning gain nothing at batch 1 (0.28 ms).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from fer_ros.errors import BackendUnavailableError, ModelLoadError
from fer_ros.inference.base import ONNX_FALLBACK_PREFIX, InferenceBackend, check_static_dims, model_roles
from fer_ros.model_card import ModelCard

LOG = logging.getLogger("fer_ros.inference")

ORT_INTRA_OP_THREADS = 1  # threads per session: 1 measured fastest end-to-end on 2 shared cores (module docstring)
CUDA_PROVIDER, CPU_PROVIDER = "CUDAExecutionProvider", "CPUExecutionProvider"
# onnxruntime input type -> numpy dtype: a FAN aggregator's mask may be exported as bool, float or int
_ORT_TYPES = {"tensor(float)": np.float32, "tensor(bool)": np.bool_, "tensor(int64)": np.int64,
              "tensor(int32)": np.int32, "tensor(float16)": np.float16}


def _import_ort():
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailableError("onnxruntime is not installed: `pip install onnxruntime` (or "
                                      "onnxruntime-gpu on a CUDA machine)") from exc
    return ort


def onnx_path(card: ModelCard, role: str) -> Path:
    """The ONNX file of a role: the card's own for ONNX cards, ``onnx_<role>`` for TensorRT cards."""
    if card.format == "onnx":
        return card.path(role)
    return card.path(ONNX_FALLBACK_PREFIX + role)


class OnnxRuntimeBackend(InferenceBackend):
    """Runs an ONNX card (or a TensorRT card's ONNX fallbacks) in onnxruntime."""

    def __init__(self, card: ModelCard, device: str = "auto", threads: int = ORT_INTRA_OP_THREADS) -> None:
        super().__init__(card)
        ort = _import_ort()
        available = ort.get_available_providers()
        if device == "cuda" and CUDA_PROVIDER not in available:
            raise BackendUnavailableError(f"onnxruntime here offers {available}, not CUDA: install onnxruntime-gpu "
                                          f"matching your CUDA, or use device 'cpu'")
        use_cuda = device in ("auto", "cuda") and CUDA_PROVIDER in available
        providers = [CUDA_PROVIDER, CPU_PROVIDER] if use_cuda else [CPU_PROVIDER]
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.sessions = {}
        for role in model_roles(card):
            path = onnx_path(card, role)
            if not path.is_file():
                raise ModelLoadError(f"model file {path} of {card.id} is missing: run the command that produces it "
                                     f"(default model: `fer-ros convert-default-model`)")
            try:
                session = ort.InferenceSession(str(path), options, providers=providers)
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
                raise ModelLoadError(f"onnxruntime cannot load {path} ({type(exc).__name__}: "
                                     f"{str(exc).strip()[:300]}): the file is corrupt or not ONNX; re-export it"
                                     ) from exc
            inputs, outputs = session.get_inputs(), session.get_outputs()
            check_static_dims(card, path, role, list(inputs[0].shape), list(outputs[0].shape))
            self.sessions[role] = session
        first = next(iter(self.sessions.values()))
        self.name = f"onnxruntime[{first.get_providers()[0]}]"
        self._inputs = {role: [i.name for i in s.get_inputs()] for role, s in self.sessions.items()}
        self._output = {role: s.get_outputs()[0].name for role, s in self.sessions.items()}
        self._types = {role: [_ORT_TYPES.get(i.type, np.float32) for i in s.get_inputs()]
                       for role, s in self.sessions.items()}

    def _run(self, role: str, feeds: list[np.ndarray]) -> np.ndarray:
        feeds = [np.ascontiguousarray(f, dtype=t) for f, t in zip(feeds, self._types[role])]
        return self.sessions[role].run([self._output[role]], dict(zip(self._inputs[role], feeds)))[0]

    def _classify(self, batch: np.ndarray) -> np.ndarray:
        return self._run("model", [batch])

    def _embed(self, batch: np.ndarray) -> np.ndarray:
        return self._run("embedder", [batch])

    def _aggregate(self, embeddings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if len(self._inputs["aggregator"]) < 2:
            raise ModelLoadError(f"the aggregator of {self.card.id} takes {len(self._inputs['aggregator'])} input; "
                                 f"a FAN aggregator takes (embeddings, mask): re-export it")
        return self._run("aggregator", [embeddings, mask])

    def close(self) -> None:
        self.sessions.clear()
