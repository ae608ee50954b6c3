"""Multimodal fusion network (the multimodal seed paper): three 128-d branches, concatenated, FC 384, classes.

- image: 48x48 gray face -> three conv stages (32, 64, 128 channels; two 3x3 conv+BN+ReLU, CBAM, 2x2 max-pool each)
  -> global average pool -> FC 128. CBAM (Woo et al. 2018) re-weights channels (shared MLP over average- and
  max-pooled maps) then positions (7x7 conv over channel-average and channel-max maps).
- landmarks: 68 iBUG points (from the core's face mesh, ``fer_ros_training.features.mesh_to_ibug68``, normalised by
  ``normalize_landmarks``) -> MLP 136 -> 256 -> 128.
- HOG of the same crop (``fer_ros_training.features.hog_features``, 900-d at 48x48) -> MLP -> 256 -> 128.
- concatenation (384) -> FC 384 + ReLU + dropout -> FC classes.

Call with named tensors ``model(image=x, landmarks=l, hog=h)`` (also positionally, in that order) or with a dict
``model({"image": x, "landmarks": l, "hog": h})``; landmarks may be (N, 68, 2) or (N, 136).

Parameters (7 classes, 48x48): 0.79 M.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from fer_ros.errors import ConfigError
from fer_ros_training.features import hog_dim

# Width of each branch's output, fixed by the paper's design (3 x 128 = 384 after concatenation).
BRANCH_DIM = 128
# Channels of the three conv stages of the image branch.
IMAGE_STAGES = (32, 64, 128)
# Channel reduction inside CBAM's shared MLP (Woo et al. use 16; 8 keeps >= 4 hidden units at 32 channels).
CBAM_REDUCTION = 8
# Number of landmarks the landmark branch takes (iBUG layout).
NUM_LANDMARKS = 68
# Dropout in the MLP branches and before the classifier.
FUSION_DROPOUT = 0.3


class ChannelAttention(nn.Module):
    """CBAM's channel gate: sigmoid(MLP(avg-pool) + MLP(max-pool)) per channel."""

    def __init__(self, channels: int, reduction: int = CBAM_REDUCTION) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return x * torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """CBAM's spatial gate: sigmoid(conv7x7([mean over channels, max over channels])) per position."""

    def __init__(self, kernel: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM(nn.Sequential):
    """Convolutional Block Attention Module: channel gate, then spatial gate."""

    def __init__(self, channels: int) -> None:
        super().__init__(ChannelAttention(channels), SpatialAttention())


def _conv_bn_relu(in_ch: int, out_ch: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]


def _mlp(in_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, 256), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(256, BRANCH_DIM), nn.ReLU(inplace=True))


class FusionNetwork(nn.Module):
    """Image (CNN + CBAM), landmark (MLP) and HOG (MLP) branches of 128-d each -> FC 384 -> logits."""

    input_names = ("image", "landmarks", "hog")

    def __init__(self, num_classes: int = 7, in_channels: int = 1, input_size: int = 48,
                 dropout: float = FUSION_DROPOUT) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for width in IMAGE_STAGES:
            layers += _conv_bn_relu(ch, width) + _conv_bn_relu(width, width) + [CBAM(width), nn.MaxPool2d(2)]
            ch = width
        self.image_branch = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                          nn.Linear(ch, BRANCH_DIM), nn.ReLU(inplace=True))
        self.hog_dim = hog_dim(input_size)
        if self.hog_dim == 0:
            raise ConfigError(f"fusion input {input_size}px is too small for HOG (needs >= 16 px)")
        self.landmark_branch = _mlp(2 * NUM_LANDMARKS, dropout)
        self.hog_branch = _mlp(self.hog_dim, dropout)
        self.classifier = nn.Sequential(nn.Linear(3 * BRANCH_DIM, 3 * BRANCH_DIM), nn.ReLU(inplace=True),
                                        nn.Dropout(dropout), nn.Linear(3 * BRANCH_DIM, num_classes))

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if len(args) == 1 and not kwargs and isinstance(args[0], Mapping):  # model({"image": ..., ...})
            missing = [n for n in self.input_names if n not in args[0]]
            if missing:
                raise ConfigError(f"fusion input dict lacks {missing}; it needs {list(self.input_names)}")
            return super().__call__(**{n: args[0][n] for n in self.input_names})
        return super().__call__(*args, **kwargs)

    def forward(self, image: torch.Tensor, landmarks: torch.Tensor, hog: torch.Tensor) -> torch.Tensor:
        landmarks = landmarks.reshape(landmarks.shape[0], -1)
        fused = torch.cat([self.image_branch(image), self.landmark_branch(landmarks), self.hog_branch(hog)], dim=1)
        return self.classifier(fused)


def fusion(num_classes: int = 7, **kwargs) -> FusionNetwork:
    return FusionNetwork(num_classes=num_classes, **kwargs)
