"""Folders of images by class (JAFFE, CK+, RAF-DB style): ``ROOT/<label>/*.png|jpg``, optional ``ROOT/split.csv``.

Class folder names are matched to the training labels (see ``items.LabelResolver``); an empty class folder or one
that matches no label is reported, never skipped silently. Without ``split.csv`` a seeded stratified split is drawn.
"""
from __future__ import annotations

from pathlib import Path

from fer_ros_training.data.bad_input import BAD_SPLIT, EMPTY_CLASS, BadInputLog
from fer_ros_training.data.items import (FrameRef, ImageItem, LabelResolver, read_split_file, report_unknown_label,
                                         seeded_split)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")
SPLIT_FILENAME = "split.csv"


def class_folders(root: Path, resolver: LabelResolver, bad: BadInputLog) -> list[tuple[Path, int]]:
    """The class folders of ``root`` that match a training label, sorted by name; others are reported."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} is not a folder; set data.root in the config")
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = resolver(folder.name)
        if label is None:
            report_unknown_label(bad, folder, folder.name, resolver.labels)
            continue
        out.append((folder, label))
    return out


def load_image_folders(root: Path | str, resolver: LabelResolver, bad: BadInputLog,
                       split_fractions: dict[str, float] | None = None, seed: int = 0) -> list[ImageItem]:
    """List every image under the class folders with its label and split."""
    root = Path(root)
    items: list[ImageItem] = []
    for folder, label in class_folders(root, resolver, bad):
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            bad.report(EMPTY_CLASS, folder, f"class folder has no images ({', '.join(IMAGE_SUFFIXES)})")
            continue
        items.extend(ImageItem(label=label, split="train", source=str(p), frame=FrameRef(p)) for p in files)
    assign_splits(root, items, [str(i.frame.path.relative_to(root)).replace("\\", "/") for i in items], bad,
                  split_fractions, seed)
    return items


def assign_splits(root: Path, items: list, rel_paths: list[str], bad: BadInputLog,
                  split_fractions: dict[str, float] | None, seed: int) -> None:
    """Splits from ``ROOT/split.csv`` when it exists (unlisted items are reported and go to train), else seeded."""
    split_file = root / SPLIT_FILENAME
    listed = read_split_file(split_file, bad)
    if listed:
        for item, rel in zip(items, rel_paths):
            if rel in listed:
                item.split = listed[rel]
            else:
                bad.report(BAD_SPLIT, split_file, f"{rel} is not listed; it goes to train")
                item.split = "train"
        return
    for item, split in zip(items, seeded_split([i.label for i in items], split_fractions or {}, seed)):
        item.split = split
