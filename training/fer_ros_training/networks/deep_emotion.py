"""Deep-Emotion (Minaee, Minaei and Abdolrashidi 2021, "Deep-Emotion: Facial Expression Recognition Using Attentional
Convolutional Network"): a spatial transformer re-samples the 48x48 gray face where the expression is, then a small
CNN classifies it.

Layout (the paper's figure): localisation net conv 7x7 (8) - max-pool - ReLU - conv 5x5 (10) - max-pool - ReLU - FC 32 -
FC 6 (affine theta, initialised to the identity); feature net conv 3x3 (10) x2 - max-pool - conv 3x3 (10) x2 -
BatchNorm - max-pool - dropout - FC 50 - FC classes. The paper's loss adds an L2 penalty on the last FC layer's
weights: :meth:`DeepEmotion.l2_penalty` returns ``l2_weight * ||W||^2`` and the trainer adds it to cross-entropy
(through ``fer_ros_training.networks.regularization_loss``).

Parameters (7 classes, 48x48): 66.9 k. The FC sizes follow the input side, so other sides work (>= 40 px).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fer_ros.errors import ConfigError

# Weight of the L2 penalty on the last FC weights (the paper adds it to the loss; 1e-3 keeps it a regulariser).
DEEP_EMOTION_L2 = 1e-3
# Input side the paper uses (FER2013 faces).
DEEP_EMOTION_SIDE = 48
# Dropout before the FC layers.
DEEP_EMOTION_DROPOUT = 0.5


def _conv_out(side: int, kernel: int) -> int:
    return side - kernel + 1


class DeepEmotion(nn.Module):
    """Spatial transformer + 4-conv CNN; ``forward`` returns logits, ``l2_penalty()`` the recipe's extra loss."""

    def __init__(self, num_classes: int = 7, in_channels: int = 1, input_size: int = DEEP_EMOTION_SIDE,
                 l2_weight: float = DEEP_EMOTION_L2, dropout: float = DEEP_EMOTION_DROPOUT) -> None:
        super().__init__()
        loc_side = _conv_out(_conv_out(input_size, 7) // 2, 5) // 2
        feat_side = (_conv_out(_conv_out(_conv_out(_conv_out(input_size, 3), 3) // 2, 3), 3)) // 2
        if loc_side < 1 or feat_side < 1:
            raise ConfigError(f"Deep-Emotion needs inputs of at least 40x40 pixels, got {input_size}")
        self.l2_weight = l2_weight
        self.localization = nn.Sequential(
            nn.Conv2d(in_channels, 8, kernel_size=7), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            nn.Conv2d(8, 10, kernel_size=5), nn.MaxPool2d(2), nn.ReLU(inplace=True))
        self.theta = nn.Sequential(nn.Flatten(), nn.Linear(10 * loc_side * loc_side, 32), nn.ReLU(inplace=True),
                                   nn.Linear(32, 6))
        nn.init.zeros_(self.theta[-1].weight)  # start as the identity transform
        with torch.no_grad():
            self.theta[-1].bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 10, 3), nn.ReLU(inplace=True), nn.Conv2d(10, 10, 3), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(10, 10, 3), nn.ReLU(inplace=True), nn.Conv2d(10, 10, 3), nn.BatchNorm2d(10),
            nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.dropout = nn.Dropout(dropout)
        # Sampling grid of the identity map in normalised coordinates (pixel centres, align_corners=False), (H*W, 3):
        # built here rather than by F.affine_grid, which ONNX gains only at opset 20.
        ticks = (torch.arange(input_size, dtype=torch.float32) * 2 + 1) / input_size - 1
        gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
        base = torch.stack([gx.reshape(-1), gy.reshape(-1), torch.ones(input_size * input_size)], dim=1)
        self.register_buffer("base_grid", base, persistent=False)
        self.input_size = input_size
        self.fc1 = nn.Linear(10 * feat_side * feat_side, 50)
        self.fc2 = nn.Linear(50, num_classes)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial transformer: the input re-sampled by the predicted affine map."""
        theta = self.theta(self.localization(x)).view(-1, 2, 3)
        grid = torch.matmul(self.base_grid, theta.transpose(1, 2))  # (N, H*W, 2): (x, y) to sample per pixel
        grid = grid.view(-1, self.input_size, self.input_size, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.features(self.transform(x))
        y = F.relu(self.fc1(self.dropout(torch.flatten(y, 1))))
        return self.fc2(y)

    def l2_penalty(self) -> torch.Tensor:
        """``l2_weight * sum(W_fc2 ** 2)``: add to the classification loss every step, as the paper does."""
        return self.l2_weight * self.fc2.weight.pow(2).sum()


def deep_emotion(num_classes: int = 7, **kwargs) -> DeepEmotion:
    return DeepEmotion(num_classes=num_classes, **kwargs)
