"""DenseNet-121 (Huang et al. 2017) in torchvision's state-dict layout, without needing torchvision.

``features`` = conv0/norm0/relu0/pool0, dense blocks of 6, 12, 24, 16 layers (BN-ReLU-conv1x1 to 4*growth,
BN-ReLU-conv3x3 to growth, outputs concatenated) with transitions (BN-ReLU-conv1x1 halving channels, 2x2 avg-pool)
between them, norm5; then ReLU, global average pool, ``classifier``. torchvision's ImageNet file uses the older
``norm.1``-style names inside dense layers: :func:`densenet_state_dict_to_ours` renames them.

Parameters (7 classes): 6.96 M. ``growth_rate``, ``block_config`` and ``num_init_features`` give small variants.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fer_ros_training.networks.backbone import Backbone

# DenseNet-121: dense layers per block, growth rate (channels each layer adds), bottleneck factor, stem width.
DENSENET121_BLOCKS = (6, 12, 24, 16)
DENSENET121_GROWTH = 32
DENSENET_BN_SIZE = 4
DENSENET121_STEM = 64
# torchvision's ImageNet-1k weights (IMAGENET1K_V1).
IMAGENET_URL = "https://download.pytorch.org/models/densenet121-a639ec97.pth"
# Old torchvision key form: "denselayer3.norm.1.weight" means "denselayer3.norm1.weight".
_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
                      r"((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$")


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (bottleneck) -> BN-ReLU-conv3x3: ``growth`` new channels from everything before it."""

    def __init__(self, in_ch: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_ch)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_ch, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleDict):
    """``n`` dense layers named denselayer1..n; returns the input and every layer's output, concatenated."""

    def __init__(self, n: int, in_ch: int, growth: int, bn_size: int) -> None:
        super().__init__({f"denselayer{i + 1}": DenseLayer(in_ch + i * growth, growth, bn_size) for i in range(n)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.values():
            feats.append(layer(torch.cat(feats, dim=1)))
        return torch.cat(feats, dim=1)


class Transition(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(in_ch))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(in_ch, out_ch, 1, bias=False))
        self.add_module("pool", nn.AvgPool2d(2, 2))


class DenseNet(Backbone):
    """DenseNet-BC; ``forward_features`` returns the pooled (N, num_features) vector."""

    head_name = "classifier"

    def __init__(self, num_classes: int = 7, in_channels: int = 3, growth_rate: int = DENSENET121_GROWTH,
                 block_config: Sequence[int] = DENSENET121_BLOCKS, num_init_features: int = DENSENET121_STEM,
                 bn_size: int = DENSENET_BN_SIZE) -> None:
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(in_channels, num_init_features, 7, 2, 3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(num_init_features))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool2d(3, 2, 1))
        ch = num_init_features
        for i, n in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(n, ch, growth_rate, bn_size))
            ch += n * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(ch, ch // 2))
                ch //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(ch))
        self.num_features = ch
        self.classifier = nn.Linear(ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features(x))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)



def densenet_state_dict_to_ours(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename torchvision's published DenseNet keys (``...denselayer1.norm.1.weight``) to ours (``norm1``)."""
    out = {}
    for key, value in state_dict.items():
        match = _OLD_KEY.match(key)
        out[match[1] + match[2] if match else key] = value
    return out


def densenet121(num_classes: int = 7, **kwargs) -> DenseNet:
    return DenseNet(num_classes=num_classes, **kwargs)
