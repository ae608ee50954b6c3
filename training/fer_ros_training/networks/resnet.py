"""ResNet-18/34 (He et al. 2016) with torchvision's state-dict layout, without needing torchvision.

The module and parameter names (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc``...) equal
torchvision's, so ImageNet weights published by torchvision load with ``load_state_dict`` as they are, and so does the
backbone part of the Residual Masking Network reference checkpoint. Widths and block counts are arguments, so the
same class also gives the tiny backbones the CPU tests train.

Parameter counts (1000 ImageNet classes): ResNet-18 11.69 M, ResNet-34 21.80 M; with a 7-class head 11.18 M and
21.29 M.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from fer_ros.errors import ConfigError, ModelLoadError
from fer_ros_training.networks.backbone import Backbone

# Block counts per stage of the two depths the seeds use (He et al. 2016, table 1).
RESNET_LAYERS: dict[str, tuple[int, int, int, int]] = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
# Channel widths of the four stages in the published networks; tiny configs pass their own.
RESNET_WIDTHS: tuple[int, int, int, int] = (64, 128, 256, 512)
# torchvision's ImageNet-1k weights (IMAGENET1K_V1), fetched only when the user asks for pretrained weights.
IMAGENET_URLS: dict[str, str] = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
}


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias: the projection of a residual shortcut."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN layers and a shortcut (a 1x1 conv+BN projection when shape changes); ReLU after the sum."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + shortcut)


def init_conv_bn(module: nn.Module) -> None:
    """He-normal (fan_out) convolutions, BatchNorm scale 1 and shift 0: the initialisation ResNets train from."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ResNet(Backbone):
    """Stem (7x7/2 conv, 3x3/2 max-pool), four stages of basic blocks, global average pool, linear classifier.

    ``forward_features`` returns the pooled ``num_features``-d vector (FAN's frame embedding, the transfer head's
    input); RMN calls ``stem`` and the named stages itself to put a masking block after each.
    """

    def __init__(self, layers: Sequence[int] = RESNET_LAYERS["resnet18"], num_classes: int = 7,
                 in_channels: int = 3, widths: Sequence[int] = RESNET_WIDTHS) -> None:
        super().__init__()
        if len(layers) != 4 or len(widths) != 4 or min(layers) < 1 or min(widths) < 1:
            raise ConfigError(f"ResNet needs 4 stages with >= 1 block and width each, got layers={list(layers)} "
                              f"widths={list(widths)}")
        self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_ch = widths[0]
        for i, (blocks, width) in enumerate(zip(layers, widths)):
            stride = 1 if i == 0 else 2
            stage = [BasicBlock(in_ch, width, stride)] + [BasicBlock(width, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            in_ch = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = in_ch
        self.fc: nn.Module = nn.Linear(in_ch, num_classes)
        init_conv_bn(self)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> 1/4 resolution feature map (the input of ``layer1``)."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> pooled features (N, num_features)."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)



def resnet(name: str = "resnet18", num_classes: int = 7, in_channels: int = 3,
           widths: Sequence[int] = RESNET_WIDTHS, layers: Sequence[int] | None = None) -> ResNet:
    """ResNet-18 or ResNet-34 by name (``layers`` overrides the block counts for tiny configs)."""
    if layers is None:
        if name not in RESNET_LAYERS:
            raise ConfigError(f"unknown ResNet '{name}'; choose one of {', '.join(RESNET_LAYERS)}")
        layers = RESNET_LAYERS[name]
    return ResNet(layers, num_classes=num_classes, in_channels=in_channels, widths=widths)


def load_pretrained(model: nn.Module, source: str | Path, url: str | None, drop_prefixes: Sequence[str] = (),
                    key_map=None) -> list[str]:
    """Load ImageNet (or user-supplied) weights into ``model``, skipping the classifier and adapting conv1.

    ``source`` is ``"imagenet"`` (download ``url`` through ``torch.hub.load_state_dict_from_url`` into the torch
    hub cache: needs network once) or the path of a state-dict file. Keys starting with one of ``drop_prefixes``
    (the 1000-class head) are skipped; a first convolution with another input channel count (gray input) receives
    the RGB kernel summed over colours, which is what a gray image replicated to three channels would see.
    Returns the model keys that kept their initial values.
    """
    if str(source) == "imagenet":
        if url is None:
            raise ConfigError("no ImageNet weights are published for this network; pass a state-dict file instead")
        try:
            state = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True)
        except Exception as exc:  # no network, proxy, disk full: say what to do instead
            raise ModelLoadError(f"could not download ImageNet weights from {url} ({exc}); download the file on a "
                                 f"machine with network access and pass its path as pretrained=<file>") from exc
    else:
        path = Path(source)
        if not path.is_file():
            raise ModelLoadError(f"pretrained weights file {path} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    if key_map is not None:
        state = key_map(state)
    own = model.state_dict()
    kept = {}
    for key, value in state.items():
        if any(key.startswith(p) for p in drop_prefixes) or key not in own:
            continue
        target = own[key]
        if value.shape != target.shape and value.dim() == 4 and value.shape[2:] == target.shape[2:] \
                and target.shape[1] == 1 and value.shape[0] == target.shape[0]:
            value = value.sum(dim=1, keepdim=True)  # RGB kernel -> gray kernel
        if value.shape != target.shape:
            raise ModelLoadError(f"pretrained weight '{key}' has shape {tuple(value.shape)}, the network expects "
                                 f"{tuple(target.shape)}: was it made for another architecture or width?")
        kept[key] = value
    if not kept:
        raise ModelLoadError(f"no key of {source} matches the network: is it a state dict of this architecture?")
    model.load_state_dict(kept, strict=False)
    return sorted(set(own) - set(kept))
