"""Scores computed from per-frame results: classification against labels, latency distributions, label flicker.

Pure numpy, no ROS and no pipeline: the offline evaluator and the live replay feed the same functions, so their
reports are comparable number for number.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from fer_ros.classification import classification_report

PERCENTILES = (50, 90, 95, 99)  # latency percentiles reported: median, tail and the p95 the robot target is set on
MIN_TRACK_SECONDS = 1e-6  # a track seen in a single instant has no duration to divide its label changes by


def classification(truth: Sequence[int], predicted: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class accuracy (recall) and confusion matrix (rows = truth, columns = prediction), from
    ``fer_ros.classification`` (the definition training and ``fer-ros evaluate`` use), as the report's JSON.

    Macro-F1 averages the F1 of every class that occurs in the truth or the predictions (a class never labelled and
    never predicted says nothing about the model). Classes without labelled frames get ``null`` per-class accuracy.
    """
    rep = classification_report(np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64),
                                len(labels))
    per_class = {name: {"accuracy": _number(rep.per_class_accuracy[i]),
                        "precision": _number(rep.per_class_precision[i]),
                        "support": int(rep.support[i])} for i, name in enumerate(labels)}
    return {
        "frames": rep.count,
        "accuracy": _number(rep.accuracy),
        "macro_f1": _number(rep.macro_f1),
        "per_class": per_class,
        "confusion_matrix": {"labels": list(labels), "rows_truth_columns_predicted": rep.confusion.tolist()},
    }


def _number(value: float) -> float | None:
    """A float for JSON, None where it is undefined (NaN)."""
    return None if np.isnan(value) else float(value)


def distribution(values: Iterable[float]) -> dict[str, float | int | None]:
    """count, mean, min, max and PERCENTILES of a sample (None entries when it is empty)."""
    arr = np.asarray(list(values), dtype=np.float64)
    out: dict[str, float | int | None] = {"count": int(arr.size)}
    if arr.size == 0:
        out.update({"mean": None, "min": None, "max": None, **{f"p{q}": None for q in PERCENTILES}})
        return out
    out.update({"mean": float(arr.mean()), "min": float(arr.min()), "max": float(arr.max())})
    for q, v in zip(PERCENTILES, np.percentile(arr, PERCENTILES)):
        out[f"p{q}"] = float(v)
    return out


@dataclass
class TrackLabels:
    """The labels one track received over time."""

    stamps: list[float]
    labels: list[str]

    @property
    def changes(self) -> int:
        return sum(1 for a, b in zip(self.labels, self.labels[1:]) if a != b)

    @property
    def seconds(self) -> float:
        return (max(self.stamps) - min(self.stamps)) if self.stamps else 0.0


def flicker(tracks: Mapping[int, TrackLabels]) -> dict[str, Any]:
    """Label changes per second per track, and overall (all changes / all tracked seconds).

    A label that flips back and forth while the face does not change its expression is what a behaviour layer
    reacts to wrongly; smoothing exists to bring this number down without hiding real changes.
    """
    per_track = {}
    changes = 0
    seconds = 0.0
    for track_id, t in sorted(tracks.items()):
        order = np.argsort(t.stamps, kind="stable")
        ordered = TrackLabels([t.stamps[i] for i in order], [t.labels[i] for i in order])
        per_track[str(track_id)] = {
            "frames": len(ordered.labels),
            "seconds": ordered.seconds,
            "changes": ordered.changes,
            "changes_per_s": ordered.changes / ordered.seconds if ordered.seconds > MIN_TRACK_SECONDS else None,
        }
        changes += ordered.changes
        seconds += ordered.seconds
    rates = [v["changes_per_s"] for v in per_track.values() if v["changes_per_s"] is not None]
    return {
        "tracks": len(per_track),
        "changes": changes,
        "tracked_seconds": seconds,
        "changes_per_s": changes / seconds if seconds > MIN_TRACK_SECONDS else None,
        "per_track_changes_per_s": distribution(rates),
        "per_track": per_track,
    }


def histogram(counts: Iterable[int]) -> dict[str, int]:
    """{"0": frames with no face, "1": frames with one face, ...} in increasing order."""
    values = np.asarray(list(counts), dtype=np.int64)
    if values.size == 0:
        return {}
    return {str(k): int(v) for k, v in enumerate(np.bincount(values)) if v}
