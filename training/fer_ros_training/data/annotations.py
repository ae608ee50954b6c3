"""Known face locations, ``ROOT/faces.csv``: used instead of the detector for the images it lists.

The synthetic generator writes it (its faces are known exactly); users can write it too, e.g. for data sets that
ship landmarks. One row per image or video frame, paths relative to ROOT (``clip.mp4#12`` is frame 12)::

    path,x0,y0,x1,y1,lex,ley,rex,rey,nx,ny,lmx,lmy,rmx,rmy

Box and landmarks follow ``fer_ros.datatypes``: pixels; eye on the image's left, eye on the image's right, nose
tip, mouth corner on the image's left, mouth corner on the image's right.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_ros_training.data.bad_input import BAD_ROW, BadInputLog

FACES_FILENAME = "faces.csv"
FACES_HEADER = ("path", "x0", "y0", "x1", "y1", "lex", "ley", "rex", "rey", "nx", "ny", "lmx", "lmy", "rmx", "rmy")


@dataclass(frozen=True)
class FaceAnnotation:
    """A known face: box (4,) and five landmarks (5, 2), float32 pixels."""

    box: np.ndarray
    landmarks: np.ndarray


def read_faces(root: Path, bad: BadInputLog) -> dict[str, FaceAnnotation]:
    """``ROOT/faces.csv`` -> {absolute path key (``FrameRef.key()``): annotation}; {} when there is no file."""
    path = Path(root) / FACES_FILENAME
    out: dict[str, FaceAnnotation] = {}
    if not path.is_file():
        return out
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = tuple(h.strip() for h in next(reader, ()))
        if header != FACES_HEADER:
            bad.report(BAD_ROW, path, f"header must be {','.join(FACES_HEADER)}", line=1, fatal=True)
        for line, row in enumerate(reader, start=2):
            try:
                values = np.array([float(v) for v in row[1:]], np.float32)
                if len(values) != 14 or not np.isfinite(values).all():
                    raise ValueError
            except ValueError:
                bad.report(BAD_ROW, path, f"row needs a path and 14 finite numbers, got {row}", line=line)
                continue
            rel, _, frame = row[0].partition("#")
            key = str(Path(root) / rel) + (f"#{int(frame)}" if frame else "")
            out[key] = FaceAnnotation(box=values[:4], landmarks=values[4:].reshape(5, 2))
    return out


def write_faces(root: Path, rows: list[tuple[str, np.ndarray, np.ndarray]]) -> Path:
    """Write ``faces.csv`` from (relative path key, box, landmarks) rows."""
    path = Path(root) / FACES_FILENAME
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FACES_HEADER)
        for rel, box, lm in rows:
            w.writerow([rel] + [f"{v:.2f}" for v in np.concatenate([np.ravel(box), np.ravel(lm)])])
    return path
