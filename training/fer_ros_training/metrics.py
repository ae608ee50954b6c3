"""Classification metrics of training and evaluation: ``fer_ros.classification`` (one implementation for training,
``fer-ros evaluate``, ``fer-ros compare`` and the bag evaluator; it lives in the runtime package because eval-bag runs
without torch). Kept as an import path for existing code."""
from fer_ros.classification import ClassificationReport, classification_report, confusion_matrix

__all__ = ["ClassificationReport", "classification_report", "confusion_matrix"]
