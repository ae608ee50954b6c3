"""The trainer for real: tiny RMN and FAN learn synthetic expressions well above chance, a resumed run ends exactly
where an uninterrupted one does, early stopping, bad-input policy, logs and checkpoints, the CLI, and DDP via torchrun
(one CPU process, gloo)."""
from __future__ import annotations

import copy
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from fer_ros.cli import main as cli_main
from fer_ros_training.data.bad_input import BadInputError
from fer_ros_training.tiny import tiny_checkpoint, tiny_config
from fer_ros_training.train_config import config_from_dict
from fer_ros_training.trainer import load_checkpoint, train

CHANCE = 1 / 7
# Held-out accuracy the tiny networks must reach on synthetic data. Measured on this machine: RMN 0.92, FAN 0.83.
MIN_HELD_OUT_ACCURACY = 0.5


def _quick(tmp_path: Path, kind: str = "rmn", **changes) -> dict:
    raw = tiny_config(kind, quick=True, root=tmp_path.parent / "fer_ros_tiny_shared")
    raw = copy.deepcopy(raw)
    for k, v in changes.items():
        node = raw
        keys = k.split(".")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = v
    return raw


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rmn", "fan"])
def test_tiny_network_learns_synthetic_expressions(tmp_path_factory, kind):
    # trained once per test session into the session's temp folder; test_evaluation.py reuses the RMN checkpoint
    best = tiny_checkpoint(kind, root=tmp_path_factory.getbasetemp() / "fer_ros_tiny")
    summary = yaml.safe_load((best.parent / "summary.yaml").read_text())
    acc = summary["test"]["accuracy"]
    assert acc >= MIN_HELD_OUT_ACCURACY, f"{kind}: held-out accuracy {acc:.3f} (chance {CHANCE:.3f})"
    history = load_checkpoint(best.parent / "last.pt")["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # faces found as the node finds them: scenes without one are left out (no_face: skip), nothing else is bad input
    assert summary["items"]["test"] >= 40 and set(summary["bad_input"]) <= {"no_face", "clip_no_face"}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path):
    raw = _quick(tmp_path, epochs=3)  # RMN with dropout, plateau scheduler, augmentation: every RNG is exercised
    full = train(config_from_dict(raw), run_dir=tmp_path / "full", progress=False)
    part = train(config_from_dict(raw), run_dir=tmp_path / "part", stop_after=1, progress=False)
    assert part.epochs_run == 1 and load_checkpoint(part.last_checkpoint)["epoch"] == 1
    resumed = train(config_from_dict(raw), resume=tmp_path / "part" / "last.pt", progress=False)
    assert resumed.run_dir == tmp_path / "part"
    a, b = _weights(full.last_checkpoint), _weights(resumed.last_checkpoint)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in full.history]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history]
    assert full.test == resumed.test
    # a resume that would train nothing says so (issue 14.4: --epochs-now 1 on a run past epoch 1 ran nothing, silently)
    part2 = train(config_from_dict(raw), run_dir=tmp_path / "part2", stop_after=2, progress=False)
    from fer_ros.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--epochs-now 1 counts .* completed 2 of 3: give a number above 2"):
        train(config_from_dict(raw), resume=part2.last_checkpoint, stop_after=1, progress=False)
    with pytest.raises(ConfigError, match="completed all 3 epochs of its run: nothing to resume"):
        train(config_from_dict(raw), resume=full.last_checkpoint, progress=False)


def test_run_folder_checkpoint_and_logs(tmp_path):
    raw = _quick(tmp_path, epochs=2)
    result = train(config_from_dict(raw), run_dir=tmp_path / "run", progress=False)
    run = tmp_path / "run"
    ckpt = load_checkpoint(result.last_checkpoint)
    assert {"model", "optimizer", "scheduler", "epoch", "config", "best_metric", "best_epoch", "history",
            "card"} <= set(ckpt)
    assert ckpt["epoch"] == 2 and ckpt["config"]["name"] == raw["name"]
    assert ckpt["card"]["input"]["height"] == 64 and ckpt["card"]["labels"][0] == "angry"
    assert yaml.safe_load((run / "config.yaml").read_text()) == ckpt["config"]
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and "val_accuracy" in rows[0]
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert (run / "bad_input.csv").is_file() and (run / "best.pt").is_file()
    # the folder is never overwritten: a second run of the same name goes beside it
    again = train(config_from_dict(raw), runs_root=tmp_path / "runs", progress=False)
    third = train(config_from_dict(raw), runs_root=tmp_path / "runs", progress=False)
    assert again.run_dir.name == raw["name"] and third.run_dir.name == raw["name"] + "-2"


