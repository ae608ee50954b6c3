"""Inference backends behind one interface: ``create_backend(card, backend) -> InferenceBackend``.

``backend`` is one of ``BACKENDS``:
- ``auto``: a TensorRT card runs on TensorRT when tensorrt and a GPU are present, otherwise (logged at WARN with the
  reason) on ONNX Runtime with the ONNX files the card lists as ``onnx_*``; an ONNX card runs on ONNX Runtime (CUDA
  provider when present); a torch card on torch.
- ``tensorrt``: TensorRT or BackendUnavailableError (never a silent fallback when asked for explicitly).
- ``onnxruntime``: the card's ONNX files.
- ``torch``: development; the card's checkpoint through ``fer_ros_training.networks``.
Every backend module is imported only when chosen.
"""
from __future__ import annotations

import logging

from fer_ros.errors import BackendUnavailableError, ConfigError, ModelCardError
from fer_ros.inference.base import ONNX_FALLBACK_PREFIX, InferenceBackend, model_roles
from fer_ros.model_card import ModelCard

__all__ = ["BACKENDS", "InferenceBackend", "create_backend"]

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
LOG = logging.getLogger("fer_ros.inference")


def _has_onnx_fallback(card: ModelCard) -> bool:
    return all(ONNX_FALLBACK_PREFIX + role in card.files for role in model_roles(card))


def create_backend(card: ModelCard, backend: str = "auto", logger: logging.Logger | None = None,
                   **options) -> InferenceBackend:
    """Build the backend that runs ``card``; ``options`` go to the backend (``threads``, ``device``)."""
    log = logger or LOG
    if backend not in BACKENDS:
        raise ConfigError(f"backend '{backend}' is not one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = {"tensorrt": "tensorrt", "torch": "torch"}.get(card.format, "onnxruntime")
        if backend == "tensorrt":
            from fer_ros.inference.tensorrt_backend import tensorrt_unavailable_reason

            reason = tensorrt_unavailable_reason()
            if reason is not None:
                if not _has_onnx_fallback(card):
                    raise BackendUnavailableError(
                        f"model {card.id} is a TensorRT engine and {reason}; its card lists no ONNX fallback "
                        f"(files: onnx_{' / onnx_'.join(model_roles(card))}): add it or use an ONNX model")
                log.warning("TensorRT unavailable (%s): running %s on ONNX Runtime instead", reason, card.id)
                backend = "onnxruntime"
    if backend == "tensorrt":
        from fer_ros.inference.tensorrt_backend import TensorRTBackend

        result: InferenceBackend = TensorRTBackend(card, **options)
    elif backend == "onnxruntime":
        if card.format == "torch":
            raise ModelCardError(f"model {card.id} is a torch checkpoint: export it to ONNX (`fer-ros export`) "
                                 f"or use backend torch")
        if card.format == "tensorrt" and not _has_onnx_fallback(card):
            raise ModelCardError(f"model {card.id} is a TensorRT engine whose card lists no onnx_* files for "
                                 f"ONNX Runtime")
        from fer_ros.inference.onnxruntime_backend import OnnxRuntimeBackend

        result = OnnxRuntimeBackend(card, **options)
    else:
        from fer_ros.inference.torch_backend import TorchBackend

        result = TorchBackend(card, **options)
    log.info("model %s runs on %s", card.id, result.name)
    return result
