"""Write synthetic expression data in the same layouts as real data (docs/formats.md), so loaders are tested on files.

- ``write_image_folders``: ``ROOT/<label>/<id>.png`` + ``faces.csv`` + ``split.csv`` (JAFFE / RAF-DB style).
- ``write_clip_folders``: ``ROOT/<label>/<clip>/000000.png ...`` + ``clip.yaml`` (peak), or ``<clip>.avi`` video
  files, + ``faces.csv`` + ``split.csv`` (EMO2018 / AFEW style).
- ``write_fer2013_csv``: the FER2013 CSV of 48x48 gray crops cut by the core's ``crop_face``.

``faces.csv`` carries the drawn faces' boxes and landmarks, so training on them needs no detector (mediapipe does
detect them as well; see ``synthetic``).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from fer_ros.cli_options import output_taken
from fer_ros.errors import ConfigError
from fer_ros.model_card import FER2013_LABELS
from fer_ros_training.data.annotations import write_faces
from fer_ros_training.data.fer2013 import write_fer2013
from fer_ros_training.data.items import seeded_split
from fer_ros_training.data.synthetic import SynthConfig, render_image, render_sequence

VIDEO_FOURCC = "MJPG"  # Motion-JPEG in .avi: written and read by every OpenCV build, no codec licence needed
VIDEO_FPS = 15.0  # frame rate written into synthetic videos (only their metadata; frames are what counts)
SPLIT_TO_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


@dataclass(frozen=True)
class SplitFractions:
    val: float = 0.2
    test: float = 0.2

    def as_dict(self) -> dict[str, float]:
        return {"val": self.val, "test": self.test}


def claim_output(path: Path, force: bool = False) -> Path:
    """Make ``path`` ready for a new data set: a missing path or an empty folder is used as it is; anything else is
    refused (``ConfigError``), or with ``force`` removed first. Writing into an old data set would mix its images with
    new ``faces.csv``/``split.csv`` files that do not list them."""
    path = Path(path)
    taken = output_taken(path)
    if taken and not force:
        raise ConfigError(f"{path} already exists and is not empty; choose a new output or pass --force to replace it")
    if taken:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return path


def _write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def _write_split(root: Path, rels: list[str], splits: list[str]) -> None:
    with open(root / "split.csv", "w") as f:
        f.write("path,split\n")
        for rel, split in zip(rels, splits):
            f.write(f"{rel},{split}\n")


def write_image_folders(root: Path | str, per_class: int, seed: int = 0, cfg: SynthConfig = SynthConfig(),
                        fractions: SplitFractions = SplitFractions(), labels: tuple[str, ...] = FER2013_LABELS,
                        force: bool = False) -> Path:
    """``per_class`` still images of each class under ``root`` (see ``claim_output`` for ``force``); returns ``root``."""
    root = claim_output(root, force)
    rng = np.random.default_rng(seed)
    faces, rels, label_ids = [], [], []
    for i in range(per_class):
        for label, name in enumerate(labels):
            face = render_image(label, rng, cfg)
            rel = f"{name}/{name}_{i:05d}.png"
            _write_png(root / rel, face.image)
            faces.append((rel, face.box, face.landmarks))
            rels.append(rel)
            label_ids.append(label)
    write_faces(root, faces)
    _write_split(root, rels, seeded_split(label_ids, fractions.as_dict(), seed))
    return root


def write_clip_folders(root: Path | str, per_class: int, frames: int = 12, seed: int = 0,
                       cfg: SynthConfig = SynthConfig(), fractions: SplitFractions = SplitFractions(),
                       video_every: int = 0, labels: tuple[str, ...] = FER2013_LABELS, force: bool = False) -> Path:
    """``per_class`` onset -> peak -> offset clips of each class; every ``video_every``-th clip is an .avi file
    (see ``claim_output`` for ``force``)."""
    root = claim_output(root, force)
    rng = np.random.default_rng(seed)
    faces, rels, label_ids = [], [], []
    count = 0
    for i in range(per_class):
        for label, name in enumerate(labels):
            seq, peak = render_sequence(label, frames, rng, cfg)
            count += 1
            clip_id = f"{name}_{i:04d}"
            if video_every and count % video_every == 0:
                rel = f"{name}/{clip_id}.avi"
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                size = seq[0].image.shape[1], seq[0].image.shape[0]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*VIDEO_FOURCC), VIDEO_FPS, size)
                if not writer.isOpened():
                    raise OSError(f"OpenCV cannot write {VIDEO_FOURCC} video to {path}")
                for k, f in enumerate(seq):
                    writer.write(cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR))
                    faces.append((f"{rel}#{k}", f.box, f.landmarks))
                writer.release()
            else:
                rel = f"{name}/{clip_id}"
                for k, f in enumerate(seq):
                    _write_png(root / rel / f"{k:06d}.png", f.image)
                    faces.append((f"{rel}/{k:06d}.png", f.box, f.landmarks))
                (root / rel / "clip.yaml").write_text(yaml.safe_dump({"peak": int(peak), "source": "synthetic"}))
            rels.append(rel)
            label_ids.append(label)
    write_faces(root, faces)
    _write_split(root, rels, seeded_split(label_ids, fractions.as_dict(), seed))
    return root


def write_fer2013_csv(path: Path | str, per_class: int, seed: int = 0, cfg: SynthConfig = SynthConfig(),
                      fractions: SplitFractions = SplitFractions(), side: int = 48, force: bool = False) -> Path:
    """A FER2013-layout CSV of ``side`` x ``side`` gray crops, aligned by the core's ``crop_face`` (an existing file is
    refused unless ``force``)."""
    from fer_ros.faces.align import crop_face, to_model_color

    claim_output(path, force)
    rng = np.random.default_rng(seed)
    images, label_ids = [], []
    for _ in range(per_class):
        for label in range(len(FER2013_LABELS)):
            face = render_image(label, rng, cfg)
            crop = crop_face(face.image, face.box, face.landmarks, side, side)
            images.append(to_model_color(crop, "rgb", "gray").reshape(side, side))
            label_ids.append(label)
    usages = [SPLIT_TO_USAGE[s] for s in seeded_split(label_ids, fractions.as_dict(), seed)]
    return write_fer2013(path, images, label_ids, usages)