@pytest.mark.parametrize("window", [None, 5])
def test_fan_card_window_is_what_the_node_aggregates(tmp_path, window):
    """One rule from training to the robot: the card's window is the aggregator's capacity (what fer_ros.temporal
    buffers per track); the K = 3 segments of training are recorded apart, as training.segments."""
    from fer_ros.inference import create_backend
    from fer_ros.model_card import load_card
    from fer_ros.temporal import TemporalStage
    from fer_ros_training.export.face_samples import load_faces
    from fer_ros_training.networks.fan import FAN_WINDOW

    raw = _quick(tmp_path, "fan")
    if window:
        raw["network"]["kwargs"] = {"window": window}
    expected = window or FAN_WINDOW
    cfg = config_from_dict(raw)
    assert cfg.card_dict()["temporal"] == {"window": expected}  # the config alone knows the window
    result = train(cfg, run_dir=tmp_path / "run", progress=False)
    ckpt = load_checkpoint(result.best_checkpoint)
    assert ckpt["card"]["temporal"] == {"window": expected, "embedding_dim": 64}
    assert ckpt["card"]["training"] == {"segments": 3}

    assert cli_main(["export", str(result.best_checkpoint), "--out", str(tmp_path / "fan"),
                     "--num-faces", "4"]) == 0
    card = load_card(tmp_path / "fan")
    assert card.window == expected and card.embedding_dim == 64 and card.extra["training"] == {"segments": 3}
    stage = TemporalStage(create_backend(card, "onnxruntime"))
    assert stage.window == card.window
    face = load_faces(card, None, builtin_count=1).inputs[:1]  # a real aligned face
    used = [int(stage.run([7], face).frames_used[0]) for _ in range(expected + 2)]
    assert used == list(range(1, expected + 1)) + [expected, expected]  # fills up to the card's window, no further


def test_early_stopping_and_plateau(tmp_path):
    raw = _quick(tmp_path, epochs=10, early_stopping=2)
    raw["optimizer"] = {"name": "sgd", "lr": 0.0}
    raw["scheduler"] = {"name": "plateau", "factor": 0.5, "patience": 0}
    result = train(config_from_dict(raw), run_dir=tmp_path / "run", progress=False)
    assert result.stopped_early and result.epochs_run == 3 and result.best_epoch == 1


def test_multistep_schedule_of_the_fan_recipe():
    from fer_ros_training.train_config import load_config
    from fer_ros_training.trainer import build_optimizer, build_scheduler

    cfg = load_config("fan")
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(cfg, model)
    sched = build_scheduler(cfg, opt)
    lrs = []
    for _ in range(cfg.epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[249] == pytest.approx(0.1) and lrs[250] == pytest.approx(0.02)
    assert cfg.epochs == 500 and cfg.optimizer.momentum == 0.9 and cfg.optimizer.weight_decay == 1e-4


def test_rmn_recipe_is_the_seed_recipe():
    from fer_ros_training.train_config import load_config

    cfg = load_config("rmn")
    assert (cfg.batch_size, cfg.optimizer.lr, cfg.optimizer.momentum, cfg.optimizer.weight_decay) == (48, 1e-4, 0.9,
                                                                                                       1e-3)
    assert (cfg.scheduler.name, cfg.scheduler.factor, cfg.scheduler.patience) == ("plateau", 0.1, 2)
    assert cfg.early_stopping == 8 and cfg.epochs == 50 and (cfg.input.height, cfg.input.width) == (224, 224)


def test_bad_input_stops_or_is_counted(tmp_path):
    raw = _quick(tmp_path, epochs=1)
    train(config_from_dict(raw), run_dir=tmp_path / "warm", progress=False)  # writes the synthetic data
    root = Path(raw["data"]["root"])
    broken = tmp_path / "data"
    import shutil

    shutil.copytree(root, broken)
    (broken / "sad" / "zz_broken.png").write_bytes(b"not an image")
    with open(broken / "split.csv", "a") as f:
        f.write("sad/zz_broken.png,train\n")
    raw["data"]["root"] = str(broken)
    raw["data"]["no_face"] = "whole_image"  # no image without a detected face is bad input: only the broken file is
    result = train(config_from_dict(raw), run_dir=tmp_path / "skip", progress=False)
    rows = list(csv.DictReader(open(result.run_dir / "bad_input.csv")))
    assert [(r["kind"], Path(r["file"]).name) for r in rows] == [("corrupt_image", "zz_broken.png")]
    raw["data"]["on_bad_input"] = "stop"
    with pytest.raises(BadInputError, match="zz_broken.png"):
        train(config_from_dict(raw), run_dir=tmp_path / "stop", progress=False)


def test_train_command_and_overrides(tmp_path, capsys):
    raw = _quick(tmp_path, epochs=1)
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    assert cli_main(["train", str(cfg_path), "--set", "optimizer.lr=0.01", "--run-dir", str(tmp_path / "r"),
                     "--no-progress"]) == 0
    assert "best epoch 1" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "r" / "last.pt")["config"]["optimizer"]["lr"] == 0.01
    capsys.readouterr()
    assert cli_main(["train", str(cfg_path), "--set", "optimizer.learning_rate=1"]) == 2
    assert "fer-ros train: error: optimizer has unknown keys ['learning_rate']" in capsys.readouterr().err


