"""Issue 14.10: eval-bag's report is for people: latency rows in pipeline order, no Python dicts in report.md, label
file problems on the console as well as in the report. A real bag of the astronaut photograph, a real pipeline."""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from fer_ros.bag.make_bag import ImageBagWriter
from fer_ros.cli import main

TOPIC = "/camera/image_raw/compressed"


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("readable")
    face = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (320, 240))
    with ImageBagWriter(root / "bag", TOPIC, compressed="jpeg") as writer:
        for i in range(6):
            writer.add_frame(np.roll(face, 4 * i, axis=1), stamp_ns=5_000_000_000 + i * 100_000_000)
    (root / "labels.csv").write_text("start,end,label\n5.0,5.25,happy\n5.25,6.0,neutral\n5.0,6.0,joy\nsoon,later,sad\n")
    return root, str(root / "labels.csv")


def test_report_reads_as_text(scored, capsys):
    root, labels = scored
    assert main(["eval-bag", str(root / "bag"), "--topic", TOPIC, "--labels", labels, "--out", str(root / "r"),
                 "--no-progress"]) == 0
    console = capsys.readouterr().out
    assert re.search(r"labels .*labels.csv: unknown label names \(joy 1\), 1 invalid rows \(labels.csv:5: cannot "
                     r"parse 'soon,later,sad'", console), console
    md = (root / "r" / "report.md").read_text()
    assert "{" not in md and "}" not in md, md  # no Python dict or set printed into the report
    assert "Label problems: unknown label names (joy 1)" in md
    stages = re.findall(r"^\| (\w+_ms) \|", md, flags=re.M)
    assert stages == ["decode_ms", "detect_ms", "landmarks_ms", "track_ms", "align_ms", "infer_ms", "temporal_ms",
                      "total_ms", "processing_latency_ms"]
    assert "frames with 1 faces 6" in md
    for figure in ("confusion.png", "flicker.png", "faces_per_frame.png", "latency.png"):
        assert (root / "r" / figure).is_file()
