"""Residual Masking Network (Pham, Vu and Tran, "Facial Expression Recognition Using Residual Masking Network", 2020).

A ResNet-34 whose four stages are each followed by a masking block: a small U-Net built from residual units that maps
the stage output F to a mask M(F) of the same shape (a softmax over channels), and the stage passes on
F + F * M(F). The U-Net's depth follows the feature size: 4 levels at 56x56, 3 at 28x28, 2 at 14x14, 1 at 7x7 for a
224x224 input. The head is dropout 0.4 + a linear layer over the 512-d pooled feature.

Same network as ``resmasking_dropout1`` in the reference code (the ``rmn`` wheel, MIT, the variant its released
checkpoint uses): ``test/test_rmn_equivalence.py`` loads the reference's state dict through
:func:`rmn_state_dict_to_ours` and compares logits. The backbone keys equal torchvision's (``conv1``, ``layer1.0...``),
so ImageNet ResNet-34 weights load into it directly.

Parameters: 137,796,423 (137.8 M) at full size with 7 classes; the paper reports 142.9 M, the reference code builds
the same 137.8 M as ours. ``rmn_tiny`` (widths 8-64, one block per stage): 1.9 M; one training step on 32 faces of
64x64 takes ~65 ms on one core. Any input whose side is a multiple of 32 works (the deepest mask pools three times
below 1/4 resolution).
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import torch
from torch import nn

from fer_ros.errors import ConfigError, ModelLoadError
from fer_ros_training.networks.resnet import RESNET_LAYERS, RESNET_WIDTHS, BasicBlock, ResNet, init_conv_bn

# U-Net depth of the masking block after each stage; 4 levels for the 56x56 stage, one fewer per halving.
RMN_MASK_DEPTHS: tuple[int, int, int, int] = (4, 3, 2, 1)
# Dropout before the classifier of the released variant (resmasking_dropout1).
RMN_DROPOUT = 0.4
# Input side must be a multiple of this: stride 4 before layer1, times 2**(4-1) poolings in its 4-level mask.
RMN_SIDE_MULTIPLE = 32
# Tiny configuration for CPU tests: same topology, narrower and one residual block per stage.
RMN_TINY = {"widths": (8, 16, 32, 64), "layers": (1, 1, 1, 1)}


class UpBlock(nn.Sequential):
    """2x up-sampling of the U-Net decoder: transposed conv (kernel 2, stride 2) + BN + ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.ConvTranspose2d(in_ch, out_ch, kernel_size=2, stride=2), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))


class MaskingBlock(nn.Module):
    """U-Net of residual units on a C-channel map: returns a mask of the same shape, softmax over channels.

    Encoder level i (0-based) maps C*2**i -> C*2**(i+1) channels, with a 2x2 max-pool before every level but the
    first; the decoder goes back up, concatenating the encoder output of the same resolution (skip connection), and a
    last residual unit maps 2C -> C. ``depth`` = number of encoder levels (1..4).
    """

    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        if not 1 <= depth <= 4:
            raise ConfigError(f"masking block depth must be 1..4, got {depth}")
        self.depth = depth
        c = channels
        self.encoder = nn.ModuleList([BasicBlock(c * 2 ** i, c * 2 ** (i + 1)) for i in range(depth)])
        self.pool = nn.MaxPool2d(kernel_size=2)
        levels = range(depth - 1, 0, -1)  # decoder levels, deepest first
        self.up = nn.ModuleList([UpBlock(c * 2 ** (i + 1), c * 2 ** i) for i in levels])
        self.decoder = nn.ModuleList([BasicBlock(c * 2 ** (i + 1), c * 2 ** i) for i in levels])
        self.out = BasicBlock(2 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, unit in enumerate(self.encoder):
            x = unit(x if i == 0 else self.pool(x))
            skips.append(x)
        skips.pop()  # the bottom level feeds the decoder directly
        for up, unit in zip(self.up, self.decoder):
            x = unit(torch.cat([up(x), skips.pop()], dim=1))
        return torch.softmax(self.out(x), dim=1)


class ResidualMaskingNetwork(ResNet):
    """ResNet stages, each followed by ``F + F * mask(F)``; pooled feature -> dropout -> linear -> logits."""

    def __init__(self, num_classes: int = 7, in_channels: int = 3, widths: Sequence[int] = RESNET_WIDTHS,
                 layers: Sequence[int] = RESNET_LAYERS["resnet34"],
                 mask_depths: Sequence[int] = RMN_MASK_DEPTHS, dropout: float = RMN_DROPOUT) -> None:
        super().__init__(layers, num_classes=num_classes, in_channels=in_channels, widths=widths)
        if len(mask_depths) != 4:
            raise ConfigError(f"RMN needs one mask depth per stage (4), got {list(mask_depths)}")
        self.masks = nn.ModuleList([MaskingBlock(w, d) for w, d in zip(widths, mask_depths)])
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))
        init_conv_bn(self.masks)
        for m in self.masks.modules():  # each masking unit starts as its shortcut (zero-init of the last BN scale)
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)
        self._side_multiple = 2 * 2 * 2 ** (max(mask_depths) - 1)

    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return
        h, w = x.shape[-2:]
        if h % self._side_multiple or w % self._side_multiple:
            raise ConfigError(f"RMN input {h}x{w}: both sides must be multiples of {self._side_multiple} (the "
                              f"masking U-Nets pool the 1/4-resolution map {max(self.mask_depths()) - 1} times); "
                              f"use 224x224 as in the paper, or 64x64/96x96 for small configs")

    def mask_depths(self) -> list[int]:
        return [m.depth for m in self.masks]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = self.stem(x)
        for stage, mask in zip((self.layer1, self.layer2, self.layer3, self.layer4), self.masks):
            x = stage(x)
            x = x + x * mask(x)
        return torch.flatten(self.avgpool(x), 1)

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Sequential(nn.Dropout(self.fc[0].p), nn.Linear(self.num_features, num_classes))


