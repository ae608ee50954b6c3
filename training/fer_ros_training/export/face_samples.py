"""Real, model-ready face batches for export parity checks, INT8 calibration and engine validation.

Every face goes through the perception core's own preprocessing (``fer_ros.faces.align.align_batch`` with the
model card), so what the exporter compares, what TensorRT calibrates on and what the validator scores is exactly
what the robot feeds the network.

Two sources:
- ``builtin_faces``: no data needed. The astronaut portrait (scikit-image, public domain) with its known face box
  and landmarks, cropped at several offsets, scales and tilts, plus the small real faces of
  ``skimage.data.lfw_subset()`` (Labeled Faces in the Wild, already cropped).
- ``faces_from_folder``: the user's images, ``ROOT/<label>/*.png|jpg`` (formats.md), either full frames (faces are
  detected as the node would) or face crops (the whole image is the face box). An optional ``ROOT/split.csv``
  (``path,split``) selects the held-out part. Unreadable images, images without a face and folders whose name is not
  a card label (or a usual synonym: anger, joy, ...) are counted in ``FaceSet.skipped``, never dropped silently.
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from fer_ros.datatypes import Detection
from fer_ros.errors import ConfigError
from fer_ros.model_card import ModelCard
# The astronaut's known face box and landmarks: the built-in samples need no detector run.
from fer_ros.samples import ASTRONAUT_FACE_BOX, ASTRONAUT_LANDMARKS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")  # what faces_from_folder reads; others are not images
FACE_MODES = ("detect", "crops")  # full frames with faces to find | images that already are face crops
# Box jitter of the built-in astronaut variants: fraction of the face width moved / scaled, and tilt in degrees.
# Small enough that every crop still shows the whole face, large enough that no two inputs are alike.
JITTER_SHIFT = 0.08
JITTER_SCALE = 0.12
JITTER_TILT_DEG = 12.0


@dataclass
class FaceSet:
    """Model-ready faces with their labels (index into the card's labels, -1 = unknown) and what was skipped."""

    inputs: np.ndarray  # (N, C, H, W) float32, normalised per the card
    labels: np.ndarray  # (N,) int64
    sources: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def report(self) -> str:
        """One line: how many faces, from how many sources, and what was skipped and why."""
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items())) or "nothing"
        return f"{len(self)} faces; skipped {skipped}"


def _align(image: np.ndarray, detections: Sequence[Detection], card: ModelCard) -> np.ndarray:
    from fer_ros.faces.align import align_batch

    return np.asarray(align_batch(image, "rgb", list(detections), card), dtype=np.float32)


