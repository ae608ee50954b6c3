"""The ``data:`` section of a training config: where the data is, in which layout, and how to treat bad input.

Example::

    data:
      format: image_folders        # fer2013 | image_folders | clips
      root: /data/rafdb            # folder (or the CSV file for fer2013)
      split: {val: 0.1, test: 0.1} # seeded split when the data has none
      label_map: {contempt: neutral}
      on_bad_input: skip           # skip: count, report and go on | stop: stop at the first bad item
      cache_dir: ~/.cache/fer_ros/faces   # aligned crops; null keeps nothing on disk
      detector: {backend: auto, model: full, min_confidence: 0.5}
      annotations: false           # true: known faces from ROOT/faces.csv where listed (default: find every face
                                   # as the node does)
      no_face: whole_image         # no face the node would label: crop the whole image | skip: leave it out
      segments: 3                  # clips: K frames sampled per clip (FAN)
      augment: {hflip: 0.5, rotation: 30, translate: 0.1, brightness: 0.2, contrast: 0.2}
      synthetic: {per_class: 40, frames: 12, image_size: 96}   # optional: generate into root when it is missing
                                   # (dropped when data.root is set with --set: a mistyped path is an error)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_ros.errors import ConfigError
from fer_ros_training.config_keys import section_fields
from fer_ros_training.data.bad_input import POLICIES
from fer_ros_training.data.clips import DEFAULT_SEGMENTS
from fer_ros_training.data.face_cache import DEFAULT_CACHE_DIR, NO_FACE_POLICIES
from fer_ros_training.data.transforms import AugmentConfig

DATA_FORMATS = ("fer2013", "image_folders", "clips")


@dataclass
class DataConfig:
    format: str = "image_folders"
    root: str = ""
    split: dict[str, float] = field(default_factory=lambda: {"val": 0.1, "test": 0.1})
    label_map: dict[str, str] = field(default_factory=dict)
    on_bad_input: str = "skip"
    cache_dir: str | None = str(DEFAULT_CACHE_DIR)
    detector: dict[str, Any] = field(default_factory=dict)
    segments: int = DEFAULT_SEGMENTS
    augment: dict[str, float] = field(default_factory=dict)
    synthetic: dict[str, Any] | None = None
    max_items: int = 0  # > 0: use only the first N items of each split (quick checks)
    annotations: bool = False  # true: use ROOT/faces.csv where it lists a face; false: find faces as the node does
    no_face: str = "whole_image"  # an image without a face the node would label: whole_image | skip

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DataConfig:
        cfg = cls(**section_fields(cls, data, "data"))
        if cfg.format not in DATA_FORMATS:
            raise ConfigError(f"data.format '{cfg.format}' is not one of {DATA_FORMATS}")
        if not cfg.root:
            raise ConfigError("data.root is empty: give the data folder (or the FER2013 CSV file)")
        if cfg.no_face not in NO_FACE_POLICIES:
            raise ConfigError(f"data.no_face '{cfg.no_face}' is not one of {NO_FACE_POLICIES}")
        if cfg.on_bad_input not in POLICIES:
            raise ConfigError(f"data.on_bad_input '{cfg.on_bad_input}' is not one of {POLICIES}")
        if cfg.segments < 1:
            raise ConfigError(f"data.segments must be >= 1, got {cfg.segments}")
        AugmentConfig.from_dict(cfg.augment)  # fail now, not after the data has been prepared
        return cfg

    @property
    def root_path(self) -> Path:
        return Path(self.root).expanduser()

    @property
    def cache_path(self) -> Path | None:
        return None if self.cache_dir in (None, "", "none", "null") else Path(self.cache_dir).expanduser()
