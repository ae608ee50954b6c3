"""The ``fer-ros`` command line as a user meets it (issue 14, items 6 and 7), run as real processes.

- every subcommand, given a mistake a user makes, prints one line ``fer-ros <command>: error: ...`` and exits 2 (the
  table must name every subcommand, so a new one cannot be added without its case);
- an unexpected exception keeps its traceback; ``FER_ROS_TRACEBACK=1`` shows it for a known error too;
- Ctrl-C during training exits 130 and prints the epoch and the resume command, which then continues the run;
- ``--version``, deprecated flag spellings, and help text with defaults for every option of every subcommand.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_ros import __version__
from fer_ros.cli import COMMANDS, build_parser

REPO = Path(__file__).resolve().parent.parent
ONNX_MODEL = REPO / "models" / "mini_xception_fer2013" / "model.onnx"

# (subcommand, arguments after it, environment additions, text the error line must hold)
ERROR_CASES = [
    ("doctor", ["--no-such-flag"], {}, "unrecognized arguments: --no-such-flag (see 'fer-ros doctor --help')"),
    ("demo", [], {"ROS_DOMAIN_ID": "x"}, "ROS_DOMAIN_ID='x' is not a domain id"),
    ("run-image", [], {}, "no image given: give image files or --sample"),
    ("run-image", ["--model", "no_such_model", "--sample"], {}, "no model 'no_such_model'"),
    ("convert-default-model", ["--hdf5", "missing.h5", "--out", "converted"], {}, "missing.h5"),
    ("make-bag", ["missing.mp4", "--out", "bag"], {}, "missing.mp4 does not exist"),
    ("eval-bag", ["missing_bag", "--topic", "/camera/image_raw", "--out", "report"], {}, "missing_bag does not exist"),
    ("replay", ["missing_bag", "--topic", "/camera/image_raw", "--out", "report"], {}, "missing_bag does not exist"),
    ("annotate", ["missing.mp4", "--headless"], {}, "missing.mp4 does not exist"),
    ("annotate", ["clip.avi", "--labels", "happy,sad"], {}, "class names are set with --classes"),
    ("train", ["ci_rmn_tiny", "--set", "optimizer.lr=abc"], {}, "optimizer.lr must be a number, got 'abc'"),
    ("train", ["ci_rmn_tiny", "--set", "epochs=2.5"], {}, "epochs must be an integer, got 2.5"),
    ("evaluate", ["labels.csv"], {}, "labels.csv is a CSV file, not a training checkpoint"),
    ("evaluate", [str(ONNX_MODEL)], {}, "is an exported ONNX model, not a training checkpoint"),
    ("evaluate", ["random.pt"], {}, "random.pt is not a torch checkpoint"),
    ("sweep", ["ci_rmn_tiny", "--param", "optimizer.lr=0.01,abc", "--out", "sweep"], {},
     "optimizer.lr must be a number"),
    ("synth", ["images", "synthetic", "--val", "1.5"], {}, "split fractions val=1.5"),
    ("export", ["labels.csv", "--out", "exported"], {}, "labels.csv is a CSV file, not a training checkpoint"),
    ("build-engine", ["--model", "no_such_model"], {}, "no model 'no_such_model'"),
    ("validate-engine", ["no_such_model"], {}, "no model 'no_such_model'"),
    ("import-rmn", ["missing.pt", "--out", "rmn"], {}, "checkpoint missing.pt does not exist"),
    ("compare", ["--configs", "no_such.yaml", "--out", "compared"], {}, "no config file no_such.yaml"),
]


def fer_ros(args: list[str], cwd: Path, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """``fer-ros ARGS`` as a user runs it (the console script's module), in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "fer_ros.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def user_files(tmp_path_factory) -> Path:
    """A folder holding what a user has at hand: a label CSV, a file of random bytes named .pt, a short video."""
    import cv2
    import numpy as np

    root = tmp_path_factory.mktemp("user")
    (root / "labels.csv").write_text("start,end,label\n0.0,1.0,happy\n")
    (root / "random.pt").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    writer = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return root


def test_every_subcommand_has_an_error_case():
    assert {case[0] for case in ERROR_CASES} == set(COMMANDS)


@pytest.mark.parametrize("command, args, env, expected", ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_a_known_error_is_one_line_and_exit_2(user_files, command, args, env, expected):
    proc = fer_ros([command, *args], cwd=user_files, env=env)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"fer-ros {command}: error: ") and expected in lines[0], lines[0]


def test_known_error_traceback_on_request(user_files):
    proc = fer_ros(["evaluate", "labels.csv"], cwd=user_files, env={"FER_ROS_TRACEBACK": "1"})
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "ModelLoadError" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("fer-ros evaluate: error: labels.csv is a CSV file")


def test_an_unexpected_exception_keeps_its_traceback(tmp_path):
    """A subcommand whose code has a bug (here: a real module raising ZeroDivisionError) is not reduced to a line."""
    (tmp_path / "buggy_command.py").write_text("def add_arguments(parser):\n    pass\n\n\n"
                                              "def run(args):\n    return 1 // 0\n")
    script = ("import sys; from fer_ros import cli; "
              "cli.COMMANDS['buggy'] = ('buggy_command', 'a subcommand with a bug'); sys.exit(cli.main())")
    proc = subprocess.run([sys.executable, "-c", script, "buggy"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
                          timeout=120)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ZeroDivisionError" in proc.stderr and "error:" not in proc.stderr


def test_version(tmp_path):
    proc = fer_ros(["--version"], cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"fer-ros {__version__}"


def _option_actions(command: str) -> list[argparse.Action]:
    parser = build_parser([command])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices[command]._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_has_help_with_its_default(command):
    from fer_ros.cli_options import HelpFormatter

    formatter = HelpFormatter("fer-ros")
    for action in _option_actions(command):
        assert action.help, f"fer-ros {command} {action.option_strings[0]} has no help"
        text = formatter._expand_help(action)
        if action.default not in (None, False, [], "", argparse.SUPPRESS):
            assert "default" in text, f"fer-ros {command} {action.option_strings[0]}: {text}"


def test_one_meaning_per_flag_name():
    """Flags that name a kind of value take that kind everywhere: --labels a label file, --classes names, --out a
    folder, --checkpoint only as a deprecated spelling of the positional checkpoint."""
    seen: dict[str, dict[str, str]] = {}
    for command in COMMANDS:
        for action in _option_actions(command):
            for flag in action.option_strings:
                seen.setdefault(flag, {})[command] = action.help or ""
    for command, text in seen["--labels"].items():
        assert "label" in text.lower() and ("csv" in text.lower() or "file" in text.lower()) or "deprecated" in text, \
            (command, text)
    assert set(seen["--classes"]) == {"annotate", "export"}
    assert all("deprecated" in text for text in seen["--checkpoint"].values()), seen["--checkpoint"]
    assert all("deprecated" in text for text in seen.get("--label-file", {}).values())
    assert all("deprecated" in text for text in seen.get("--data-root", {}).values())
    assert all("deprecated" in text for text in seen.get("--run-dir", {}).values())


def test_deprecated_spelling_still_works_and_warns(user_files, tmp_path):
    """``export --checkpoint FILE`` still reaches the checkpoint (here: refused for being a CSV) with a warning."""
    proc = fer_ros(["export", "--checkpoint", "labels.csv", "--out", str(tmp_path / "x")], cwd=user_files)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2
    assert lines[0] == ("fer-ros export: warning: --checkpoint is deprecated, use the positional CHECKPOINT")
    assert lines[1].startswith("fer-ros export: error: labels.csv is a CSV file")


DEPRECATED_SPELLINGS = [  # old command line, where the command reads the value, what it must find there
    (["export", "--checkpoint", "a.pt", "--out", "m"], "old_checkpoint", ["a.pt"]),  # run() merges it
    (["export", "b.pt", "--labels", "happy", "sad", "--out", "m"], "classes", ("happy", "sad")),
    (["import-rmn", "--checkpoint", "a.pt", "--out", "m"], "checkpoint", "a.pt"),
    (["validate-engine", "--engine", "e"], "engine", "e"),
    (["evaluate", "b.pt", "--data-root", "d"], "data", "d"),
    (["train", "cfg", "--run-dir", "r"], "out", Path("r")),
    (["annotate", "v.mp4", "--label-file", "l.csv"], "labels", Path("l.csv")),
]


def test_every_deprecated_spelling_reaches_the_value_its_command_reads(capsys):
    """Parsed for real, each old spelling lands where the new form does (an optional positional's default must not
    wipe it), and the table covers every deprecated flag there is."""
    from fer_ros.cli_options import _DeprecatedAlias

    covered = set()
    for argv, dest, expected in DEPRECATED_SPELLINGS:
        args = build_parser(argv).parse_args(argv)
        assert getattr(args, dest) == expected, (argv, vars(args))
        assert "is deprecated, use" in capsys.readouterr().err
        covered.add((argv[0], next(a for a in argv[1:] if a.startswith("--") and a != "--out")))
    existing = {(command, flag) for command in COMMANDS for action in _option_actions(command)
                if isinstance(action, _DeprecatedAlias) for flag in action.option_strings}
    assert existing == covered


@pytest.mark.slow
def test_ctrl_c_during_training_says_where_it_stopped_and_how_to_resume(tmp_path):
    data = tmp_path / "faces"
    made = fer_ros(["synth", "images", str(data), "--per-class", "4", "--image-size", "96"], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "fer_ros.cli", "train", "ci_rmn_tiny", "--out", str(run_dir), "--set",
           f"data.root={data}", "--set", "epochs=100000", "--set", "early_stopping=0"]  # bars asked for
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not (run_dir / "last.pt").is_file():  # an epoch is saved: the run is in its epoch loop
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "\r" not in err and "it/s" not in err and "batch/s" not in err  # stderr is a pipe: no progress bars
    last_line = err.strip().splitlines()[-1]
    match = re.fullmatch(r"fer-ros train: interrupted: stopped during epoch (\d+) of 100000; (epoch 1 is|epochs 1-\d+ "
                         r"are) saved in (\S+)\. Continue with: (fer-ros train --resume \S+)", last_line)
    assert match, last_line
    stopped = int(match.group(1))
    assert Path(match.group(3)) == run_dir / "last.pt"
    # the printed command continues the run from the saved epoch (one more epoch here, then it stops)
    resume = shlex.split(match.group(4))[1:] + ["--epochs-now", str(stopped), "--no-progress"]
    resumed = fer_ros(resume, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"epoch {stopped}:" in resumed.stderr and f"epoch {stopped - 1}:" not in resumed.stderr
