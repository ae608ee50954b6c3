"""Inception-ResNet v1 (Szegedy, Ioffe, Vanhoucke and Alemi, "Inception-v4, Inception-ResNet and the Impact of
Residual Connections on Learning", 2016), the CSC413 proposal's second model, for 224x224 faces and 7 classes.

Layout (paper, figures 14-15 and 10-13 for v1; channel counts at ``width=1``):

    stem        3x3/2 32 (valid), 3x3 32 (valid), 3x3 64 (same), 3x3/2 max-pool, 1x1 80, 3x3 192 (valid),
                3x3/2 256 (valid)                                           224 -> 25x25x256
    A x5        branches 1x1 32 | 1x1 32 -> 3x3 32 | 1x1 32 -> 3x3 32 -> 3x3 32, concat 96 -> 1x1 256 (linear),
                residual scaled by 0.17, then the activation
    Reduction-A 3x3/2 max-pool | 3x3/2 384 | 1x1 192 -> 3x3 192 -> 3x3/2 256     -> 12x12x896
    B x10       1x1 128 | 1x1 128 -> 1x7 128 -> 7x1 128, concat 256 -> 1x1 896, scale 0.10
    Reduction-B 3x3/2 max-pool | 1x1 256 -> 3x3/2 384 | 1x1 256 -> 3x3/2 256 | 1x1 256 -> 3x3 256 -> 3x3/2 256
                                                                                -> 5x5x1792
    C x5        1x1 192 | 1x1 192 -> 1x3 192 -> 3x1 192, concat 384 -> 1x1 1792, scale 0.20
    head        global average pool, dropout 0.2 (keep 0.8), linear -> classes

Every conv but the residual projections is conv + BatchNorm + activation; ``activation="prelu"`` puts a per-channel
PReLU (He et al. 2015) wherever the paper has ReLU, as the CSC413 proposal asks. ``width`` multiplies every channel
count (tiny configs for CPU tests), ``repeats`` sets the A/B/C block counts, and ``padded=True`` pads every conv and
pool "same" (feature maps halve exactly), which small inputs need: the valid layout needs a side of at least 75
pixels, the padded one any side >= 32.

Parameters (7 classes): 20.98 M at ``width=1`` (ReLU; PReLU adds 33 k slopes); ``inception_resnet_tiny`` (width
1/8, one block of each kind, padded, 64x64) 0.13 M.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from fer_ros.errors import ConfigError

# Residual scale of the A, B and C blocks (the paper scales residuals by 0.1-0.3 to keep training stable).
BLOCK_SCALES: tuple[float, float, float] = (0.17, 0.10, 0.20)
# Number of A, B and C blocks in the published v1 network.
INCEPTION_RESNET_REPEATS: tuple[int, int, int] = (5, 10, 5)
# Dropout before the classifier: the paper keeps 0.8 of the activations.
INCEPTION_RESNET_DROPOUT = 0.2
# Activations that may follow every conv unit.
ACTIVATIONS = ("relu", "prelu")
# Narrowest channel count any conv gets under a small width multiplier (keeps tiny nets trainable).
MIN_CHANNELS = 4
# Tiny configuration for CPU tests and the example study.
INCEPTION_RESNET_TINY = {"width": 0.125, "repeats": (1, 1, 1), "padded": True}


def make_activation(kind: str, channels: int) -> nn.Module:
    """ReLU, or PReLU with one learnt slope per channel (initial slope 0.25)."""
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "prelu":
        return nn.PReLU(channels)
    raise ConfigError(f"unknown activation '{kind}'; choose one of {ACTIVATIONS}")


class ConvUnit(nn.Sequential):
    """conv (no bias) + BatchNorm + activation; ``padding=None`` means "same" for odd kernels at stride 1."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] | None = None, activation: str = "relu") -> None:
        k = (kernel, kernel) if isinstance(kernel, int) else kernel
        if padding is None:
            padding = (k[0] // 2, k[1] // 2)
        super().__init__(nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=padding, bias=False),
                         nn.BatchNorm2d(out_ch, eps=1e-3), make_activation(activation, out_ch))


