"""FERAtt-style attention network (Marrero Fernandez, Guerrero Pena, Ren and Cunha, "FERAtt: Facial Expression
Recognition with Attention Net", 2019), as the JAFFE study of the seeds builds it.

Four modules, following the paper's split into "image correction and attention" and "representation and
classification":

    A     = G_att(x)          attention module: U-Net-style encoder-decoder with a ResNet-18 encoder; one map per
                              image, (N, 1, H, W), a per-pixel sigmoid so every value lies in (0, 1)
    F     = G_ft(x)           feature module: a few 3x3 conv + BN + ReLU layers at full resolution, (N, K, H, W)
    x_att = G_rec(A * F)      reconstruction module: the attended features mapped back to an image (N, C, H, W),
                              trained to show the face alone (background removed)
    y     = G_cls(x_att)      classification module: a ResNet-18 (torchvision layout) on the reconstructed image

Joint loss ``lambda * L_att + L_cls`` with ``lambda = FERATT_LAMBDA`` = 10: L_att is the mean squared error between
``x_att`` and the clean face (the normalised input with every background pixel set to 0, i.e. the data set mean),
L_cls the cross-entropy of ``y``. The clean target and the face mask come from
``fer_ros_training.augment_background`` (faces pasted on random gray backgrounds, as the paper trains).

Export: ``forward(x)`` returns the logits only, so ``export_model`` writes a plain image classifier; the attention map
and the reconstruction are outputs of :meth:`FerattNetwork.forward_all`, used by training and for inspection. The
reconstruction module itself stays in the exported graph because the classifier reads its output (as in the paper);
what is optional at export is the reconstruction *output*. Ops: Conv, BatchNorm, Relu, Sigmoid, Resize (bilinear),
Concat, Mul: all in ONNX opset 17 and TensorRT.

Parameters (7 classes): ``feratt`` 25.6 M (attention 14.4 M, feature 19 k, reconstruction 10 k, classifier
11.2 M) at 224x224; ``feratt_tiny`` 0.21 M at 64x64. The paper's representation module also learns a Gaussian
embedding (its structured loss); that term is not part of the seeds' recipe (lambda * L_att + L_cls) and is left out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from fer_ros.errors import ConfigError
from fer_ros_training.networks.resnet import RESNET_LAYERS, RESNET_WIDTHS, ResNet, init_conv_bn

# Weight of the attention (reconstruction) loss against cross-entropy in the joint loss (the seeds' lambda).
FERATT_LAMBDA = 10.0
# Channels of the feature module's output map (what the attention map multiplies).
FERATT_FEATURES = 32
# Conv layers of the feature module.
FERATT_FEATURE_DEPTH = 3
# Tiny configuration for CPU tests: narrow one-block-per-stage ResNets in both the attention and the classifier.
FERATT_TINY = {"widths": (8, 16, 32, 64), "layers": (1, 1, 1, 1), "features": 8}
# Input side must be a multiple of this: the encoder halves the map five times and the decoder adds skips back.
FERATT_SIDE_MULTIPLE = 32
# Weight std of the attention head's last conv at initialisation: small, so the first maps sit near 0.5, not 0 or 1.
ATTENTION_INIT_STD = 0.01


def conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    """3x3 conv (padding 1, no bias) + BatchNorm + ReLU: the unit of the decoder, feature and reconstruction modules."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))


