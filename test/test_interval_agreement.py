"""Issue 14.11: an interval CSV ``start,end,label`` means the same frames to ``fer-ros annotate --headless`` and to
``fer-ros eval-bag``: every frame with start <= stamp <= end, also for a span that begins before the recording or
ends between frames. A real video written with OpenCV, and the bag made from it."""
from __future__ import annotations

import cv2
import numpy as np
from skimage import data

from fer_ros.annotate.headless import apply_label_file
from fer_ros.annotate.sources import open_source
from fer_ros.bag.labels import read_label_csv
from fer_ros.cli import main
from fer_ros.model_card import FER2013_LABELS


def test_annotate_and_eval_bag_label_the_same_frames(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    face = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (160, 120))
    for i in range(10):
        writer.write(np.roll(face, 3 * i, axis=1))
    writer.release()
    csv_path = tmp_path / "labels.csv"  # frames at 0.0, 0.1, ... 0.9 s
    csv_path.write_text("start,end,label\n-1.0,0.15,happy\n0.42,0.61,sad\n0.3,0.3,fear\n2.0,3.0,angry\n")
    assert main(["make-bag", str(video), "--out", str(tmp_path / "bag"), "--no-progress"]) == 0
    for source_path in (video, tmp_path / "bag"):
        with open_source(source_path) as source:
            report = apply_label_file(source, csv_path, FER2013_LABELS)
            by_eval_bag = read_label_csv(csv_path, FER2013_LABELS).assign(source.stamps.tolist())
        spans = [(c.start, c.end) if c.valid else None for c in report.clips]
        assert spans == [(0, 1), (5, 6), (3, 3), None], (source_path, spans)
        assert "no frame" in report.clips[3].problems[0]
        labelled = {i: FER2013_LABELS[fl.label] for i, fls in by_eval_bag.items() for fl in fls}
        assert labelled == {0: "happy", 1: "happy", 3: "fear", 5: "sad", 6: "sad"}
