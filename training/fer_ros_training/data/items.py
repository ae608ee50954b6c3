"""What the loaders produce: one record per image or clip, with its label index, split and where it came from.

Loaders only list items (cheap); faces are found and aligned later, once, by ``face_cache``. Labels are matched to
the training labels by name (case-insensitive, with the usual synonyms of the public data sets) or by an explicit
``label_map`` from the config.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_ros.errors import ConfigError
from fer_ros_training.data.bad_input import BAD_SPLIT, UNKNOWN_LABEL, BadInputLog

SPLITS = ("train", "val", "test")
# the names public data sets use for the FER2013 classes (JAFFE, CK+, RAF-DB, AFEW folders)
LABEL_SYNONYMS = {
    "anger": "angry", "angry": "angry", "an": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "fe": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "ha": "happy",
    "sad": "sad", "sadness": "sad", "sa": "sad",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise",
    "neutral": "neutral", "ne": "neutral", "calm": "neutral",
}


@dataclass(frozen=True)
class FrameRef:
    """One image file, or frame ``index`` (0-based) of a video file."""

    path: Path
    index: int | None = None

    def key(self) -> str:
        return str(self.path) if self.index is None else f"{self.path}#{self.index}"


@dataclass
class ImageItem:
    """A still image with its label. FER2013 rows carry their 48x48 pixels inline (``pixels``) instead of a file."""

    label: int
    split: str
    source: str  # "file" or "file:line", for messages
    frame: FrameRef | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)  # HxW uint8, already a face crop


@dataclass
class ClipItem:
    """A clip: its frames in order, label, split, and the peak frame if the annotation gave one."""

    label: int
    split: str
    source: str
    frames: list[FrameRef] = field(default_factory=list)
    peak: int | None = None


class LabelResolver:
    """Maps a data set's class names to indices of the training labels."""

    def __init__(self, labels: tuple[str, ...] | list[str], label_map: dict[str, str] | None = None) -> None:
        self.labels = tuple(labels)
        self.index = {name.lower(): i for i, name in enumerate(self.labels)}
        self.label_map = {str(k).lower(): str(v).lower() for k, v in (label_map or {}).items()}

    def __call__(self, name: str) -> int | None:
        """Index of ``name``, or None when it maps to no training label (the caller reports it)."""
        key = str(name).strip().lower()
        key = self.label_map.get(key, key)
        if key in self.index:
            return self.index[key]
        synonym = LABEL_SYNONYMS.get(key)
        return self.index.get(synonym) if synonym else None


def read_split_file(path: Path, bad: BadInputLog) -> dict[str, str]:
    """``path,split`` rows (path relative to the data root) -> {path: split}; bad rows are reported."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or len(header) < 2 or header[1].strip().lower() != "split":
            bad.report(BAD_SPLIT, path, f"split file needs a header 'path,split', got {header}", line=1, fatal=True)
        for line, row in enumerate(reader, start=2):
            if len(row) < 2 or row[1].strip().lower() not in SPLITS:
                bad.report(BAD_SPLIT, path, f"row {row} needs a path and a split in {SPLITS}", line=line)
                continue
            out[row[0].strip().replace("\\", "/")] = row[1].strip().lower()
    return out


def seeded_split(labels: list[int], fractions: dict[str, float], seed: int) -> list[str]:
    """Stratified random split: per class, ``fractions['val']`` and ``fractions['test']`` of the items, rest train.

    Every class with at least three items gets at least one item in each requested non-empty split.
    """
    val_f, test_f = float(fractions.get("val", 0.1)), float(fractions.get("test", 0.1))
    if val_f < 0 or test_f < 0 or val_f + test_f >= 1:
        raise ConfigError(f"split fractions val={val_f}, test={test_f} must be >= 0 and sum below 1")
    rng = np.random.default_rng(seed)
    out = ["train"] * len(labels)
    arr = np.asarray(labels)
    for cls in np.unique(arr):
        idx = rng.permutation(np.flatnonzero(arr == cls))
        n = len(idx)
        n_val = int(round(n * val_f)) if n < 3 or val_f == 0 else max(1, int(round(n * val_f)))
        n_test = int(round(n * test_f)) if n < 3 or test_f == 0 else max(1, int(round(n * test_f)))
        for i in idx[:n_val]:
            out[i] = "val"
        for i in idx[n_val:n_val + n_test]:
            out[i] = "test"
    return out


def report_unknown_label(bad: BadInputLog, where: Path | str, name: str, labels: tuple[str, ...], line: int = 0) -> None:
    bad.report(UNKNOWN_LABEL, where, f"class '{name}' matches none of the labels {list(labels)}; "
                                     f"rename it or map it with data.label_map", line=line)
