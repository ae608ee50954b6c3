"""Classification metrics as the seeds report them: accuracy, macro-F1, per-class accuracy and precision, confusion.

The one implementation used by training (per epoch), ``fer-ros evaluate``, ``fer-ros compare`` and the bag evaluator
(``fer_ros.bag.metrics``), so their numbers agree by construction. Plain numpy on integer labels: it runs on the robot
without scikit-learn (not installed there, nor in the venv). A class absent from both targets and predictions has no
defined F1: it is left out of the macro average (and its per-class accuracy is NaN), which is what scikit-learn's
``f1_score(average="macro", labels=present)`` gives.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; row = true class, column = predicted class."""
    t = np.asarray(targets, dtype=np.int64).ravel()
    p = np.asarray(predictions, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"{t.size} targets but {p.size} predictions")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class ClassificationReport:
    accuracy: float
    macro_f1: float
    per_class_accuracy: np.ndarray  # recall of each class; NaN where the class has no sample
    per_class_f1: np.ndarray  # NaN where the class appears in neither targets nor predictions
    confusion: np.ndarray
    count: int
    per_class_precision: np.ndarray  # NaN where the class is never predicted

    @property
    def support(self) -> np.ndarray:
        """Samples of each true class (the confusion matrix's row sums)."""
        return self.confusion.sum(axis=1)

    def as_dict(self, labels: tuple[str, ...] | list[str]) -> dict[str, float | int]:
        out: dict[str, float | int] = {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "count": self.count}
        out.update({f"acc_{name}": float(v) for name, v in zip(labels, self.per_class_accuracy)})
        return out


def classification_report(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> ClassificationReport:
    """All the seeds' figures from one confusion matrix."""
    cm = confusion_matrix(targets, predictions, num_classes).astype(np.float64)
    total = cm.sum()
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        denom = 2 * tp + (support - tp) + (predicted - tp)
        f1 = np.where(denom > 0, 2 * tp / denom, np.nan)
    present = ~np.isnan(f1)
    return ClassificationReport(
        accuracy=float(tp.sum() / total) if total else float("nan"),
        macro_f1=float(f1[present].mean()) if present.any() else float("nan"),
        per_class_accuracy=recall,
        per_class_f1=f1,
        confusion=cm.astype(np.int64),
        count=int(total),
        per_class_precision=precision,
    )
