"""Read training checkpoints for export: ours (``{model, optimizer, scheduler, epoch, config}``) and bare state dicts.

``torch.load`` runs with ``weights_only=True`` (tensors, numbers, strings, containers only), so a checkpoint from
elsewhere cannot execute code while it is read; a file that needs full unpickling is refused unless the user says
they trust it (``--trust-checkpoint``).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from fer_ros.errors import ConfigError, ModelLoadError

STATE_KEYS = ("model", "state_dict", "net", "model_state_dict")  # where trainers put the weights, ours first
# file suffixes users pass where a checkpoint is wanted, and what they are
NOT_CHECKPOINTS = {".onnx": "an exported ONNX model", ".engine": "a TensorRT engine", ".plan": "a TensorRT engine",
                   ".yaml": "a YAML file (a config or a model card)", ".yml": "a YAML file", ".csv": "a CSV file",
                   ".md": "a text file", ".json": "a JSON file"}


@dataclass
class LoadedCheckpoint:
    """A checkpoint's weights, its training config (raw YAML mapping, if any) and anything else it holds."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # epoch, metrics, ... (non-tensor entries)


def read_checkpoint(path: Path | str, trust: bool = False) -> Any:
    """``torch.load`` on the CPU, weights only unless ``trust``; ModelLoadError with the fix otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint {path} does not exist" + (" (it is a folder: give best.pt or last.pt "
                                                                    "inside it)" if path.is_dir() else ""))
    if path.suffix.lower() in NOT_CHECKPOINTS:
        raise ModelLoadError(f"{path} is {NOT_CHECKPOINTS[path.suffix.lower()]}, not a training checkpoint: give "
                             f"the best.pt or last.pt of a run folder")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        if not _is_torch_file(path):
            raise ModelLoadError(f"{path} is not a torch checkpoint (give best.pt or last.pt of a run folder)") from exc
        raise ModelLoadError(f"checkpoint {path} holds Python objects beyond tensors and plain values "
                             f"({exc.args[0].splitlines()[0] if exc.args else exc}); if you trust its origin, pass "
                             f"--trust-checkpoint to load it fully") from exc
    except Exception as exc:  # torch.load on another kind of file fails in any way (IndexError, KeyError, ...)
        raise ModelLoadError(f"{path} is not a readable torch checkpoint ({type(exc).__name__}: {exc}); give "
                             f"best.pt or last.pt of a run folder") from exc


def _is_torch_file(path: Path) -> bool:
    """A zip archive (torch.save since 1.6) or a legacy pickle (protocol 2+, starting with 0x80)."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK") or head[:1] == b"\x80"


def split_checkpoint(path: Path | str, trust: bool = False) -> LoadedCheckpoint:
    """Weights, config and other entries of a checkpoint file (or of a bare state dict)."""
    raw = read_checkpoint(path, trust)
    if not isinstance(raw, Mapping):
        raise ModelLoadError(f"checkpoint {path} holds a {type(raw).__name__}, not a state dict or a checkpoint "
                             f"mapping")
    key = next((k for k in STATE_KEYS if isinstance(raw.get(k), Mapping)), None)
    if key is None:
        if not raw or not all(isinstance(v, torch.Tensor) for v in raw.values()):
            raise ModelLoadError(f"checkpoint {path} has no weights under any of {STATE_KEYS} and is not a bare "
                                 f"state dict (keys: {list(raw)[:8]})")
        return LoadedCheckpoint(Path(path), dict(raw))
    config = raw.get("config") if isinstance(raw.get("config"), Mapping) else None
    info = {k: v for k, v in raw.items() if k not in (key, "config", "optimizer", "scheduler")
            and not isinstance(v, (torch.Tensor, Mapping)) or k == "metrics"}
    return LoadedCheckpoint(Path(path), dict(raw[key]), dict(config) if config else None, info)


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: Path | str) -> nn.Module:
    """Load strictly (a missing or extra tensor means another architecture) and return the model in eval mode."""
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensors of the wrong shape
        raise ConfigError(f"weights of {source} do not fit {type(model).__name__}: {exc}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise ConfigError(f"weights of {source} do not fit {type(model).__name__}: missing "
                          f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}; is --network (or the "
                          f"checkpoint's config) the architecture it was trained as?")
    return model.eval()
