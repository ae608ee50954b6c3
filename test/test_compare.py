"""``fer-ros compare`` on the two tiny CI configs: every column of the table, the plots, the saved configs, loading
instead of retraining, and the perturbations the robustness columns use."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
import yaml

from aligned_synthetic import aligned_synthetic_faces
from fer_ros.cli import main
from fer_ros_training.commands.compare import (BENCH_BATCHES, NO_GPU, PERTURBATIONS, occlude_eyes, occlude_mouth,
                                               scale_brightness)

CONFIGS = ["compare_ci_feratt_tiny", "compare_ci_inception_resnet_tiny"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    out, data = root / "out", root / "data"
    # --data is the user's data: it must exist (a missing one is an error, not a generated data set)
    assert main(["synth", "images", str(data), "--per-class", "6", "--image-size", "96"]) == 0
    assert main(["compare", "--data", str(data), "--configs", *CONFIGS, "--out", str(out), "--repeats", "3"]) == 0
    return out, data


def test_every_column_for_every_model(study):
    out, _ = study
    with open(out / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == CONFIGS
    expected = (["parameters", "GFLOPs/face", "ONNX MB", "train s/epoch", "accuracy", "macro-F1", "loss", "epochs"]
                + [f"CPU ms/face b{b}" for b in BENCH_BATCHES] + [f"GPU ms/face b{b}" for b in BENCH_BATCHES]
                + [f"acc {n}" for n in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")]
                + [f"acc {p.replace('_', ' ')}" for p in PERTURBATIONS])
    for row in rows:
        missing = [c for c in expected if row.get(c) in (None, "")]
        assert not missing, missing
        for c in ("parameters", "GFLOPs/face", "ONNX MB", "train s/epoch", *(f"CPU ms/face b{b}" for b in BENCH_BATCHES)):
            assert float(row[c]) > 0, c
        for c in ("accuracy", "macro-F1", *(f"acc {p.replace('_', ' ')}" for p in PERTURBATIONS)):
            assert 0 <= float(row[c]) <= 1, c
        per_class = [float(row[f"acc {n}"]) for n in ("angry", "happy", "neutral")]
        assert all(math.isnan(v) or 0 <= v <= 1 for v in per_class)
        if not torch.cuda.is_available():
            assert row["GPU ms/face b1"] == NO_GPU
        assert row["epochs"] == "1"
    feratt, irv1 = rows
    assert float(feratt["GFLOPs/face"]) > float(irv1["GFLOPs/face"])  # tiny FERAtt runs two full-resolution paths
    # FERAtt is trained with its joint loss (the run's metrics log the attention term), the others with CE
    assert feratt["loss"] == "10*L_att + CE" and irv1["loss"] == "CE"
    with open(out / "runs" / CONFIGS[0] / "metrics.csv") as f:
        assert float(next(csv.DictReader(f))["train_attention_loss"]) > 0
    md = (out / "comparison.md").read_text()
    assert "fer-ros compare" in md and all(name in md for name in CONFIGS)
    assert NO_GPU in md or torch.cuda.is_available()


def test_plots_configs_and_exports_are_written(study):
    out, data = study
    import matplotlib.image as mpimg

    for name in ("cost", "accuracy", "robustness", "tradeoff"):
        img = mpimg.imread(out / f"{name}.png")
        assert img.shape[0] > 200 and img.shape[1] > 300 and img[..., :3].std() > 0.01  # a drawn chart, not blank
    meta = yaml.safe_load((out / "compare.yaml").read_text())
    assert meta["configs"] == CONFIGS and "torch" in meta["versions"]
    for name in CONFIGS:
        saved = yaml.safe_load((out / "configs" / f"{name}.yaml").read_text())
        assert saved["data"]["root"] == str(data) and saved["name"] == name
        card = yaml.safe_load((out / "models" / name / "model.yaml").read_text())
        assert card["parity"]["model"]["max_abs_diff"] <= 1e-4 and (out / "models" / name / "model.onnx").is_file()


def test_rerun_loads_the_runs_and_refuses_a_changed_config(study, capsys):
    out, data = study
    best = out / "runs" / CONFIGS[1] / "best.pt"
    stamp = best.stat().st_mtime_ns
    assert main(["compare", "--data", str(data), "--configs", CONFIGS[1], "--out", str(out), "--repeats", "2"]) == 0
    assert best.stat().st_mtime_ns == stamp  # loaded, not retrained
    capsys.readouterr()
    assert main(["compare", "--data", str(data), "--configs", CONFIGS[1], "--out", str(out), "--epochs", "2"]) == 2
    assert "--retrain" in capsys.readouterr().err  # one line from the CLI's handler, exit 2
    assert main(["compare", "--configs", CONFIGS[0], CONFIGS[0], "--out", str(out)]) == 2
    assert "must differ" in capsys.readouterr().err


def test_perturbations_hit_the_right_parts():
    faces, _ = aligned_synthetic_faces(3, side=96, seed=4)
    for face in faces:
        crop, lm = face.crop, face.landmarks
        eyes, mouth = occlude_eyes(crop, lm), occlude_mouth(crop, lm)
        at = lambda img, p: img[int(round(p[1])), int(round(p[0]))]  # noqa: E731
        assert not at(eyes, lm[0]).any() and not at(eyes, lm[1]).any() and at(eyes, lm[3]).any()
        assert not at(mouth, (lm[3] + lm[4]) / 2).any() and at(mouth, lm[0]).any()
        assert 0.03 < (eyes != crop).any(axis=2).mean() < 0.3 and 0.02 < (mouth != crop).any(axis=2).mean() < 0.3
        dark, bright = scale_brightness(crop, 0.5), scale_brightness(crop, 1.5)
        assert abs(dark.mean() - 0.5 * crop.mean()) < 1 and bright.mean() > crop.mean()
        assert np.array_equal(scale_brightness(crop, 1.0), crop)
