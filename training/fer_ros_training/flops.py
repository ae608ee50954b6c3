"""Computational cost of a network: FLOPs of one forward pass, counted by torch itself.

``torch.utils.flop_counter.FlopCounterMode`` intercepts the aten ops a forward pass dispatches and counts the
floating-point operations of the ones that dominate a CNN (convolutions, matrix products, batched matrix products,
scaled-dot-product attention) with 2 FLOPs per multiply-accumulate. Element-wise ops (BatchNorm at inference, ReLU,
pooling, additions) are not counted; they are a few percent of a CNN's work and the usual papers leave them out too.
So ``flops = 2 * MACs``, and numbers compare directly with published "GFLOPs" figures that count 2 per MAC (halve
them to compare with figures that count MACs).

Counting runs the network for real on the given example input (batch 1 by default), so data-dependent paths (FERAtt's
decoder sizes, FAN's window) are measured, not guessed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# Depth of the per-module breakdown kept (0 = the whole model, 1 = its direct children, ...).
BREAKDOWN_DEPTH = 1


@dataclass
class FlopCount:
    """FLOPs of one forward pass at ``batch`` inputs, in total and per top-level module (name -> FLOPs)."""

    total: int
    batch: int
    per_module: dict[str, int] = field(default_factory=dict)

    @property
    def per_sample(self) -> float:
        """FLOPs per face (per clip for FAN)."""
        return self.total / max(self.batch, 1)

    @property
    def macs(self) -> float:
        """Multiply-accumulates per sample (FLOPs / 2)."""
        return self.per_sample / 2

    def gflops(self) -> float:
        return self.per_sample / 1e9


def _call(model: nn.Module, example: Any) -> Any:
    if isinstance(example, dict):
        return model(**example)
    if isinstance(example, (tuple, list)):
        return model(*example)
    return model(example)


def _batch_of(example: Any) -> int:
    if isinstance(example, torch.Tensor):
        return int(example.shape[0])
    if isinstance(example, dict):
        return _batch_of(next(iter(example.values())))
    if isinstance(example, (tuple, list)) and example:
        return _batch_of(example[0])
    return 1


def count_flops(model: nn.Module, example: Any, depth: int = BREAKDOWN_DEPTH) -> FlopCount:
    """FLOPs of ``model`` (in eval mode, no gradients) on ``example``: a tensor, a tuple of positional inputs or a
    dict of keyword inputs, as ``fer_ros_training.networks.example_input`` makes them.

    The model's training flag is restored afterwards.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(depth=depth + 1, display=False)
    try:
        with counter, torch.no_grad():
            _call(model, example)
    finally:
        model.train(was_training)
    root = type(model).__name__
    per_module: dict[str, int] = {}
    for name, ops in counter.get_flop_counts().items():
        parts = name.split(".")
        if parts[0] == root and len(parts) == depth + 1:
            per_module[".".join(parts[1:])] = int(sum(ops.values()))
    return FlopCount(total=int(counter.get_total_flops()), batch=_batch_of(example), per_module=per_module)
