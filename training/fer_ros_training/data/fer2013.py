"""The FER2013 CSV (``emotion,pixels,Usage``): 48x48 gray face crops, one per row.

``Usage`` Training / PublicTest / PrivateTest become the splits train / val / test (the seeds report PrivateTest);
without a Usage column a seeded split is drawn. The rows are already face crops, so they skip detection: the face
cache resizes them to the model's input (see ``face_cache.FaceCache.align_item``).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from fer_ros.model_card import FER2013_LABELS
from fer_ros_training.data.bad_input import BAD_COLUMNS, BAD_ROW, BadInputLog
from fer_ros_training.data.items import ImageItem, LabelResolver, report_unknown_label, seeded_split

REQUIRED_COLUMNS = ("emotion", "pixels")
USAGE_TO_SPLIT = {"training": "train", "publictest": "val", "privatetest": "test"}


def load_fer2013(csv_path: Path | str, resolver: LabelResolver, bad: BadInputLog,
                 split_fractions: dict[str, float] | None = None, seed: int = 0) -> list[ImageItem]:
    """Read every usable row; a wrong header stops with the columns found, a bad row is reported with its line."""
    csv_path = Path(csv_path)
    items: list[ImageItem] = []
    has_usage = False
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            bad.report(BAD_COLUMNS, csv_path, f"FER2013 CSV has no column(s) {missing}; found {header}, expected "
                                              f"emotion,pixels[,Usage]", line=1, fatal=True)
        col = {name: header.index(name) for name in header}
        has_usage = "usage" in col
        for line, row in enumerate(reader, start=2):
            where = f"{csv_path}:{line}"
            try:
                code = int(row[col["emotion"]])
                values = np.array(row[col["pixels"]].split(), dtype=np.float32)
            except (ValueError, IndexError):
                bad.report(BAD_ROW, csv_path, "emotion must be an integer and pixels space-separated numbers",
                           line=line)
                continue
            side = int(math.isqrt(values.size))
            if values.size == 0 or side * side != values.size or values.min() < 0 or values.max() > 255:
                bad.report(BAD_ROW, csv_path, f"pixels must be a square image of 0..255 values, got {values.size} "
                                              f"values", line=line)
                continue
            if not 0 <= code < len(FER2013_LABELS):
                bad.report(BAD_ROW, csv_path, f"emotion {code} is outside 0..6", line=line)
                continue
            label = resolver(FER2013_LABELS[code])
            if label is None:
                report_unknown_label(bad, csv_path, FER2013_LABELS[code], resolver.labels, line)
                continue
            split = "train"
            if has_usage:
                usage = row[col["usage"]].strip().lower() if len(row) > col["usage"] else ""
                if usage not in USAGE_TO_SPLIT:
                    bad.report(BAD_ROW, csv_path, f"Usage '{usage}' is not Training, PublicTest or PrivateTest",
                               line=line)
                    continue
                split = USAGE_TO_SPLIT[usage]
            items.append(ImageItem(label=label, split=split, source=where,
                                   pixels=values.reshape(side, side).astype(np.uint8)))
    if not has_usage:
        for item, split in zip(items, seeded_split([i.label for i in items], split_fractions or {}, seed)):
            item.split = split
    return items


def write_fer2013(csv_path: Path | str, images: list[np.ndarray], labels: list[int], usages: list[str]) -> Path:
    """Write gray square crops in the FER2013 CSV layout (used by the synthetic writer and tests)."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for img, label, usage in zip(images, labels, usages):
            w.writerow([int(label), " ".join(str(int(v)) for v in np.ravel(img)), usage])
    return csv_path