class DecoderStage(nn.Module):
    """Bilinear 2x up-sampling to the skip's size, concatenation with the skip, two conv units."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.block = nn.Sequential(conv_bn_relu(in_ch + skip_ch, out_ch), conv_bn_relu(out_ch, out_ch))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([x, skip], dim=1))


class AttentionModule(nn.Module):
    """Image (N, C, H, W) -> attention map (N, 1, H, W) in (0, 1): ResNet encoder, U-Net decoder with skips.

    Skips are taken after the stem's first convolution (1/2), after ``layer1`` (1/4), ``layer2`` (1/8) and
    ``layer3`` (1/16); ``layer4`` (1/32) is the bottleneck. A last up-sampling to the input size and a 1x1 conv give
    the map's logit, a sigmoid its value.
    """

    def __init__(self, in_channels: int = 3, widths: Sequence[int] = RESNET_WIDTHS,
                 layers: Sequence[int] = RESNET_LAYERS["resnet18"]) -> None:
        super().__init__()
        self.encoder = ResNet(layers, num_classes=2, in_channels=in_channels, widths=widths)
        self.encoder.fc = nn.Identity()  # the classifier of the encoder is unused; keep no dead parameters
        w0, w1, w2, w3 = widths
        self.up4 = DecoderStage(w3, w2, w2)
        self.up3 = DecoderStage(w2, w1, w1)
        self.up2 = DecoderStage(w1, w0, w0)
        self.up1 = DecoderStage(w0, w0, w0)
        self.head = nn.Sequential(conv_bn_relu(w0, w0), nn.Conv2d(w0, 1, kernel_size=1))
        init_conv_bn(self)
        # He init of a 1-output conv gives logits of tens: start every map near 0.5 so gradients flow everywhere
        nn.init.normal_(self.head[-1].weight, std=ATTENTION_INIT_STD)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        s1 = enc.relu(enc.bn1(enc.conv1(x)))  # 1/2
        s2 = enc.layer1(enc.maxpool(s1))  # 1/4
        s3 = enc.layer2(s2)  # 1/8
        s4 = enc.layer3(s3)  # 1/16
        y = enc.layer4(s4)  # 1/32
        y = self.up1(self.up2(self.up3(self.up4(y, s4), s3), s2), s1)
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(self.head(y))


class FeatureModule(nn.Sequential):
    """Image -> ``features``-channel map at full resolution (``depth`` conv units)."""

    def __init__(self, in_channels: int = 3, features: int = FERATT_FEATURES, depth: int = FERATT_FEATURE_DEPTH) -> None:
        if depth < 1 or features < 1:
            raise ConfigError(f"FERAtt feature module needs depth >= 1 and features >= 1, got {depth}, {features}")
        units = [conv_bn_relu(in_channels, features)] + [conv_bn_relu(features, features) for _ in range(depth - 1)]
        super().__init__(*units)


class ReconstructionModule(nn.Sequential):
    """Attended features -> image in the normalised input space (no output activation: targets can be negative)."""

    def __init__(self, features: int = FERATT_FEATURES, out_channels: int = 3) -> None:
        super().__init__(conv_bn_relu(features, features), nn.Conv2d(features, out_channels, 3, padding=1))


@dataclass
class FerattOutput:
    """Everything one forward pass computes."""

    logits: torch.Tensor  # (N, num_classes)
    attention: torch.Tensor  # (N, 1, H, W), each value in (0, 1)
    reconstruction: torch.Tensor  # (N, C, H, W), the attended face image in normalised input space


@dataclass
class FerattLoss:
    """The joint loss and its two terms (logged separately by the trainer)."""

    total: torch.Tensor
    attention: torch.Tensor  # L_att (MSE of the reconstruction against the clean face), before lambda
    classification: torch.Tensor  # L_cls (cross-entropy)


class FerattNetwork(nn.Module):
    """Attention, feature, reconstruction and classification modules; ``forward`` returns logits only."""

    def __init__(self, num_classes: int = 7, in_channels: int = 3, widths: Sequence[int] = RESNET_WIDTHS,
                 layers: Sequence[int] = RESNET_LAYERS["resnet18"], features: int = FERATT_FEATURES,
                 feature_depth: int = FERATT_FEATURE_DEPTH, attention_loss_weight: float = FERATT_LAMBDA) -> None:
        super().__init__()
        if attention_loss_weight < 0:
            raise ConfigError(f"FERAtt attention_loss_weight (lambda) must be >= 0, got {attention_loss_weight}")
        self.in_channels = in_channels
        self.attention_loss_weight = float(attention_loss_weight)
        self.attention = AttentionModule(in_channels, widths, layers)
        self.features = FeatureModule(in_channels, features, feature_depth)
        self.reconstruction = ReconstructionModule(features, in_channels)
        self.classifier = ResNet(layers, num_classes=num_classes, in_channels=in_channels, widths=widths)
        init_conv_bn(self.features)
        init_conv_bn(self.reconstruction)

    def _check(self, x: torch.Tensor) -> None:
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(f"FERAtt expects images (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if x.shape[-1] % FERATT_SIDE_MULTIPLE or x.shape[-2] % FERATT_SIDE_MULTIPLE:
            raise ConfigError(f"FERAtt input sides must be multiples of {FERATT_SIDE_MULTIPLE} (the encoder halves "
                              f"the map five times), got {tuple(x.shape[-2:])}; use 64, 96, 128 or 224")

    def forward_all(self, x: torch.Tensor) -> FerattOutput:
        """Logits, attention map and reconstruction of images (N, C, H, W)."""
        self._check(x)
        attention = self.attention(x)
        reconstruction = self.reconstruction(attention * self.features(x))
        return FerattOutput(self.classifier(reconstruction), attention, reconstruction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x).logits

    def loss(self, output: FerattOutput, labels: torch.Tensor, clean: torch.Tensor | None) -> FerattLoss:
        """``lambda * L_att + L_cls``; without a clean target (no face mask known) L_att is 0 and only L_cls trains."""
        return feratt_loss(output, labels, clean, self.attention_loss_weight)

    def training_loss(self, batch: dict, parts: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Trainer hook: (joint loss, logits) of a collated batch with ``input``, ``label`` and, from
        ``augment_background.BackgroundFaceDataset``, ``clean``. Without ``clean`` only L_cls is trained.
        ``parts``, when given, receives the two terms (``attention``: L_att before lambda, ``classification``)."""
        out = self.forward_all(batch["input"])
        loss = self.loss(out, batch["label"], batch.get("clean"))
        if parts is not None:
            parts.update(attention=loss.attention, classification=loss.classification)
        return loss.total, out.logits