def rmn(num_classes: int = 7, in_channels: int = 3, **kwargs) -> ResidualMaskingNetwork:
    """The paper's RMN (ResNet-34 stages, mask depths 4/3/2/1, 224x224)."""
    return ResidualMaskingNetwork(num_classes=num_classes, in_channels=in_channels, **kwargs)


def rmn_tiny(num_classes: int = 7, in_channels: int = 3, **kwargs) -> ResidualMaskingNetwork:
    """Same topology, widths 8/16/32/64 and one block per stage: for CPU training tests at 64x64."""
    return ResidualMaskingNetwork(num_classes=num_classes, in_channels=in_channels, **{**RMN_TINY, **kwargs})


# --- reference checkpoint import --------------------------------------------------------------------------------
# Key map from the reference code (rmn.models.resmasking / masking) to ours. The backbone and head keys are the same
# (torchvision layout; ``fc.1`` is the linear layer after the dropout). A reference masking block of depth d names its
# residual units conv1..conv{2d} and its up-sampling blocks up_pool{d+1}..up_pool{2d-1}; ours:
#   mask{k}.conv{j}        j = 1..d          -> masks.{k-1}.encoder.{j-1}
#   mask{k}.up_pool{d+j}   j = 1..d-1        -> masks.{k-1}.up.{j-1}
#   mask{k}.conv{d+j}      j = 1..d-1        -> masks.{k-1}.decoder.{j-1}
#   mask{k}.conv{2d}                         -> masks.{k-1}.out
#   mask{k}.downsample{j}.*                  -> dropped: the reference registers each unit's projection shortcut a
#                                               second time under this name (the same tensors as conv*.downsample).
_MASK_KEY = re.compile(r"^mask([1-4])\.(conv|up_pool|downsample)(\d+)\.(.*)$")


def rmn_state_dict_to_ours(state_dict: Mapping[str, torch.Tensor],
                           mask_depths: Sequence[int] = RMN_MASK_DEPTHS) -> dict[str, torch.Tensor]:
    """Rename a reference RMN state dict (``resmasking_dropout1``) to :class:`ResidualMaskingNetwork` keys.

    Accepts the bare state dict or the reference trainer's checkpoint (``{"net": state_dict, ...}``) and strips a
    ``module.`` prefix left by DataParallel. Unknown keys raise ModelLoadError naming them, so a checkpoint of another
    variant is refused rather than half loaded.
    """
    if "net" in state_dict and isinstance(state_dict["net"], Mapping):
        state_dict = state_dict["net"]
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        key = key[len("module."):] if key.startswith("module.") else key
        match = _MASK_KEY.match(key)
        if match is None:
            out[key] = value
            continue
        k, kind, j, rest = int(match[1]), match[2], int(match[3]), match[4]
        d = mask_depths[k - 1]
        prefix = f"masks.{k - 1}"
        if kind == "downsample":
            continue
        if kind == "up_pool" and d < j < 2 * d:
            out[f"{prefix}.up.{j - d - 1}.{rest}"] = value
        elif kind == "conv" and 1 <= j <= d:
            out[f"{prefix}.encoder.{j - 1}.{rest}"] = value
        elif kind == "conv" and d < j < 2 * d:
            out[f"{prefix}.decoder.{j - d - 1}.{rest}"] = value
        elif kind == "conv" and j == 2 * d:
            out[f"{prefix}.out.{rest}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise ModelLoadError(f"RMN checkpoint has keys with no place in our network: {unknown[:5]}; is it the "
                             f"resmasking_dropout1 variant?")
    return out
