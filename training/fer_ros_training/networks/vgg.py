"""VGG-16/19 (Simonyan and Zisserman 2015) with BatchNorm, in torchvision's state-dict layout (no torchvision needed).

``features`` is the conv stack (conv 3x3 + BN + ReLU, max-pool between blocks), ``avgpool`` an adaptive pool to 7x7,
``classifier`` the FC 4096 - FC 4096 - FC classes MLP with dropout, indices as torchvision's, so its ImageNet
weights (``vgg16_bn``/``vgg19_bn``, or the plain ones with ``batch_norm=False``) load directly. For 48x48 faces the
7x7 pool replicates the 1x1 map, as torchvision's model does.

Parameters (7 classes): VGG-16-BN 134.3 M, VGG-19-BN 139.6 M (``hidden`` < 4096 shrinks the classifier).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from fer_ros.errors import ConfigError
from fer_ros_training.networks.backbone import Backbone

# Conv widths per layer, "M" = 2x2 max-pool (configurations D and E of the paper).
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}
# torchvision's ImageNet-1k weights, keyed by (name, batch_norm).
IMAGENET_URLS: dict[tuple[str, bool], str] = {
    ("vgg16", True): "https://download.pytorch.org/models/vgg16_bn-6c64b313.pth",
    ("vgg19", True): "https://download.pytorch.org/models/vgg19_bn-c79401a0.pth",
    ("vgg16", False): "https://download.pytorch.org/models/vgg16-397923af.pth",
    ("vgg19", False): "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}
# Width of the two hidden FC layers in the published networks.
VGG_HIDDEN = 4096
# Side of the pooled map fed to the classifier (torchvision's AdaptiveAvgPool2d((7, 7))).
VGG_POOL = 7


class VGG(Backbone):
    """VGG conv stack + 7x7 adaptive pool + 3-layer MLP classifier; ``forward_features`` stops before the last FC."""

    def __init__(self, config: Sequence[int | str], num_classes: int = 7, in_channels: int = 3,
                 batch_norm: bool = True, hidden: int = VGG_HIDDEN, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers.append(nn.Conv2d(ch, int(item), 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(int(item)))
            layers.append(nn.ReLU(inplace=True))
            ch = int(item)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(VGG_POOL)
        self.classifier = nn.Sequential(
            nn.Linear(ch * VGG_POOL * VGG_POOL, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        self.num_features = hidden
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> the 2nd FC layer's activations (N, hidden): what the landmark head and the last FC read."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier[:-1](x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier[-1](features)

    def head_modules(self) -> list[nn.Module]:
        """Frozen-feature mode trains the whole FC classifier: the conv stack is the feature extractor."""
        return [self.classifier]

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier[-1] = nn.Linear(self.num_features, num_classes)



def vgg(name: str = "vgg16", num_classes: int = 7, **kwargs) -> VGG:
    if name not in VGG_CONFIGS:
        raise ConfigError(f"unknown VGG '{name}'; choose one of {', '.join(VGG_CONFIGS)}")
    return VGG(VGG_CONFIGS[name], num_classes=num_classes, **kwargs)
