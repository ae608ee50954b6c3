"""Ground-truth expression labels for the frames of a bag: per-frame CSV, interval CSV, or a label topic.

File formats are those of docs/formats.md: CSV with a header row, stamps in seconds of the image header stamps.

- per-frame ``stamp,label[,face]``: the frame whose stamp is nearest, within half a frame period;
- interval ``start,end,label[,face]``: every frame with ``start <= stamp <= end``;
- a topic of the bag (docs/evaluation.md): ``std_msgs/msg/String`` (the label holds from the message's bag time until
  the next one; an empty string or ``none`` ends it), any message with a ``header`` and a string ``label`` or
  ``data`` field (per-frame at the header stamp, optional ``face_id``), or ``fer_ros/msg/EmotionArray`` (each emotion's
  label for its face_id, e.g. written by an annotation tool).

``face`` is the face_id the node reports for that person (the tracker's id); empty means the largest face of the frame.
Names match the model's labels case-insensitively; unknown names, unparsable rows and rows that match no frame are
counted and reported, never silently dropped.
"""
from __future__ import annotations

import bisect
import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fer_ros.errors import ConfigError

KIND_PER_FRAME = "per_frame"
KIND_INTERVAL = "interval"
KIND_TOPIC = "topic"
CLEAR_LABELS = ("", "none", "-")  # a String label-topic message with one of these ends the current label
DEFAULT_FRAME_PERIOD = 1.0 / 30  # s; matching tolerance base when a bag has a single frame (typical camera rate)
MAX_EXAMPLES = 5  # bad rows quoted in a report: enough to find the problem in the file

STAMP_TOLERANCE_S = 1e-6  # label files write stamps with 6 decimals: a frame stamp rounded there still matches


@dataclass(frozen=True)
class LabelRow:
    """One ground-truth statement: frames with start <= stamp <= end show ``label`` on face ``face``."""

    start: float
    end: float
    label: int  # index into the model's label order
    face: int | None = None  # face_id; None = the largest face in the frame
    origin: str = ""  # file:line or topic@stamp, for reports


@dataclass
class FrameLabel:
    """The label one frame must get, and for which face."""

    label: int
    face: int | None


@dataclass
class LabelSet:
    """Labels read from one source, resolved against the model's label order."""

    kind: str
    source: str
    labels: tuple[str, ...]
    rows: list[LabelRow] = field(default_factory=list)
    unknown: Counter = field(default_factory=Counter)  # label name -> rows carrying it
    invalid: int = 0  # rows that could not be parsed
    invalid_examples: list[str] = field(default_factory=list)
    unmatched: int = 0  # rows that matched no frame (set by assign)
    conflicts: int = 0  # frames given two different labels for the same face (set by assign; first one kept)

    def _bad(self, where: str, why: str) -> None:
        self.invalid += 1
        if len(self.invalid_examples) < MAX_EXAMPLES:
            self.invalid_examples.append(f"{where}: {why}")

    def resolve(self, name: str) -> int | None:
        """Index of ``name`` in the model's labels (case-insensitive), or None (counted as unknown)."""
        key = name.strip().lower()
        for i, label in enumerate(self.labels):
            if label.lower() == key:
                return i
        self.unknown[name.strip()] += 1
        return None

    def assign(self, stamps: Sequence[float]) -> dict[int, list[FrameLabel]]:
        """Map frame index -> the labels of that frame (one per labelled face) for frames with these header stamps
        (seconds, any order). Sets ``unmatched`` and ``conflicts``."""
        order = np.argsort(np.asarray(stamps, dtype=np.float64), kind="stable")
        sorted_stamps = [float(stamps[i]) for i in order]
        result: dict[int, list[FrameLabel]] = {}
        self.unmatched = self.conflicts = 0
        half_period = frame_period(sorted_stamps) / 2
        for row in self.rows:
            if self.kind == KIND_PER_FRAME:
                hits = _nearest(sorted_stamps, row.start, half_period)
            else:
                hits = interval_frames(sorted_stamps, row.start, row.end)
            if not hits:
                self.unmatched += 1
            for pos in hits:
                frame_labels = result.setdefault(int(order[pos]), [])
                same_face = next((fl for fl in frame_labels if fl.face == row.face), None)
                if same_face is None:
                    frame_labels.append(FrameLabel(row.label, row.face))
                elif same_face.label != row.label:
                    self.conflicts += 1
        return result

    def summary(self) -> dict[str, Any]:
        """What the report says about the labels."""
        return {
            "kind": self.kind,
            "source": self.source,
            "rows": len(self.rows),
            "unknown_names": dict(self.unknown),
            "invalid_rows": self.invalid,
            "invalid_examples": list(self.invalid_examples),
            "unmatched_rows": self.unmatched,
            "conflicting_frames": self.conflicts,
        }


def interval_frames(sorted_stamps: Sequence[float], start: float, end: float) -> range:
    """Positions of the frames an interval row ``start,end`` labels: every stamp with start <= stamp <= end, give or
    take STAMP_TOLERANCE_S (the label files' microsecond rounding). The one meaning of an interval, for eval-bag
    and ``fer-ros annotate --headless`` alike."""
    return range(bisect.bisect_left(sorted_stamps, start - STAMP_TOLERANCE_S),
                 bisect.bisect_right(sorted_stamps, end + STAMP_TOLERANCE_S))


