"""Issue 14.12: classification metrics, the confusion figure and tables are written once and used by training,
``fer-ros evaluate`` and the bag reports alike, so the same predictions give the same numbers and look the same."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from skimage import io

from fer_ros.bag.metrics import classification
from fer_ros.classification import classification_report
from fer_ros.confusion_plot import plot_confusion
from fer_ros.tables import markdown_table, write_table
from fer_ros_training.metrics import classification_report as training_report

LABELS = ("angry", "happy", "neutral", "sad")


def test_bag_and_training_metrics_are_one_definition():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 200)  # "sad" never labelled
    predicted = np.where(rng.random(200) < 0.7, truth, rng.integers(0, 4, 200))
    rep = classification_report(truth, predicted, len(LABELS))
    bag = classification(truth.tolist(), predicted.tolist(), LABELS)
    assert training_report is classification_report
    assert bag["accuracy"] == rep.accuracy and bag["macro_f1"] == rep.macro_f1 and bag["frames"] == 200
    assert bag["confusion_matrix"]["rows_truth_columns_predicted"] == rep.confusion.tolist()
    assert bag["per_class"]["sad"]["accuracy"] is None and bag["per_class"]["sad"]["support"] == 0
    for i, name in enumerate(LABELS[:3]):
        assert bag["per_class"][name]["accuracy"] == pytest.approx(rep.per_class_accuracy[i])


def test_precision_recall_and_macro_f1_by_hand():
    # truth:     a a a h h n ; predicted: a a h h h s
    rep = classification_report(np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 1, 3]), 4)
    assert rep.accuracy == pytest.approx(4 / 6)
    np.testing.assert_allclose(rep.per_class_precision, [1.0, 2 / 3, np.nan, 0.0])
    np.testing.assert_allclose(rep.per_class_accuracy, [2 / 3, 1.0, 0.0, np.nan])
    f1 = [2 * 2 / (3 + 2), 2 * 2 / (2 + 3), 0.0, 0.0]  # 2 tp / (support + predicted), every class present
    assert rep.macro_f1 == pytest.approx(np.mean(f1))
    assert rep.support.tolist() == [3, 2, 1, 0]


def test_one_table_writer(tmp_path):
    rows = [{"model": "a", "accuracy": 0.91234, "f1": None}, {"model": "b", "accuracy": float("nan"), "f1": 0.5}]
    write_table(rows, tmp_path / "t.csv", tmp_path / "t.md")
    assert list(csv.DictReader(open(tmp_path / "t.csv")))[0] == {"model": "a", "accuracy": "0.91234", "f1": ""}
    assert (tmp_path / "t.md").read_text().splitlines() == [
        "| model | accuracy | f1 |", "|---|---|---|", "| a | 0.9123 | n/a |", "| b | n/a | 0.5000 |"]
    assert markdown_table(("x",), [(1.23456,)], lambda v, c: f"{v:.1f}")[-1] == "| 1.2 |"


def test_confusion_figure_is_normalised_with_a_colour_bar(tmp_path):
    cm = np.array([[8, 2], [0, 0]])
    path = plot_confusion(cm, ("happy", "sad"), tmp_path / "c.png", "model x, fer-ros eval-bag (offline)")
    image = io.imread(path)
    assert image.ndim == 3 and image.shape[1] > image.shape[0] * 1.05  # the colour bar widens the square matrix
