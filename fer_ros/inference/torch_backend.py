"""PyTorch backend, for development: runs a checkpoint through the training package's network definition.

The network is built by name from the card's ``architecture`` with ``fer_ros_training.networks.build_network`` (the
one definition training and export use), ``num_classes`` = the card's label count and ``network_kwargs`` from the card
(optional). The weights come from the card's ``model`` file when the card's format is ``torch``, or from a
``checkpoint`` file listed beside an ONNX model. A checkpoint is a state dict or a dict holding one under ``model`` or
``state_dict`` (the trainer's full checkpoint). FAN networks run their ``embedder`` and ``aggregator`` halves.
torch and fer_ros_training are imported only when this backend is built; the robot never needs them.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from fer_ros.errors import BackendUnavailableError, ModelCardError, ModelLoadError
from fer_ros.inference.base import InferenceBackend
from fer_ros.model_card import ModelCard

LOG = logging.getLogger("fer_ros.inference")

STATE_DICT_KEYS = ("model", "state_dict", "model_state_dict")  # where full checkpoints keep the weights


def checkpoint_path(card: ModelCard) -> Path:
    """The weights file the torch backend loads for ``card``."""
    role = "model" if card.format == "torch" else "checkpoint"
    if role not in card.files:
        raise ModelCardError(f"model {card.id} is a {card.format} model with no 'checkpoint' file in its card: the "
                             f"torch backend needs the training checkpoint; use backend onnxruntime instead")
    return card.path(role)


def _state_dict(obj: Any, path: Path) -> dict:
    if isinstance(obj, dict):
        for key in STATE_DICT_KEYS:
            if isinstance(obj.get(key), dict):
                return obj[key]
        if obj and all(hasattr(v, "shape") for v in obj.values()):
            return obj
    raise ModelLoadError(f"{path} holds no state dict (looked for a plain one and under {STATE_DICT_KEYS})")


class TorchBackend(InferenceBackend):
    """Runs a card's network in torch eval mode (CUDA when available, else CPU)."""

    def __init__(self, card: ModelCard, device: str = "auto") -> None:
        super().__init__(card)
        try:
            import torch

            from fer_ros_training.networks import build_network
        except ImportError as exc:
            raise BackendUnavailableError(f"the torch backend needs torch and the training package "
                                          f"(pip install -r requirements/dev.txt; PYTHONPATH=training): {exc}") from exc
        self._torch = torch
        path = checkpoint_path(card)
        if not path.is_file():
            raise ModelLoadError(f"checkpoint {path} of {card.id} is missing")
        try:
            raw = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises pickle, zip and runtime errors for a bad file
            raise ModelLoadError(f"torch cannot load {path} ({type(exc).__name__}: {exc}): corrupt or not a "
                                 f"checkpoint") from exc
        kwargs = dict(card.extra.get("network_kwargs") or {})
        network = build_network(card.architecture, num_classes=len(card.labels), **kwargs)
        try:
            network.load_state_dict(_state_dict(raw, path), strict=True)
        except RuntimeError as exc:
            raise ModelCardError(f"checkpoint {path} does not fit architecture '{card.architecture}' with "
                                 f"{len(card.labels)} labels as card {card.id} says: {str(exc)[:400]}") from exc
        use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        if device == "cuda" and not use_cuda:
            raise BackendUnavailableError("torch here has no CUDA device; use device 'cpu'")
        self.device = torch.device("cuda" if use_cuda else "cpu")
        self.network = network.to(self.device).eval()
        if card.is_temporal and not (hasattr(network, "embedder") and hasattr(network, "aggregator")):
            raise ModelCardError(f"card {card.id} is temporal but '{card.architecture}' has no embedder/aggregator")
        self.name = f"torch[{self.device.type}]"

    @property
    def _logits(self) -> bool:
        # Registry networks return logits whatever the exported (ONNX) model's card says about its own output.
        return not getattr(self.network, "probabilities", False)

    def _run(self, module, *arrays: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in arrays]
            return module(*tensors).float().cpu().numpy()

    def _classify(self, batch: np.ndarray) -> np.ndarray:
        return self._run(self.network, batch)

    def _embed(self, batch: np.ndarray) -> np.ndarray:
        return self._run(self.network.embedder, batch)

    def _aggregate(self, embeddings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self._run(self.network.aggregator, embeddings, mask)