def test_every_config_section_is_checked_before_any_data_is_prepared(tmp_path):
    """One key check for every section (config_keys): misspelt or malformed sections stop at config time with the
    section's name, the unknown keys and the known ones; data.augment too, not only once training starts."""
    from fer_ros.errors import ConfigError
    from fer_ros_training.train_config import resolve_config_path

    raw = _quick(tmp_path)
    feratt = yaml.safe_load(resolve_config_path("compare_ci_feratt_tiny").read_text())
    cases = [
        (raw, {"data.augment": {"rotate": 10}}, r"data.augment has unknown keys \['rotate'\]; known: \[.*'rotation'"),
        (raw, {"data.augment": ["hflip"]}, "data.augment must be a mapping"),
        (raw, {"data.cache": None}, r"data has unknown keys \['cache'\]"),
        (raw, {"optimizer": "adam"}, "optimizer must be a mapping"),
        (raw, {"scheduler.patience_epochs": 2}, r"scheduler has unknown keys \['patience_epochs'\]"),
        (raw, {"optimiser.lr": 0.1}, r"config has unknown keys \['optimiser'\]"),
        (feratt, {"background.grey": [0, 255]}, r"background has unknown keys \['grey'\]"),
        (feratt, {"background": 0.5}, "background must be a mapping"),
    ]
    for base, overrides, match in cases:
        with pytest.raises(ConfigError, match=match):
            config_from_dict(base, overrides)
    with pytest.raises(ConfigError, match="config must be a mapping"):
        config_from_dict(["name", "x"])


@pytest.mark.slow
@pytest.mark.parametrize("network", ["rmn", "feratt"])
def test_ddp_through_torchrun_on_one_cpu_process(tmp_path, network):
    raw = _quick(tmp_path, epochs=1)
    if network == "feratt":  # its own joint loss: DDP wraps the network together with that loss
        from fer_ros_training.train_config import resolve_config_path

        raw = yaml.safe_load(resolve_config_path("compare_ci_feratt_tiny").read_text())
        raw["data"]["root"] = str(tmp_path.parent / "fer_ros_tiny_shared" / "feratt_ddp")
    raw["device"] = "cpu"
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                           "-m", "fer_ros.cli", "train", str(cfg_path), "--run-dir", str(tmp_path / "ddp"),
                           "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert ckpt["epoch"] == 1 and not any(k.startswith(("module.", "network.")) for k in ckpt["model"])
    if network == "feratt":
        assert ckpt["history"][0]["train_attention_loss"] > 0


def test_multi_input_fusion_network_trains(tmp_path):
    """The fusion network's three inputs (gray crop, 68 mesh landmarks, HOG) flow through the trainer."""
    from fer_ros_training import features

    raw = _quick(tmp_path, epochs=1)
    raw.update(name="fusion_quick", network={"name": "fusion"},
               input={"height": 48, "width": 48, "color": "gray", "mean": [0.5], "std": [0.5]},
               optimizer={"name": "adam", "lr": 1e-3})
    before = features.FUSION_LANDMARK_STATS.meshed
    result = train(config_from_dict(raw), run_dir=tmp_path / "run", progress=False)
    assert result.epochs_run == 1 and result.history[0]["train_loss"] > 0
    assert features.FUSION_LANDMARK_STATS.meshed > before  # the mesh found the drawn faces in the crops


def test_landmark_regression_head_is_trained(tmp_path):
    raw = _quick(tmp_path, epochs=2, landmark_loss_weight=1.0)
    raw.update(name="resnet_lm", network={"name": "resnet18", "kwargs": {"landmark_points": 5, "widths": [8, 16, 32, 64],
                                                                         "layers": [1, 1, 1, 1]}})
    result = train(config_from_dict(raw), run_dir=tmp_path / "run", progress=False)
    first = load_checkpoint(result.last_checkpoint)["model"]
    assert any(k.startswith("landmark_head") for k in first)
    raw["network"]["kwargs"]["landmark_points"] = 3
    with pytest.raises(ValueError, match="landmark_points=5"):
        train(config_from_dict(raw), run_dir=tmp_path / "bad", progress=False)


@pytest.mark.parametrize("config", ["ci_rmn_tiny", "compare_small_feratt"])
def test_a_mistyped_data_root_is_an_error_naming_it_not_a_generated_data_set(tmp_path, config, capsys):
    """Issue 14.2: ``--set data.root=/nonexist`` on a config with a data.synthetic section generated faces at the
    mistyped path and trained on them. A root given on the command line is the user's data."""
    missing = tmp_path / "nonexist"
    assert cli_main(["train", config, "--set", f"data.root={missing}", "--out", str(tmp_path / "run"),
                     "--no-progress"]) == 2
    assert f"fer-ros train: error: data.root {missing} does not exist" in capsys.readouterr().err
    assert not missing.exists()
    # nothing was trained, so no run folder is left to block the corrected command ("--out exists")
    assert not (tmp_path / "run").exists()
    # generating is still there when asked for: the override names the synthetic section too
    cfg = config_from_dict(yaml.safe_load(open(f"training/fer_ros_training/configs/{config}.yaml")),
                           {"data.root": str(missing), "data.synthetic.per_class": 1})
    assert cfg.data.synthetic["per_class"] == 1