def feratt_loss(output: FerattOutput, labels: torch.Tensor, clean: torch.Tensor | None,
                attention_loss_weight: float = FERATT_LAMBDA) -> FerattLoss:
    """Joint FERAtt loss: ``attention_loss_weight * MSE(reconstruction, clean) + cross_entropy(logits, labels)``.

    ``clean`` (N, C, H, W) is the normalised input with its background set to 0 (see ``augment_background``).
    """
    cls = F.cross_entropy(output.logits, labels)
    if clean is None:
        att = torch.zeros((), device=cls.device, dtype=cls.dtype)
    else:
        if clean.shape != output.reconstruction.shape:
            raise ConfigError(f"FERAtt clean target has shape {tuple(clean.shape)}, the reconstruction "
                              f"{tuple(output.reconstruction.shape)}")
        att = F.mse_loss(output.reconstruction, clean)
    return FerattLoss(attention_loss_weight * att + cls, att, cls)


def attention_distribution(attention: torch.Tensor) -> torch.Tensor:
    """Attention maps (N, 1, H, W) scaled to sum to 1 per image: where the network looks, as a distribution."""
    total = attention.flatten(1).sum(dim=1).clamp_min(torch.finfo(attention.dtype).tiny)
    return attention / total.view(-1, 1, 1, 1)


def attention_mass_inside(attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share (N,) of each image's attention that falls inside its face ``mask`` (N, 1, H, W) or (N, H, W), 0..1."""
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    return (attention_distribution(attention) * mask.to(attention.dtype)).flatten(1).sum(dim=1)


def feratt(num_classes: int = 7, in_channels: int = 3, widths: Sequence[int] = RESNET_WIDTHS,
           layers: Sequence[int] = RESNET_LAYERS["resnet18"], features: int = FERATT_FEATURES,
           feature_depth: int = FERATT_FEATURE_DEPTH, attention_loss_weight: float = FERATT_LAMBDA) -> FerattNetwork:
    """The JAFFE study's FERAtt: ResNet-18 encoder in the attention module, ResNet-18 classifier, 224x224 input."""
    return FerattNetwork(num_classes, in_channels, widths, layers, features, feature_depth, attention_loss_weight)


def feratt_tiny(num_classes: int = 7, **kwargs) -> FerattNetwork:
    """FERAtt with narrow one-block-per-stage ResNets and 8 feature channels: trains on CPU at 64x64."""
    return feratt(num_classes=num_classes, **{**FERATT_TINY, **kwargs})
