"""The seeds' baselines (ResNet-18/34, VGG-16/19, DenseNet-121) in three transfer modes, with an optional
landmark-regression auxiliary head.

Modes:
- ``scratch``: random initialisation, everything trains.
- ``frozen``: ImageNet (or user-supplied) weights; the feature extractor is frozen (no gradients, BatchNorm statistics
  and dropout kept in eval mode even while training) and only the classifier (``backbone.head_modules()``) and the
  landmark head learn.
- ``finetune``: ImageNet (or user-supplied) weights, new classifier, everything trains.

``pretrained`` is ``"imagenet"`` (torchvision's published weights through ``torch.hub.load_state_dict_from_url``:
needs network once, cached afterwards) or the path of a torchvision-layout state-dict file (how a machine without
network gets them). Gray input (``in_channels=1``) receives the RGB first-layer kernels summed over colour.

With ``landmark_points = P > 0`` a linear head regresses P (x, y) points (in [0, 1] crop coordinates) from the same
features; ``forward`` still returns only logits (export and inference see the plain classifier), the trainer calls
``forward_with_landmarks`` and adds ``landmark_loss``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fer_ros.errors import ConfigError
from fer_ros_training.networks import densenet as densenet_mod
from fer_ros_training.networks import resnet as resnet_mod
from fer_ros_training.networks import vgg as vgg_mod

TRANSFER_MODES = ("scratch", "frozen", "finetune")


class TransferNetwork(nn.Module):
    """A backbone (``forward_features``/``forward_head``/``head_modules``) in one transfer mode, optional
    landmark head."""

    def __init__(self, backbone: nn.Module, mode: str = "scratch", landmark_points: int = 0) -> None:
        super().__init__()
        if mode not in TRANSFER_MODES:
            raise ConfigError(f"unknown transfer mode '{mode}'; choose one of {', '.join(TRANSFER_MODES)}")
        self.backbone = backbone
        self.mode = mode
        self.landmark_points = landmark_points
        self.landmark_head = nn.Linear(backbone.num_features, 2 * landmark_points) if landmark_points > 0 else None
        if mode == "frozen":
            trainable = {id(p) for m in backbone.head_modules() for p in m.parameters()}
            for p in backbone.parameters():
                p.requires_grad_(id(p) in trainable)

    def train(self, mode: bool = True) -> "TransferNetwork":
        super().train(mode)
        if self.mode == "frozen" and mode:  # frozen layers keep their BatchNorm statistics and no dropout
            self.backbone.eval()
            for m in self.backbone.head_modules():
                m.train(True)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_head(self.backbone.forward_features(x))

    def forward_with_landmarks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, classes) and landmarks (N, P, 2) from one feature pass."""
        if self.landmark_head is None:
            raise ConfigError("this network has no landmark head: build it with landmark_points > 0")
        feats = self.backbone.forward_features(x)
        points = self.landmark_head(feats).view(x.shape[0], self.landmark_points, 2)
        return self.backbone.forward_head(feats), points

    @staticmethod
    def landmark_loss(predicted: torch.Tensor, target: torch.Tensor,
                      valid: torch.Tensor | None = None) -> torch.Tensor:
        """Mean squared error over faces whose landmarks are known (``valid`` (N,) bool; all if None)."""
        per_face = F.mse_loss(predicted, target, reduction="none").flatten(1).mean(dim=1)
        if valid is None:
            return per_face.mean()
        weights = valid.to(per_face.dtype)
        return (per_face * weights).sum() / weights.sum().clamp_min(1.0)


def _check_mode(mode: str, pretrained: str | Path | None) -> None:
    if mode not in TRANSFER_MODES:
        raise ConfigError(f"unknown transfer mode '{mode}'; choose one of {', '.join(TRANSFER_MODES)}")
    if mode == "scratch" and pretrained:
        raise ConfigError("transfer='scratch' trains from random weights; use transfer='finetune' or 'frozen' to "
                          "start from pretrained weights")
    if mode != "scratch" and not pretrained:
        raise ConfigError(f"transfer='{mode}' needs pretrained weights: pretrained='imagenet' (downloads "
                          f"torchvision's file once) or pretrained=<path of a state-dict file>")