class _Widths:
    """Scales the paper's channel counts by the width multiplier."""

    def __init__(self, width: float) -> None:
        if width <= 0:
            raise ConfigError(f"Inception-ResNet width multiplier must be > 0, got {width}")
        self.width = width

    def __call__(self, channels: int) -> int:
        return max(MIN_CHANNELS, int(round(channels * self.width)))


class Stem(nn.Sequential):
    """Input -> 256 channels at about 1/9 of the side (25x25 for 224; exactly 1/8 when padded)."""

    def __init__(self, in_ch: int, w: _Widths, act: str, padded: bool) -> None:
        p = 1 if padded else 0
        super().__init__(
            ConvUnit(in_ch, w(32), 3, stride=2, padding=p, activation=act),
            ConvUnit(w(32), w(32), 3, padding=p, activation=act),
            ConvUnit(w(32), w(64), 3, padding=1, activation=act),
            nn.MaxPool2d(3, stride=2, padding=p),
            ConvUnit(w(64), w(80), 1, activation=act),
            ConvUnit(w(80), w(192), 3, padding=p, activation=act),
            ConvUnit(w(192), w(256), 3, stride=2, padding=p, activation=act),
        )


class ResidualInception(nn.Module):
    """x -> act(x + scale * project(concat(branches(x)))): the common form of the A, B and C blocks."""

    def __init__(self, channels: int, branches: Sequence[nn.Module], branch_out: int, scale: float, act: str) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.project = nn.Conv2d(branch_out, channels, kernel_size=1, bias=True)  # linear: no BN, no activation
        self.scale = scale
        self.activation = make_activation(act, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([b(x) for b in self.branches], dim=1)
        return self.activation(x + self.scale * self.project(mixed))


def block_a(c: int, w: _Widths, act: str) -> ResidualInception:
    b = w(32)
    return ResidualInception(c, [
        ConvUnit(c, b, 1, activation=act),
        nn.Sequential(ConvUnit(c, b, 1, activation=act), ConvUnit(b, b, 3, activation=act)),
        nn.Sequential(ConvUnit(c, b, 1, activation=act), ConvUnit(b, b, 3, activation=act),
                      ConvUnit(b, b, 3, activation=act)),
    ], 3 * b, BLOCK_SCALES[0], act)


def _factorised_block(c: int, b: int, kernel: int, scale: float, act: str) -> ResidualInception:
    """B and C blocks: a 1x1 branch and a 1x1 -> 1xk -> kx1 branch (the factorised kxk of Inception-v3)."""
    return ResidualInception(c, [
        ConvUnit(c, b, 1, activation=act),
        nn.Sequential(ConvUnit(c, b, 1, activation=act), ConvUnit(b, b, (1, kernel), activation=act),
                      ConvUnit(b, b, (kernel, 1), activation=act)),
    ], 2 * b, scale, act)


def block_b(c: int, w: _Widths, act: str) -> ResidualInception:
    return _factorised_block(c, w(128), 7, BLOCK_SCALES[1], act)


def block_c(c: int, w: _Widths, act: str) -> ResidualInception:
    return _factorised_block(c, w(192), 3, BLOCK_SCALES[2], act)


class Reduction(nn.Module):
    """Parallel stride-2 branches (one of them a max-pool), concatenated along channels."""

    def __init__(self, branches: Sequence[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


def reduction_a(c: int, w: _Widths, act: str, p: int) -> tuple[Reduction, int]:
    """k=192, l=192, m=256, n=384 (the paper's table 1 for Inception-ResNet-v1)."""
    k, l, m, n = w(192), w(192), w(256), w(384)
    red = Reduction([
        nn.MaxPool2d(3, stride=2, padding=p),
        ConvUnit(c, n, 3, stride=2, padding=p, activation=act),
        nn.Sequential(ConvUnit(c, k, 1, activation=act), ConvUnit(k, l, 3, activation=act),
                      ConvUnit(l, m, 3, stride=2, padding=p, activation=act)),
    ])
    return red, c + n + m


def reduction_b(c: int, w: _Widths, act: str, p: int) -> tuple[Reduction, int]:
    r, o1, o2 = w(256), w(384), w(256)
    red = Reduction([
        nn.MaxPool2d(3, stride=2, padding=p),
        nn.Sequential(ConvUnit(c, r, 1, activation=act), ConvUnit(r, o1, 3, stride=2, padding=p, activation=act)),
        nn.Sequential(ConvUnit(c, r, 1, activation=act), ConvUnit(r, o2, 3, stride=2, padding=p, activation=act)),
        nn.Sequential(ConvUnit(c, r, 1, activation=act), ConvUnit(r, o2, 3, activation=act),
                      ConvUnit(o2, o2, 3, stride=2, padding=p, activation=act)),
    ])
    return red, c + o1 + 2 * o2


class InceptionResNetV1(nn.Module):
    """Stem, A blocks, Reduction-A, B blocks, Reduction-B, C blocks, pooled linear head (logits)."""

    def __init__(self, num_classes: int = 7, in_channels: int = 3, width: float = 1.0,
                 repeats: Sequence[int] = INCEPTION_RESNET_REPEATS, activation: str = "relu",
                 dropout: float = INCEPTION_RESNET_DROPOUT, padded: bool = False) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation '{activation}'; choose one of {ACTIVATIONS}")
        if len(repeats) != 3 or min(repeats) < 0:
            raise ConfigError(f"repeats needs three block counts >= 0 (A, B, C), got {list(repeats)}")
        w, act, p = _Widths(width), activation, 1 if padded else 0
        self.in_channels = in_channels
        self.padded = padded
        self.stem = Stem(in_channels, w, act, padded)
        c = w(256)
        self.blocks_a = nn.Sequential(*[block_a(c, w, act) for _ in range(repeats[0])])
        self.reduction_a, c = reduction_a(c, w, act, p)
        self.blocks_b = nn.Sequential(*[block_b(c, w, act) for _ in range(repeats[1])])
        self.reduction_b, c = reduction_b(c, w, act, p)
        self.blocks_c = nn.Sequential(*[block_c(c, w, act) for _ in range(repeats[2])])
        self.num_features = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _check(self, x: torch.Tensor) -> None:
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(f"Inception-ResNet expects images (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        smallest = 32 if self.padded else 75
        if min(x.shape[-2:]) < smallest:
            raise ConfigError(f"Inception-ResNet {'padded' if self.padded else 'valid'} layout needs sides >= "
                              f"{smallest}, got {tuple(x.shape[-2:])}; use padded=True for small faces")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> pooled features (N, num_features)."""
        self._check(x)
        x = self.blocks_a(self.stem(x))
        x = self.blocks_b(self.reduction_a(x))
        x = self.blocks_c(self.reduction_b(x))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))


def inception_resnet(num_classes: int = 7, in_channels: int = 3, width: float = 1.0,
                     repeats: Sequence[int] = INCEPTION_RESNET_REPEATS, activation: str = "relu",
                     dropout: float = INCEPTION_RESNET_DROPOUT, padded: bool = False) -> InceptionResNetV1:
    """Inception-ResNet v1 for 224x224 faces; ``activation="prelu"`` for the CSC413 variant."""
    return InceptionResNetV1(num_classes, in_channels, width, repeats, activation, dropout, padded)


def inception_resnet_tiny(num_classes: int = 7, **kwargs) -> InceptionResNetV1:
    """1/8 width, one block of each kind, "same" padding: trains on CPU at 64x64."""
    return inception_resnet(num_classes=num_classes, **{**INCEPTION_RESNET_TINY, **kwargs})
