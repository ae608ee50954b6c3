"""Tiny trained checkpoints for tests (training, evaluation, export), regenerated on demand instead of committed.

``tiny_checkpoint("rmn")`` / ``tiny_checkpoint("fan")`` return the ``best.pt`` of the CI configs
(``configs/ci_rmn_tiny.yaml``, ``configs/ci_fan_tiny.yaml``) trained on synthetic data: about a minute each on CPU,
cached under ``root`` (default ``$FER_ROS_TINY_DIR`` or the system temp folder) by a hash of the config, so one test
session trains each once. ``quick=True`` trains one epoch on a handful of faces instead: seconds, for tests that need a
checkpoint of the right shape but not a good one (export, resume, command plumbing).
"""
from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from fer_ros.errors import ConfigError

CI_CONFIGS = {"rmn": "ci_rmn_tiny", "fan": "ci_fan_tiny"}
QUICK = {"epochs": 1, "synthetic": {"per_class": 4, "frames": 6}}  # the quick variant's size: 28 faces/clips, 1 epoch


def tiny_config(kind: str, quick: bool = False, root: Path | str | None = None) -> dict[str, Any]:
    """The raw CI config of ``kind`` (rmn | fan), with its data placed under ``root``; smaller when ``quick``."""
    from fer_ros_training.train_config import resolve_config_path

    if kind not in CI_CONFIGS:
        raise ConfigError(f"tiny checkpoint kind must be one of {sorted(CI_CONFIGS)}, got '{kind}'")
    raw = yaml.safe_load(resolve_config_path(CI_CONFIGS[kind]).read_text())
    raw = copy.deepcopy(raw)
    base = Path(root or os.environ.get("FER_ROS_TINY_DIR") or Path(tempfile.gettempdir()) / "fer_ros_tiny")
    if quick:
        raw["name"] += "_quick"
        raw["epochs"] = QUICK["epochs"]
        raw["data"]["synthetic"] = {**raw["data"]["synthetic"], **QUICK["synthetic"]}
    synth = raw["data"]["synthetic"]
    data_key = hashlib.sha256(yaml.safe_dump([raw["data"]["format"], synth]).encode()).hexdigest()[:12]
    raw["data"]["root"] = str(base / "data" / data_key)
    return raw


def tiny_checkpoint(kind: str = "rmn", quick: bool = False, root: Path | str | None = None) -> Path:
    """Path of a trained tiny checkpoint (``best.pt``), training it first if this config has none yet."""
    from fer_ros_training.train_config import config_from_dict
    from fer_ros_training.trainer import CHECKPOINT_BEST, train

    raw = tiny_config(kind, quick, root)
    key = hashlib.sha256(yaml.safe_dump(raw, sort_keys=True).encode()).hexdigest()[:12]
    run_dir = Path(raw["data"]["root"]).parent.parent / "runs" / f"{raw['name']}-{key}"
    best = run_dir / CHECKPOINT_BEST
    if not best.is_file():
        train(config_from_dict(raw), run_dir=run_dir, progress=False)
    if not best.is_file():
        raise RuntimeError(f"training {raw['name']} wrote no {best}")
    return best
