"""Unweighted probability ensembles as one exportable network (the RMN paper's 7-model FER2013 ensemble: 76.82%).

Members are trained networks that eat the same input (same card input spec and labels); the ensemble averages their
softmax outputs, so one ONNX graph (one TensorRT engine) serves them all in a single call per frame.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from fer_ros.errors import ConfigError
from fer_ros_training.export.onnx_export import outputs_probabilities


class ProbabilityEnsemble(nn.Module):
    """Mean of the members' class probabilities; outputs probabilities (``output_kind``), never logits."""

    output_kind = "probabilities"

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ConfigError(f"an ensemble needs at least two members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self._already_probabilities = [outputs_probabilities(m) for m in members]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = [m(x) if done else torch.softmax(m(x), dim=-1)
                 for m, done in zip(self.members, self._already_probabilities)]
        return torch.stack(probs, dim=0).mean(dim=0)
