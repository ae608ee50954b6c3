"""Ensembles by unweighted averaging of class probabilities (the RMN paper's 7-model ensemble reached 76.82%).

:class:`ProbabilityEnsemble` wraps trained networks that take the same input and returns the mean of their softmax
outputs, so it exports to ONNX and serves like any single model (its ``output_kind`` is ``"probabilities"``: the
export does not add another softmax). Members fed with different crops or sizes (an RMN at 224x224 RGB with a
mini-Xception at 64x64 gray) are averaged after each ran on its own input: :func:`average_probabilities`.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from fer_ros.errors import ConfigError


class ProbabilityEnsemble(nn.Module):
    """Mean of the members' softmax outputs; members return logits (or probabilities if they say so)."""

    output_kind = "probabilities"
    probabilities = True

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 1:
            raise ConfigError("an ensemble needs at least one trained model")
        self.members = nn.ModuleList(members)

    def forward(self, *inputs: Any, **named: Any) -> torch.Tensor:
        probs = []
        for member in self.members:
            out = member(*inputs, **named)
            already = getattr(member, "probabilities", False) is True
            probs.append(out if already else torch.softmax(out, dim=-1))
        widths = {int(p.shape[-1]) for p in probs}
        if len(widths) != 1:
            raise ConfigError(f"ensemble members disagree on the number of classes: {sorted(widths)}")
        return torch.stack(probs, dim=0).mean(dim=0)


def average_probabilities(per_model: Sequence[np.ndarray]) -> np.ndarray:
    """Unweighted mean of (N, L) probability arrays from models run separately (each on its own preprocessing)."""
    arrays = [np.asarray(p, dtype=np.float64) for p in per_model]
    if not arrays:
        raise ConfigError("no model outputs to average")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ConfigError(f"every model must give (N, L) probabilities for the same faces, got {sorted(shapes)}")
    return np.mean(arrays, axis=0).astype(np.float32)
