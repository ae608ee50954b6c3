"""Every network of fer_ros, defined once and built by name for training, export and the torch backend.

``build_network(name, num_classes=7, **kwargs)`` returns a ``torch.nn.Module``; ``NETWORKS`` lists the names and
``NETWORK_SPECS`` says what each one eats (input size, channels, kind), so a trainer or the export can make a dummy
input without knowing the architecture. A model card's ``architecture`` field is one of these names.

Calling conventions (all return logits, no softmax):
- image networks: ``model(x)``, x (N, C, H, W) float32.
- ``fusion``: ``model(image=..., landmarks=..., hog=...)`` or ``model({"image": ..., "landmarks": ..., "hog": ...})``.
- ``fan`` / ``fan_tiny``: :class:`~fer_ros_training.networks.fan.FanNetwork`, ``model(clips, mask=None)`` with clips
  (N, T, C, H, W) and mask (N, T) bool; ``.embedder`` and ``.aggregator`` are the two exportable halves.
- Extra loss terms: :func:`regularization_loss` (Deep-Emotion's L2 on its last FC weights; 0 for the others); for
  baselines built with ``landmark_points > 0``, ``model.forward_with_landmarks(x)``; a network with its own loss
  (FERAtt) has ``model.training_loss(batch, parts=None) -> (loss, logits)``, which the trainer uses instead of
  cross-entropy, and its spec's ``background_target`` makes the trainer feed it faces on gray backgrounds.

Modules are imported only when their network is built, so the registry works before every file exists (the
``mini_xception`` definition is written by the core's engineer).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from fer_ros.errors import ConfigError


@dataclass(frozen=True)
class NetworkSpec:
    """What a network is and what it eats by default."""

    name: str
    module: str  # fer_ros_training.networks.<module>
    builder: str  # function in that module: builder(num_classes=..., **kwargs) -> nn.Module
    input_size: int  # default square input side, pixels
    channels: int  # 1 = gray, 3 = RGB
    kind: str = "image"  # image | clip (FAN) | multimodal (fusion)
    description: str = ""
    # training samples carry the FERAtt target: faces pasted on gray backgrounds + the clean face (augment_background)
    background_target: bool = False


_SPECS = (
    NetworkSpec("rmn", "rmn", "rmn", 224, 3, description="Residual Masking Network, ResNet-34 + U-Net masks"),
    NetworkSpec("rmn_tiny", "rmn", "rmn_tiny", 64, 3, description="RMN topology at 1/4 width, for CPU tests"),
    NetworkSpec("fan", "fan", "fan", 224, 3, "clip", "Frame Attention Network, ResNet-18 embedder"),
    NetworkSpec("fan_tiny", "fan", "fan_tiny", 64, 3, "clip", "FAN with a narrow ResNet embedder, for CPU tests"),
    NetworkSpec("resnet18", "transfer", "resnet18", 224, 3, description="ResNet-18 baseline (transfer modes)"),
    NetworkSpec("resnet34", "transfer", "resnet34", 224, 3, description="ResNet-34 baseline (transfer modes)"),
    NetworkSpec("vgg16", "transfer", "vgg16", 224, 3, description="VGG-16 with BatchNorm baseline (transfer modes)"),
    NetworkSpec("vgg19", "transfer", "vgg19", 224, 3, description="VGG-19 with BatchNorm baseline (transfer modes)"),
    NetworkSpec("densenet121", "transfer", "densenet121", 224, 3, description="DenseNet-121 baseline"),
    NetworkSpec("deep_emotion", "deep_emotion", "deep_emotion", 48, 1,
                description="Deep-Emotion: small CNN + spatial transformer, 48x48 gray"),
    NetworkSpec("fusion", "fusion", "fusion", 48, 1, "multimodal",
                "48x48 gray CNN with CBAM + 68-landmark MLP + HOG MLP"),
    NetworkSpec("mini_xception", "mini_xception", "build_mini_xception", 64, 1,
                description="FER2013 mini-Xception (the default model's architecture)"),
    NetworkSpec("feratt", "feratt", "feratt", 224, 3, description="FERAtt-style attention net, ResNet-18 encoder",
                background_target=True),
    NetworkSpec("feratt_tiny", "feratt", "feratt_tiny", 64, 3, description="FERAtt with narrow ResNets, CPU tests",
                background_target=True),
    NetworkSpec("inception_resnet", "inception_resnet", "inception_resnet", 224, 3,
                description="Inception-ResNet v1 (activation: relu | prelu)"),
    NetworkSpec("inception_resnet_tiny", "inception_resnet", "inception_resnet_tiny", 64, 3,
                description="Inception-ResNet v1 at 1/8 width, one block each, for CPU tests"),
)
NETWORK_SPECS: dict[str, NetworkSpec] = {s.name: s for s in _SPECS}
NETWORKS: tuple[str, ...] = tuple(NETWORK_SPECS)


def network_spec(name: str) -> NetworkSpec:
    """The spec of ``name``; ConfigError listing the known names otherwise."""
    if name not in NETWORK_SPECS:
        raise ConfigError(f"unknown network '{name}'; choose one of: {', '.join(NETWORKS)}")
    return NETWORK_SPECS[name]


def build_network(name: str, num_classes: int = 7, **kwargs: Any) -> nn.Module:
    """Build network ``name`` with ``num_classes`` outputs; ``kwargs`` go to its builder (see each module)."""
    spec = network_spec(name)
    if num_classes < 2:
        raise ConfigError(f"num_classes must be >= 2, got {num_classes}")
    module = importlib.import_module(f"{__name__}.{spec.module}")
    builder = getattr(module, spec.builder, None)
    if builder is None and spec.name == "mini_xception":  # tolerate the class being the public name
        builder = getattr(module, "MiniXception", None)
    if builder is None:
        raise ConfigError(f"{module.__name__} defines no '{spec.builder}' to build network '{name}'")
    try:
        return builder(num_classes=num_classes, **kwargs)
    except TypeError as exc:  # an unknown keyword: name it and the network
        raise ConfigError(f"network '{name}': {exc}") from exc


def example_input(name: str, batch: int = 1, size: int | None = None, frames: int = 3) -> Any:
    """A random input of the right shape for ``name`` (dict for fusion, (clips, mask) for FAN): for export and tests."""
    spec = network_spec(name)
    side = size or spec.input_size
    image = torch.randn(batch, spec.channels, side, side)
    if spec.kind == "clip":
        clips = torch.randn(batch, frames, spec.channels, side, side)
        return clips, torch.ones(batch, frames, dtype=torch.bool)
    if spec.kind == "multimodal":
        from fer_ros_training.features import hog_dim

        return {"image": image, "landmarks": torch.rand(batch, 68, 2), "hog": torch.rand(batch, hog_dim(side))}
    return image


def regularization_loss(model: nn.Module) -> torch.Tensor:
    """Extra loss a network's recipe adds to cross-entropy (Deep-Emotion: L2 on the last FC weights), else 0."""
    penalty = getattr(model, "l2_penalty", None)
    if penalty is None:
        return torch.zeros(())
    return penalty()


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameters (shared tensors counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
