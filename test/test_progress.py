"""Progress of long commands (issue 14.8): eval-bag shows how far it is on a terminal, and no command draws bars
into a pipe or a log file. Real processes, their stderr a real pseudo-terminal or a pipe."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from terminal import run_with_stderr_on_a_terminal

from fer_ros.bag.make_bag import ImageBagWriter
from fer_ros.progress import Progress, bars_enabled

TOPIC = "/camera/image_raw/compressed"
FRAMES = 6


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "bag"
    face = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (320, 240))
    with ImageBagWriter(path, TOPIC, compressed="jpeg") as writer:
        for i in range(FRAMES):
            writer.add_frame(np.roll(face, 4 * i, axis=1), stamp_ns=1_000_000_000 + i * 100_000_000)
    return path


def _eval_bag_command(bag: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "fer_ros.cli", "eval-bag", str(bag), "--topic", TOPIC, "--out", str(out)]


def test_eval_bag_draws_progress_on_a_terminal(bag, tmp_path):
    code, text = run_with_stderr_on_a_terminal(_eval_bag_command(bag, tmp_path / "tty"), timeout=300)
    assert code == 0
    assert f"\reval-bag: {FRAMES}/{FRAMES} frames (100 %)" in text, text


def test_eval_bag_draws_nothing_into_a_pipe(bag, tmp_path):
    proc = subprocess.Popen(_eval_bag_command(bag, tmp_path / "pipe"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0
    assert b"\r" not in err and b"frames (" not in err


def test_progress_is_off_unless_its_stream_is_a_terminal(tmp_path):
    with open(tmp_path / "log.txt", "w") as log:
        assert not bars_enabled(True, log)
        with Progress("x", 3, stream=log) as bar:
            bar.update(3)
    assert (tmp_path / "log.txt").read_text() == ""
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as terminal:
        assert bars_enabled(True, terminal) and not bars_enabled(False, terminal)
    os.close(master)
