"""Metrics against hand-computed values; evaluation of real (tiny, trained) checkpoints: tables, confusion PNG,
test-time averaging, Grad-CAM on the right layer and place, occlusion and brightness robustness; the sweep."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from fer_ros.cli import main as cli_main
from fer_ros.errors import ConfigError
from fer_ros_training.data.face_cache import AlignedFace
from fer_ros_training.evaluation import (brightness, cam_layer, evaluate_checkpoint, grad_cam, hflip, last_conv,
                                         occlude, tta_ops)
from fer_ros_training.metrics import classification_report, confusion_matrix
from fer_ros_training.tiny import tiny_checkpoint, tiny_config


def test_confusion_and_report_by_hand():
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 2, 2])
    cm = confusion_matrix(y, p, 4)
    assert cm.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    rep = classification_report(y, p, 4)
    assert rep.accuracy == pytest.approx(4 / 6)
    # F1: class 0 2*2/(4+1) = 0.8; class 1 2/(2+1+1) = 0.5; class 2 2/(2+1) = 2/3; class 3 absent: left out
    assert rep.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert rep.per_class_accuracy[:3] == pytest.approx([2 / 3, 0.5, 1.0]) and np.isnan(rep.per_class_accuracy[3])
    with pytest.raises(ValueError):
        confusion_matrix([0, 5], [0, 1], 4)


def test_perturbations_touch_the_right_places():
    crop = np.full((64, 64, 3), 200, np.uint8)
    lm = np.array([[20, 24], [44, 24], [32, 36], [22, 48], [42, 48]], np.float32)
    eyes = occlude("eyes")(crop, lm)
    mouth = occlude("mouth")(crop, lm)
    changed_eyes = np.argwhere((eyes != crop).any(axis=2))
    changed_mouth = np.argwhere((mouth != crop).any(axis=2))
    assert changed_eyes[:, 0].min() <= 24 <= changed_eyes[:, 0].max() and changed_eyes[:, 0].max() < 36
    assert changed_mouth[:, 0].min() <= 48 <= changed_mouth[:, 0].max() and changed_mouth[:, 0].min() > 36
    canonical = occlude("mouth")(crop, None)
    assert (canonical != crop).any() and (canonical[:30] == crop[:30]).all()
    assert brightness(0.5)(crop, None).max() == 100 and brightness(1.5)(crop, None).max() == 255
    img = np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)
    assert np.array_equal(hflip(hflip(img)), img)
    assert len(tta_ops(2)) == 2 and len(tta_ops(6)) == 6
    with pytest.raises(ConfigError, match="--tta 9: .* 1 .* to 6 copies"):  # 6 copies used, 'x9' printed (14.4)
        tta_ops(9)


def test_grad_cam_highlights_the_evidence():
    """A detector of bright blobs voting for class 0: Grad-CAM of class 0 sits on the blob, of class 1 is empty."""

    class BlobVoter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)
            self.act = torch.nn.ReLU()
            self.fc = torch.nn.Linear(1, 2)
            with torch.no_grad():
                self.conv.weight.fill_(1 / 9)
                self.conv.bias.fill_(-0.5)
                self.fc.weight.copy_(torch.tensor([[1.0], [-1.0]]))
                self.fc.bias.zero_()

        def forward(self, x):
            return self.fc(self.act(self.conv(x)).mean(dim=(2, 3)))

    net = BlobVoter()
    x = torch.zeros(2, 1, 16, 16)
    x[:, :, 2:7, 9:14] = 1.0  # the blob: rows 2..6, columns 9..13
    assert last_conv(net) is net.conv and cam_layer(net, x) is net.act
    cam = grad_cam(net, x, torch.tensor([0, 1]))
    assert cam.shape == (2, 16, 16) and cam.min() >= 0 and cam.max() <= 1
    assert cam[0, 1:8, 8:15].sum() > 0.95 * cam[0].sum() and cam[0, 4, 11] == pytest.approx(1.0)
    assert cam[1].max() == 0  # evidence against class 1 gives no positive map


@pytest.fixture(scope="module")
def rmn_checkpoint(tmp_path_factory):
    return tiny_checkpoint("rmn", quick=True, root=tmp_path_factory.mktemp("tiny"))


def test_evaluate_writes_tables_and_plots(rmn_checkpoint, tmp_path):
    report = evaluate_checkpoint(rmn_checkpoint, tmp_path / "eval", split="test", tta=3, gradcam=6, progress=False)
    for name in ("metrics.csv", "metrics.md", "confusion.csv", "confusion.png", "gradcam.png", "robustness.csv",
                 "robustness.md", "robustness.png"):
        assert (tmp_path / "eval" / name).is_file(), name
    rows = list(csv.DictReader(open(tmp_path / "eval" / "metrics.csv")))
    # which crops were scored is said (14.1): counted by how each face was located, the detector's faces apart
    # (ci_rmn_tiny skips scenes where the detector finds no face, so the test split holds the faces it found)
    scored = sum(report.located.values())
    assert scored >= 3 and set(report.located) <= {"detector", "whole_image"}
    mixed = len(report.located) == 2
    assert [r["mode"] for r in rows] == ["single", "tta3"] + (["single_detector_faces"] if mixed else [])
    assert (report.detected is not None) == mixed and report.tta_copies == 3
    assert "faces: " in (tmp_path / "eval" / "metrics.md").read_text()
    assert float(rows[0]["accuracy"]) == pytest.approx(report.single.accuracy)
    assert {"acc_angry", "acc_neutral", "macro_f1"} <= set(rows[0])
    assert report.single.count == scored and report.single.confusion.sum() == scored
    rob = {r["condition"]: r for r in csv.DictReader(open(tmp_path / "eval" / "robustness.csv"))}
    assert set(rob) == {"clean", "eyes_occluded", "mouth_occluded", "brightness_x0.5", "brightness_x1.5"}
    assert float(rob["clean"]["accuracy"]) == pytest.approx(report.single.accuracy)
    with Image.open(tmp_path / "eval" / "confusion.png") as im:
        assert im.size[0] > 300 and im.size[1] > 300
    assert "| single |" in (tmp_path / "eval" / "metrics.md").read_text()


def test_evaluate_command_on_a_fan_checkpoint(tmp_path, capsys):
    ckpt = tiny_checkpoint("fan", quick=True, root=tmp_path / "tiny")
    assert cli_main(["evaluate", str(ckpt), "--split", "test", "--tta", "2", "--gradcam", "4", "--out",
                     str(tmp_path / "e"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "mouth_occluded" in out and (tmp_path / "e" / "gradcam.png").is_file()


def test_occluding_the_mouth_hurts_a_mouth_reader(tmp_path, tmp_path_factory):
    """On the trained tiny RMN (a real, accurate model) covering the mouth or the eyes costs accuracy."""
    ckpt = tiny_checkpoint("rmn", root=tmp_path_factory.getbasetemp() / "fer_ros_tiny")  # shared with test_training
    report = evaluate_checkpoint(ckpt, tmp_path / "eval", tta=2, gradcam=8, progress=False)
    clean, mouth = report.robustness["clean"].accuracy, report.robustness["mouth_occluded"].accuracy
    eyes = report.robustness["eyes_occluded"].accuracy
    assert clean > 0.5 and mouth < clean and eyes < clean
    assert report.tta is not None and report.tta.count == report.single.count


test_occluding_the_mouth_hurts_a_mouth_reader = pytest.mark.slow(test_occluding_the_mouth_hurts_a_mouth_reader)


def test_sweep_writes_table_and_plot(tmp_path, capsys):
    raw = tiny_config("rmn", quick=True, root=tmp_path / "tiny")
    import yaml

    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump({"base": raw, "sweep": {"optimizer.lr": [0.01, 0.001]}}))
    assert cli_main(["sweep", str(cfg), "--param", "batch_size=8,16", "--out", str(tmp_path / "sw"),
                     "--no-progress"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "sw" / "sweep.csv")))
    assert [(float(r["optimizer.lr"]), int(r["batch_size"])) for r in rows] == [(0.01, 8), (0.01, 16), (0.001, 8),
                                                                                 (0.001, 16)]
    assert all(0 <= float(r["val_accuracy"]) <= 1 for r in rows)
    assert (tmp_path / "sw" / "sweep.png").is_file() and (tmp_path / "sw" / "sweep.md").is_file()
    assert "optimizer.lr" in capsys.readouterr().out


def test_synth_command(tmp_path):
    assert cli_main(["synth", "clips", str(tmp_path / "c"), "--per-class", "1", "--frames", "4"]) == 0
    assert len(list((tmp_path / "c").glob("*/*/000003.png"))) == 7
    assert cli_main(["synth", "fer2013", str(tmp_path / "f.csv"), "--per-class", "2"]) == 0
    assert len((tmp_path / "f.csv").read_text().splitlines()) == 15


def test_perturbed_split_keeps_labels():
    from fer_ros_training.data.prepare import PreparedSplit
    from fer_ros_training.evaluation import perturb_split

    face = AlignedFace(np.full((8, 8, 1), 100, np.uint8), None)
    split = PreparedSplit([face, [face, face]], [1, 2], ["a", "b"])
    out = perturb_split(split, brightness(2.0))
    assert out.labels == [1, 2] and out.faces[0].crop.max() == 200 and out.faces[1][1].crop.max() == 200
    assert face.crop.max() == 100
