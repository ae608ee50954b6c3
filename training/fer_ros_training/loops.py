"""One pass over a data loader, for training and for prediction; shared by the trainer, evaluation and sweeps.

Networks take one of three input forms (see ``fer_ros_training.networks``): a tensor (image networks), a
``(clips, mask)`` pair (FAN) or a dict of named tensors (fusion). ``forward`` dispatches on the form so the loops do
not care which network they drive.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm


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


@dataclass
class LossTerms:
    """How the training loss is made: cross-entropy, the network's own regulariser, the optional landmark head."""

    label_smoothing: float = 0.0
    landmark_weight: float = 0.0


def _loss(model: nn.Module, batch: dict[str, Any], terms: LossTerms) -> tuple[torch.Tensor, torch.Tensor]:
    from fer_ros_training.networks import regularization_loss

    net = unwrap(model)
    inputs, labels = batch["input"], batch["label"]
    if terms.landmark_weight > 0:
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
    else:
        logits = forward(model, inputs)
        lm_loss = logits.new_zeros(())
    loss = F.cross_entropy(logits, labels, label_smoothing=terms.label_smoothing)
    loss = loss + regularization_loss(net).to(loss.device) + terms.landmark_weight * lm_loss
    return loss, logits


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, device: torch.device,
                    terms: LossTerms, grad_clip: float = 0.0, desc: str = "train", progress: bool = True
                    ) -> EpochStats:
    model.train()
    total_loss, correct, count = 0.0, 0, 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch")
    for batch in bar:
        batch = to_device(batch, device)
        optimizer.zero_grad(set_to_none=True)
        loss, logits = _loss(model, batch, terms)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()}: lower optimizer.lr or check the data")
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        n = len(batch["label"])
        total_loss += float(loss.detach()) * n
        correct += int((logits.argmax(1) == batch["label"]).sum())
        count += n
        bar.set_postfix(loss=f"{total_loss / count:.3f}", acc=f"{correct / count:.3f}")
    return EpochStats(total_loss / max(count, 1), correct / max(count, 1), count)


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
