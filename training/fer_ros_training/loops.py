"""One pass over a data loader, for training and for prediction; shared by the trainer, evaluation and sweeps.

Networks take one of three input forms (see ``fer_ros_training.networks``): a tensor (image networks), a
``(clips, mask)`` pair (FAN) or a dict of named tensors (fusion). ``forward`` dispatches on the form so the loops do
not care which network they drive.

The training loss is cross-entropy plus the network's regulariser, unless the network brings its own: a network
with ``training_loss(batch, parts=None) -> (loss, logits)`` (FERAtt: ``lambda * L_att + CE`` on the gray-background
target of ``augment_background``) is trained with that, and the named terms it puts into ``parts`` are averaged
over the epoch and logged beside the loss (``train_attention_loss``...). The landmark head of the baselines keeps
the cross-entropy path (its weight > 0 takes precedence).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

# Read by ``commands/compare.py`` to label the loss column: the trainer calls a network's own ``training_loss``.
NETWORK_LOSS_HOOK = True


def to_device(x: Any, device: torch.device) -> Any:
    """Move a tensor, or the tensors inside tuples, lists and dicts, to ``device``."""
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(to_device(v, device) for v in x)
    return x


def forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    """Logits of ``model`` for one collated input (tensor, (clips, mask) pair, or dict of named tensors)."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel/DataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") and isinstance(model, (nn.parallel.DistributedDataParallel,
                                                                          nn.DataParallel)) else model


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    count: int
    terms: dict[str, float] = field(default_factory=dict)  # epoch means of a network loss's named terms


@dataclass
class LossTerms:
    """How the training loss is made: cross-entropy, the network's own regulariser, the optional landmark head."""

    label_smoothing: float = 0.0
    landmark_weight: float = 0.0


def uses_network_loss(net: nn.Module, terms: LossTerms) -> bool:
    """Whether ``net`` is trained with its own ``training_loss`` (not when the landmark head is being trained)."""
    return NETWORK_LOSS_HOOK and hasattr(net, "training_loss") and terms.landmark_weight <= 0


def network_loss(net: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """(loss, logits, named terms) of a network's own ``training_loss``."""
    parts: dict[str, torch.Tensor] = {}
    loss, logits = net.training_loss(batch, parts)
    return loss, logits, parts


class NetworkLoss(nn.Module):
    """A network whose forward is its own training loss: what DistributedDataParallel wraps for such networks, so
    the gradient synchronisation sees the forward that computes the loss (a call that bypassed the wrapper would
    leave every rank with its own gradients)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        return network_loss(self.network, batch)


def _loss(model: nn.Module, batch: dict[str, Any], terms: LossTerms
          ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    from fer_ros_training.networks import regularization_loss

    net = unwrap(model)
    inputs, labels = batch["input"], batch["label"]
    parts: dict[str, torch.Tensor] = {}
    if isinstance(net, NetworkLoss):  # DDP around a network's own loss (see trainer.train)
        loss, logits, parts = model(batch)
        net = net.network
    elif uses_network_loss(net, terms):
        loss, logits, parts = network_loss(net, batch)
    elif terms.landmark_weight > 0:
        # called on the bare network: under DDP the trainer refuses this term (the wrapper's gradient sync needs
        # its own forward), see trainer.check_distributed_support
        logits, points = net.forward_with_landmarks(inputs)
        target = batch["landmarks"].reshape(len(labels), -1)
        points = points.reshape(len(labels), -1)
        if points.shape != target.shape:
            raise ValueError(f"the landmark head predicts {points.shape[1] // 2} points but faces carry "
                             f"{target.shape[1] // 2}: build the network with landmark_points=5")
        valid = batch["has_landmarks"].to(points.dtype)[:, None]
        lm_loss = ((points - target) ** 2 * valid).sum() / valid.sum().clamp(min=1) / target.shape[1]
        loss = F.cross_entropy(logits, labels, label_smoothing=terms.label_smoothing) + terms.landmark_weight * lm_loss
    else:
        logits = forward(model, inputs)
        loss = F.cross_entropy(logits, labels, label_smoothing=terms.label_smoothing)
    loss = loss + regularization_loss(net).to(loss.device)
    return loss, logits, parts


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, device: torch.device,
                    terms: LossTerms, grad_clip: float = 0.0, desc: str = "train", progress: bool = True
                    ) -> EpochStats:
    model.train()
    total_loss, correct, count = 0.0, 0, 0
    term_sums: dict[str, float] = {}
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch")
    for batch in bar:
        batch = to_device(batch, device)
        optimizer.zero_grad(set_to_none=True)
        loss, logits, parts = _loss(model, batch, terms)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()}: lower optimizer.lr or check the data")
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        n = len(batch["label"])
        total_loss += float(loss.detach()) * n
        for name, value in parts.items():
            term_sums[name] = term_sums.get(name, 0.0) + float(value.detach()) * n
        correct += int((logits.argmax(1) == batch["label"]).sum())
        count += n
        bar.set_postfix(loss=f"{total_loss / count:.3f}", acc=f"{correct / count:.3f}")
    c = max(count, 1)
    return EpochStats(total_loss / c, correct / c, count, {k: v / c for k, v in term_sums.items()})


@torch.no_grad()
def predict(model: nn.Module, loader, device: torch.device, desc: str = "eval", progress: bool = True,
            input_map: Callable[[Any], Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, L) float32, labels (N,) int64) over a loader; ``input_map`` may alter each collated input."""
    model.eval()
    logits, labels = [], []
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch"):
        inputs = batch["input"] if input_map is None else input_map(batch["input"])
        out = forward(model, to_device(inputs, device))
        logits.append(out.float().cpu().numpy())
        labels.append(np.asarray(batch["label"]))
    if not logits:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(logits), np.concatenate(labels).astype(np.int64)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    if len(labels) == 0:
        return float("nan")
    p = softmax(logits)
    return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())
