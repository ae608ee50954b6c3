"""The small protocol every transfer baseline follows, so one wrapper (``transfer.py``) handles them all.

A backbone maps images to a pooled feature vector (``forward_features``, ``num_features`` wide) and features to
logits (``forward_head``); ``head_modules`` are what the frozen-feature-extractor mode still trains;
``reset_classifier`` replaces the ImageNet head with one for the expression classes.
"""
from __future__ import annotations

import torch
from torch import nn


class Backbone(nn.Module):
    """Base of ResNet, VGG and DenseNet: the classifier is the attribute named ``head_name``."""

    head_name = "fc"  # attribute holding the final linear layer (torchvision's name, so state-dict keys match)
    num_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> features (N, num_features)."""
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.head_name)(features)

    def head_modules(self) -> list[nn.Module]:
        """Modules trained in the frozen-feature-extractor transfer mode."""
        return [getattr(self, self.head_name)]

    def reset_classifier(self, num_classes: int) -> None:
        setattr(self, self.head_name, nn.Linear(self.num_features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
