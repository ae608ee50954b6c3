"""The model card an export writes: how to feed the network (from its spec, the training config, or the user) and
where it came from (checkpoint and hash, training data, metrics, licence).

Nothing here guesses silently: a field that is neither in the checkpoint's config nor given on the command line takes
the network spec's default, and the export prints the card it wrote.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from fer_ros.errors import ConfigError
from fer_ros.model_card import FER2013_LABELS, ModelCard, card_from_dict, file_sha256

PLACEHOLDER_FILE = "model.onnx"  # files entry of a card template; the export replaces it with what it wrote


def card_template(model_id: str, architecture: str, height: int, width: int, color: str,
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                  labels: Sequence[str] = FER2013_LABELS, crop_scale: float = 1.0, rotate: bool = True,
                  window: int = 1, extra: Mapping[str, Any] | None = None) -> ModelCard:
    """A validated card for the export to complete (files, format, output and parity are filled in by it)."""
    channels = 1 if color == "gray" else 3
    data: dict[str, Any] = {
        "id": model_id,
        "architecture": architecture,
        "format": "onnx",
        "files": {"embedder": "embedder.onnx", "aggregator": "aggregator.onnx"} if window > 1
        else {"model": PLACEHOLDER_FILE},
        "input": {"height": int(height), "width": int(width), "color": color,
                  "mean": list(mean) if mean is not None else [0.0] * channels,
                  "std": list(std) if std is not None else [1.0] * channels},
        "crop": {"scale": float(crop_scale), "rotate": bool(rotate)},
        "labels": list(labels),
        "temporal": {"window": int(window)},
    }
    data.update(extra or {})
    return card_from_dict(data, ".", Path(f"<card of {model_id}>"))


def parse_metrics(values: Sequence[str]) -> dict[str, Any]:
    """Metrics from ``--metrics``: ``key=value`` pairs and/or JSON/YAML files holding a mapping."""
    out: dict[str, Any] = {}
    for item in values:
        if "=" in item:
            key, _, raw = item.partition("=")
            try:
                out[key.strip()] = float(raw)
            except ValueError:
                out[key.strip()] = raw.strip()
            continue
        path = Path(item)
        if not path.is_file():
            raise ConfigError(f"--metrics '{item}' is neither key=value nor an existing JSON/YAML file")
        text = path.read_text()
        try:
            loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"--metrics file {path} is not valid JSON/YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"--metrics file {path} must hold a mapping of metric names to values")
        out.update(loaded)
    return out


def run_test_metrics(checkpoint: Path | str) -> dict[str, Any]:
    """``test_<metric>`` from the run's ``summary.yaml`` when ``checkpoint`` is the run's best model (the summary's
    test metrics are the best model's), else {}."""
    from fer_ros_training.trainer import CHECKPOINT_BEST

    summary = Path(checkpoint).parent / "summary.yaml"
    if Path(checkpoint).name != CHECKPOINT_BEST or not summary.is_file():
        return {}
    test = (yaml.safe_load(summary.read_text()) or {}).get("test") or {}
    return {f"test_{k}": float(v) for k, v in test.items() if isinstance(v, (int, float)) and k != "loss"}


def provenance(checkpoint: Path | None, training_data: str | None, metrics: Mapping[str, Any] | None,
               licence: str | None = None, source: str | None = None) -> dict[str, Any]:
    """The card's provenance fields: source checkpoint with its SHA-256, training data, metrics, licence."""
    out: dict[str, Any] = {}
    if source:
        out["source"] = source
    if checkpoint is not None:
        out["checkpoint"] = {"file": Path(checkpoint).name, "sha256": file_sha256(checkpoint)}
    out["training_data"] = training_data or "unspecified (pass --training-data)"
    metrics = {**(run_test_metrics(checkpoint) if checkpoint is not None else {}), **(metrics or {})}
    if metrics:
        out["metrics"] = dict(metrics)
    if licence:
        out["license"] = licence
    return out