def _finish(backbone: nn.Module, num_classes: int, mode: str, pretrained: str | Path | None, url: str | None,
            head_prefixes: tuple[str, ...], landmark_points: int, key_map=None) -> TransferNetwork:
    _check_mode(mode, pretrained)
    if pretrained:
        resnet_mod.load_pretrained(backbone, pretrained, url, drop_prefixes=head_prefixes, key_map=key_map)
        backbone.reset_classifier(num_classes)  # a fresh classifier for the expression classes
    return TransferNetwork(backbone, mode, landmark_points)


def _resnet(name: str, num_classes: int, transfer: str, pretrained: str | Path | None, landmark_points: int,
            **kwargs: Any) -> TransferNetwork:
    backbone = resnet_mod.resnet(name, num_classes=num_classes, **kwargs)
    return _finish(backbone, num_classes, transfer, pretrained, resnet_mod.IMAGENET_URLS[name], ("fc.",),
                   landmark_points)


def resnet18(num_classes: int = 7, transfer: str = "scratch", pretrained: str | Path | None = None,
             landmark_points: int = 0, **kwargs: Any) -> TransferNetwork:
    """ResNet-18 baseline: 11.18 M parameters with 7 classes."""
    return _resnet("resnet18", num_classes, transfer, pretrained, landmark_points, **kwargs)


def resnet34(num_classes: int = 7, transfer: str = "scratch", pretrained: str | Path | None = None,
             landmark_points: int = 0, **kwargs: Any) -> TransferNetwork:
    """ResNet-34 baseline: 21.29 M parameters with 7 classes."""
    return _resnet("resnet34", num_classes, transfer, pretrained, landmark_points, **kwargs)


def _vgg(name: str, num_classes: int, transfer: str, pretrained: str | Path | None, landmark_points: int,
         batch_norm: bool = True, hidden: int = vgg_mod.VGG_HIDDEN, **kwargs: Any) -> TransferNetwork:
    backbone = vgg_mod.vgg(name, num_classes=num_classes, batch_norm=batch_norm, hidden=hidden, **kwargs)
    # The last FC is always new; the hidden FCs load too when they have the published width.
    drop = ("classifier.6.",) if hidden == vgg_mod.VGG_HIDDEN else ("classifier.",)
    return _finish(backbone, num_classes, transfer, pretrained, vgg_mod.IMAGENET_URLS[(name, batch_norm)], drop,
                   landmark_points)


def vgg16(num_classes: int = 7, transfer: str = "scratch", pretrained: str | Path | None = None,
          landmark_points: int = 0, **kwargs: Any) -> TransferNetwork:
    """VGG-16 (BatchNorm unless ``batch_norm=False``) baseline: 134.3 M parameters with 7 classes."""
    return _vgg("vgg16", num_classes, transfer, pretrained, landmark_points, **kwargs)


def vgg19(num_classes: int = 7, transfer: str = "scratch", pretrained: str | Path | None = None,
          landmark_points: int = 0, **kwargs: Any) -> TransferNetwork:
    """VGG-19 (BatchNorm unless ``batch_norm=False``) baseline: 139.6 M parameters with 7 classes."""
    return _vgg("vgg19", num_classes, transfer, pretrained, landmark_points, **kwargs)


def densenet121(num_classes: int = 7, transfer: str = "scratch", pretrained: str | Path | None = None,
                landmark_points: int = 0, **kwargs: Any) -> TransferNetwork:
    """DenseNet-121 baseline: 6.96 M parameters with 7 classes."""
    backbone = densenet_mod.densenet121(num_classes=num_classes, **kwargs)
    return _finish(backbone, num_classes, transfer, pretrained, densenet_mod.IMAGENET_URL, ("classifier.",),
                   landmark_points, key_map=densenet_mod.densenet_state_dict_to_ours)