def _to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Gray, RGBA or float images as HxWx3 uint8 RGB (what the core's aligner takes)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return np.ascontiguousarray(img)


def _whole_image_detection(image: np.ndarray) -> Detection:
    h, w = image.shape[:2]
    return Detection(box=np.array([0, 0, w, h], dtype=np.float32), score=1.0, landmarks=None)


def _jittered(box: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> Detection:
    """The face box moved, scaled and tilted a little (landmarks follow the same similarity transform)."""
    center = (box[:2] + box[2:]) / 2
    width = float(box[2] - box[0])
    shift = rng.uniform(-JITTER_SHIFT, JITTER_SHIFT, 2) * width
    scale = 1.0 + rng.uniform(-JITTER_SCALE, JITTER_SCALE)
    theta = np.deg2rad(rng.uniform(-JITTER_TILT_DEG, JITTER_TILT_DEG))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    new_center = center + shift
    lms = (landmarks - center) @ rot.T * scale + new_center
    half = (box[2:] - box[:2]) / 2 * scale
    new_box = np.concatenate([new_center - half, new_center + half])
    return Detection(box=new_box.astype(np.float32), score=1.0, landmarks=lms.astype(np.float32))


def builtin_faces(card: ModelCard, count: int = 8, seed: int = 0) -> FaceSet:
    """``count`` real faces without any user data: astronaut variants (half) and LFW faces (the rest).

    Labels are unknown (-1): these faces serve numeric comparisons, not accuracy.
    """
    if count < 1:
        raise ConfigError(f"builtin_faces: count must be >= 1, got {count}")
    from skimage import data

    rng = np.random.default_rng(seed)
    portrait = _to_rgb_uint8(data.astronaut())
    box = np.array(ASTRONAUT_FACE_BOX, dtype=np.float32)
    lms = np.array(ASTRONAUT_LANDMARKS, dtype=np.float32)
    n_astro = max(1, count // 2)
    dets = [Detection(box=box, score=1.0, landmarks=lms)]
    dets += [_jittered(box, lms, rng) for _ in range(n_astro - 1)]
    parts = [_align(portrait, dets, card)]
    sources = [f"astronaut#{i}" for i in range(n_astro)]
    n_lfw = count - n_astro
    if n_lfw:
        lfw = data.lfw_subset()  # (200, 25, 25) float in [0, 1]: 100 faces, then 100 non-faces
        picks = rng.choice(100, size=n_lfw, replace=n_lfw > 100)
        for i in picks:
            img = _to_rgb_uint8(lfw[int(i)])
            parts.append(_align(img, [_whole_image_detection(img)], card))
            sources.append(f"lfw_subset[{int(i)}]")
    inputs = np.concatenate(parts, axis=0)
    return FaceSet(inputs=inputs, labels=np.full(len(inputs), -1, dtype=np.int64), sources=sources)


def _read_split(root: Path) -> dict[str, str]:
    split_file = root / "split.csv"
    if not split_file.is_file():
        return {}
    with open(split_file, newline="") as f:
        return {str(Path(row["path"])): row["split"].strip().lower() for row in csv.DictReader(f) if row.get("path")}


def list_images(root: Path | str, split: str | None = None) -> list[Path]:
    """Image files under ``root`` (sorted), restricted to ``split`` when ``root/split.csv`` names one."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"image folder {root} does not exist (expected ROOT/<label>/*.png, see docs/formats.md)")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    splits = _read_split(root)
    if split and splits:
        files = [p for p in files if splits.get(str(p.relative_to(root))) == split]
    return files


def faces_from_folder(root: Path | str, card: ModelCard, mode: str = "detect", limit: int | None = None,
                      split: str | None = None, seed: int = 0) -> FaceSet:
    """Faces of the user's images through the core's preprocessing, with labels from the folder names.

    ``mode="detect"``: full frames; every face the core's detector finds (the largest only per image, so a label
    stays attached to one face). ``mode="crops"``: each image is one face crop (FER2013/JAFFE style). ``limit``
    draws a seeded random subset of that many images (calibration wants variety, not the first folder).
    """
    if mode not in FACE_MODES:
        raise ConfigError(f"face mode '{mode}' is not one of {FACE_MODES}")
    root = Path(root)
    files = list_images(root, split)
    if not files:
        raise ConfigError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}"
                          + (f" in split '{split}'" if split else ""))
    if limit is not None and len(files) > limit:
        rng = np.random.default_rng(seed)
        files = [files[i] for i in sorted(rng.choice(len(files), size=limit, replace=False))]
    from skimage import io

    from fer_ros_training.data.items import LABEL_SYNONYMS  # the public data sets' names (anger, joy, ...)

    label_index = {name.lower(): i for i, name in enumerate(card.labels)}
    label_index.update({alias: label_index[name] for alias, name in LABEL_SYNONYMS.items() if name in label_index})
    detector = None
    if mode == "detect":
        from fer_ros.faces.detector import DetectorConfig, create_detector

        detector = create_detector(DetectorConfig(max_faces=4))
    parts: list[np.ndarray] = []
    labels: list[int] = []
    sources: list[str] = []
    skipped: Counter = Counter()
    try:
        for path in files:
            try:
                img = _to_rgb_uint8(io.imread(path))
            except (OSError, ValueError) as exc:  # unreadable or not an image after all
                skipped[f"unreadable ({type(exc).__name__})"] += 1
                continue
            rel = path.relative_to(root)
            label = label_index.get(rel.parts[0].lower(), -1) if len(rel.parts) > 1 else -1
            if detector is not None:
                dets = detector.detect(img)
                if not dets:
                    skipped["no face found"] += 1
                    continue
                det = max(dets, key=lambda d: d.width * d.height)
            else:
                det = _whole_image_detection(img)
            parts.append(_align(img, [det], card))
            labels.append(label)
            sources.append(str(rel))
    finally:
        if detector is not None:
            detector.close()
    unlabeled = sum(1 for v in labels if v < 0)
    if unlabeled:
        skipped["label not in card (kept, unlabelled)"] += unlabeled
    if not parts:
        raise ConfigError(f"no usable face in {len(files)} images under {root} ({dict(skipped)}); "
                          f"use --faces crops if the images are already face crops")
    c, h, w = card.input.channels, card.input.height, card.input.width
    inputs = np.concatenate(parts, axis=0).reshape(-1, c, h, w)
    return FaceSet(inputs=inputs, labels=np.asarray(labels, dtype=np.int64), sources=sources, skipped=skipped)


def load_faces(card: ModelCard, data: Path | str | None, mode: str = "detect", limit: int | None = None,
               split: str | None = None, builtin_count: int = 8, seed: int = 0) -> FaceSet:
    """The user's faces when ``data`` names a folder, else the built-in real faces."""
    if data is None:
        return builtin_faces(card, builtin_count, seed)
    return faces_from_folder(data, card, mode=mode, limit=limit, split=split, seed=seed)