def frame_period(sorted_stamps: Sequence[float]) -> float:
    """Median spacing of the frame stamps (the camera period), DEFAULT_FRAME_PERIOD for fewer than two frames."""
    if len(sorted_stamps) < 2:
        return DEFAULT_FRAME_PERIOD
    diffs = np.diff(np.asarray(sorted_stamps, dtype=np.float64))
    diffs = diffs[diffs > 0]
    return float(np.median(diffs)) if diffs.size else DEFAULT_FRAME_PERIOD


def _nearest(sorted_stamps: Sequence[float], stamp: float, tolerance: float) -> list[int]:
    pos = bisect.bisect_left(sorted_stamps, stamp)
    best = [p for p in (pos - 1, pos) if 0 <= p < len(sorted_stamps)]
    if not best:
        return []
    nearest = min(best, key=lambda p: abs(sorted_stamps[p] - stamp))
    # a tiny epsilon keeps a stamp exactly half a period away from being lost to rounding
    return [nearest] if abs(sorted_stamps[nearest] - stamp) <= tolerance + 1e-9 else []


def _parse_face(text: str | None) -> int | None:
    text = (text or "").strip()
    return None if text == "" else int(text)


def read_label_csv(path: Path | str, labels: Sequence[str]) -> LabelSet:
    """Read a per-frame (``stamp,label[,face]``) or interval (``start,end,label[,face]``) CSV."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"label file {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if "label" in header and {"start", "end"} <= set(header):
            kind = KIND_INTERVAL
        elif "label" in header and "stamp" in header:
            kind = KIND_PER_FRAME
        else:
            raise ConfigError(f"label file {path} has header {reader.fieldnames}; expected 'stamp,label[,face]' "
                              f"(per frame) or 'start,end,label[,face]' (intervals), see docs/formats.md")
        result = LabelSet(kind, str(path), tuple(labels))
        for line, raw in enumerate(reader, start=2):
            row = {str(k).strip().lower(): (v or "") for k, v in raw.items() if k is not None}
            where = f"{path.name}:{line}"
            try:
                if kind == KIND_INTERVAL:
                    start, end = float(row["start"]), float(row["end"])
                else:
                    start = end = float(row["stamp"])
                face = _parse_face(row.get("face"))
            except (ValueError, KeyError) as exc:
                cells = ",".join(v if isinstance(v, str) else "" for v in raw.values())
                result._bad(where, f"cannot parse '{cells}' ({exc})")
                continue
            if not (math.isfinite(start) and math.isfinite(end)) or end < start:
                result._bad(where, f"stamps {start}..{end} are not a valid range")
                continue
            name = row.get("label", "")
            if not name.strip():
                result._bad(where, "empty label")
                continue
            index = result.resolve(name)
            if index is not None:
                result.rows.append(LabelRow(start, end, index, face, where))
    return result


def _stamp_of(msg: Any) -> float:
    stamp = msg.header.stamp
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def labels_from_messages(messages: Sequence[tuple[int, Any]], msgtype: str, topic: str,
                         labels: Sequence[str]) -> LabelSet:
    """Labels from a bag topic; ``messages`` are (bag time ns, deserialized message) in time order."""
    result = LabelSet(KIND_TOPIC, topic, tuple(labels))
    if msgtype == "std_msgs/msg/String":
        result.kind = KIND_INTERVAL
        for i, (time_ns, msg) in enumerate(messages):
            name = str(msg.data)
            if name.strip().lower() in CLEAR_LABELS:
                continue
            start = time_ns * 1e-9
            end = messages[i + 1][0] * 1e-9 - 1e-9 if i + 1 < len(messages) else math.inf
            index = result.resolve(name)
            if index is not None:
                result.rows.append(LabelRow(start, end, index, None, f"{topic}@{start:.3f}"))
        return result
    result.kind = KIND_PER_FRAME
    for _, msg in messages:
        where = f"{topic}"
        try:
            stamp = _stamp_of(msg)
        except AttributeError:
            result._bad(where, f"{msgtype} has no header; use std_msgs/msg/String or a message with a header")
            continue
        where = f"{topic}@{stamp:.3f}"
        if hasattr(msg, "emotions"):  # an EmotionArray of ground truth
            faces = list(msg.emotions)
            for emo in faces:
                index = result.resolve(str(emo.label))
                if index is not None:
                    face = int(emo.face_id) if len(faces) > 1 else None
                    result.rows.append(LabelRow(stamp, stamp, index, face, where))
            continue
        name = getattr(msg, "label", getattr(msg, "data", None))
        if not isinstance(name, str):
            result._bad(where, f"{msgtype} has no string 'label' or 'data' field")
            continue
        if name.strip().lower() in CLEAR_LABELS:
            continue
        index = result.resolve(name)
        if index is not None:
            face_id = getattr(msg, "face_id", None)
            result.rows.append(LabelRow(stamp, stamp, index, None if face_id is None else int(face_id), where))
    return result
