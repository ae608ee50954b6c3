"""Frame Attention Network (Meng, Peng, Wang and Qiao 2019; the EMO2018 thesis's video model).

Every frame of a clip is embedded by a ResNet-18 (f_i, 512-d), then

    alpha_i = sigmoid(f_i . q0)                                    self-attention weight of frame i
    f_v     = sum_i alpha_i f_i / sum_i alpha_i                    attention-pooled clip feature
    beta_i  = sigmoid([f_i : f_v] . q1)                            relation-attention weight of frame i
    clip    = sum_i alpha_i beta_i [f_i : f_v] / sum_i alpha_i beta_i
    logits  = W dropout(clip) + b

The network is split so a video stream costs one backbone pass per frame: :class:`FanEmbedder` (frames -> (N, D)) runs
once per new frame, and :class:`FanAggregator` ((N, T, D) embeddings + (N, T) bool mask -> logits) runs over the
per-track ring buffer of the last T <= ``window`` embeddings. Masked frames contribute nothing (their embeddings are
zeroed before any arithmetic, so even NaN there is harmless); an all-masked clip gives the classifier bias. Both
halves export to ONNX (``dynamo=False``, opset 17) with dynamic batch and dynamic T: only MatMul, Sigmoid, Where,
ReduceSum, Div, Concat and Expand are used.

Parameters (7 classes): ``fan`` 11.19 M (embedder 11.18 M, aggregator 8.7 k); ``fan_tiny`` (ResNet widths 8-64, one
block per stage, 64-d embeddings) 79 k.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from fer_ros.errors import ConfigError
from fer_ros_training.networks.resnet import IMAGENET_URLS, RESNET_LAYERS, RESNET_WIDTHS, ResNet, load_pretrained

# Frames the aggregator accepts by default: the runtime ring buffer per track (about half a second at 30 Hz).
FAN_WINDOW = 16
# Dropout on the clip feature before the classifier.
FAN_DROPOUT = 0.4
# Floor of the attention-weight sums: keeps an all-masked clip finite (sigmoids are > 0 for any real frame).
ATTENTION_EPS = 1e-12
# Tiny embedder for CPU tests: narrow ResNet with one block per stage.
FAN_TINY = {"widths": (8, 16, 32, 64), "layers": (1, 1, 1, 1)}


class FanEmbedder(nn.Module):
    """Face crops (N, C, H, W) -> frame embeddings (N, D) with a ResNet trunk (D = its last width, 512 for R-18)."""

    def __init__(self, in_channels: int = 3, widths: Sequence[int] = RESNET_WIDTHS,
                 layers: Sequence[int] = RESNET_LAYERS["resnet18"], pretrained: str | Path | None = None) -> None:
        super().__init__()
        self.backbone = ResNet(layers, num_classes=2, in_channels=in_channels, widths=widths)
        if pretrained:
            url = IMAGENET_URLS["resnet18"] if tuple(layers) == RESNET_LAYERS["resnet18"] else None
            load_pretrained(self.backbone, pretrained, url, drop_prefixes=("fc.",))
        self.backbone.fc = nn.Identity()  # no unused parameters (DDP refuses them); embeddings are the pooled trunk
        self.embedding_dim = self.backbone.num_features

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(frames)


class FanAggregator(nn.Module):
    """Frame embeddings (N, T, D) + mask (N, T) -> logits (N, num_classes) by self- and relation-attention."""

    def __init__(self, embedding_dim: int = 512, num_classes: int = 7, window: int = FAN_WINDOW,
                 dropout: float = FAN_DROPOUT) -> None:
        super().__init__()
        if window < 1:
            raise ConfigError(f"FAN window must be >= 1 frame, got {window}")
        self.embedding_dim = embedding_dim
        self.window = window
        self.q0 = nn.Linear(embedding_dim, 1, bias=False)
        self.q1 = nn.Linear(2 * embedding_dim, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * embedding_dim, num_classes)

    def _check(self, embeddings: torch.Tensor) -> None:
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return
        if embeddings.dim() != 3 or embeddings.shape[-1] != self.embedding_dim:
            raise ConfigError(f"FAN aggregator expects (N, T, {self.embedding_dim}) embeddings, got "
                              f"{tuple(embeddings.shape)}")
        if not 1 <= embeddings.shape[1] <= self.window:
            raise ConfigError(f"FAN aggregator takes 1..{self.window} frames, got {embeddings.shape[1]}; "
                              f"build it with a larger window or pass fewer frames")

    def attend(self, embeddings: torch.Tensor, mask: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clip feature (N, 2D), alpha (N, T) and beta (N, T); masked frames have alpha = 0."""
        self._check(embeddings)
        if mask is None:
            mask = torch.ones(embeddings.shape[:2], dtype=torch.bool, device=embeddings.device)
        keep = mask.to(torch.bool).unsqueeze(-1)
        f = torch.where(keep, embeddings, torch.zeros_like(embeddings))
        alpha = torch.sigmoid(self.q0(f)) * keep.to(f.dtype)  # (N, T, 1)
        f_v = (alpha * f).sum(dim=1, keepdim=True) / alpha.sum(dim=1, keepdim=True).clamp_min(ATTENTION_EPS)
        pair = torch.cat([f, f_v.expand_as(f)], dim=-1)  # [f_i : f_v], (N, T, 2D)
        beta = torch.sigmoid(self.q1(pair))
        weight = alpha * beta
        clip = (weight * pair).sum(dim=1) / weight.sum(dim=1).clamp_min(ATTENTION_EPS)
        return clip, alpha.squeeze(-1), beta.squeeze(-1)

    def forward(self, embeddings: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        clip, _, _ = self.attend(embeddings, mask)
        return self.classifier(self.dropout(clip))


class FanNetwork(nn.Module):
    """Embedder + aggregator for training on clips: clips (N, T, C, H, W), mask (N, T) -> logits (N, L)."""

    def __init__(self, embedder: FanEmbedder, aggregator: FanAggregator) -> None:
        super().__init__()
        if embedder.embedding_dim != aggregator.embedding_dim:
            raise ConfigError(f"FAN embedder gives {embedder.embedding_dim}-d embeddings, the aggregator expects "
                              f"{aggregator.embedding_dim}-d")
        self.embedder = embedder
        self.aggregator = aggregator

    @property
    def window(self) -> int:
        return self.aggregator.window

    def embed_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, T, C, H, W) -> (N, T, D), one backbone pass over all N*T frames."""
        if clips.dim() != 5:
            raise ConfigError(f"FAN expects clips shaped (N, T, C, H, W), got {tuple(clips.shape)}")
        n, t = clips.shape[:2]
        return self.embedder(clips.flatten(0, 1)).view(n, t, -1)

    def forward(self, clips: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.aggregator(self.embed_clips(clips), mask)


def fan(num_classes: int = 7, window: int = FAN_WINDOW, dropout: float = FAN_DROPOUT, in_channels: int = 3,
        widths: Sequence[int] = RESNET_WIDTHS, layers: Sequence[int] = RESNET_LAYERS["resnet18"],
        pretrained: str | Path | None = None) -> FanNetwork:
    """The thesis's FAN: ResNet-18 embedder (512-d); ``pretrained`` = "imagenet" or a ResNet-18 state-dict file."""
    embedder = FanEmbedder(in_channels=in_channels, widths=widths, layers=layers, pretrained=pretrained)
    return FanNetwork(embedder, FanAggregator(embedder.embedding_dim, num_classes, window, dropout))


def fan_tiny(num_classes: int = 7, **kwargs) -> FanNetwork:
    """FAN with a narrow one-block-per-stage ResNet embedder (64-d): trains on CPU in a minute at 64x64."""
    return fan(num_classes=num_classes, **{**FAN_TINY, **kwargs})
