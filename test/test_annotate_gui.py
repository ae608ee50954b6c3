"""The annotation window driven as a person would: a real X server (Xvfb), the real ``fer-ros annotate`` process
with OpenCV's Qt HighGUI, key presses through xdotool (XTEST, like a keyboard), screenshots read from Xvfb's frame
buffer file and compared with what the window must show; then the saved files are read back by eval-bag's label
loader and the FAN clip loader, and a second run resumes where the first stopped.

Needs Debian's ``xvfb`` and ``xdotool`` (scripts/setup.sh installs them); skipped with that reason without them.
Screenshots need no extra tool: ``Xvfb -fbdir`` keeps the screen in an XWD file, parsed here.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from test_annotate import BASE_SEC, CORRUPT_INDEX, FRAMES, write_bag

from fer_ros.annotate.app import WINDOW_TITLE, clip_spans
from fer_ros.annotate.predictions import load_predictions
from fer_ros.annotate.session import AnnotationSession
from fer_ros.annotate.sources import open_source
from fer_ros.annotate.store import AnnotationStore, OutputPaths, read_label_file
from fer_ros.annotate.window import ERROR, LINE_HEIGHT, PANEL_LINES, TIMELINE_HEIGHT, render_error, render_view
from fer_ros.model_card import FER2013_LABELS

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
    reason="needs an X server and a keyboard driver: apt-get install xvfb xdotool (scripts/setup.sh does)")

SCREEN = (1280, 1024)  # Xvfb screen, larger than the window
WAIT_S = 30.0  # bound on start-up (imports, Qt, bag scan) and on each expected screen on 2 shared cores
DIFF_LEVEL = 40  # a pixel "differs" beyond this many grey levels in a channel (JPEG-free path: shown = drawn)
MAX_DIFFERING = 0.001  # fraction of window pixels allowed to differ: the window shows exactly what was drawn


class XServer:
    """Xvfb on a free display number, with its screen mirrored in an XWD file."""

    def __init__(self, workdir: Path) -> None:
        self.fbdir = workdir / "fb"
        self.fbdir.mkdir()
        for _ in range(50):
            n = random.randint(100, 599)
            if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
                break
        self.display = f":{n}"
        self.proc = subprocess.Popen(
            ["Xvfb", self.display, "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-fbdir", str(self.fbdir),
             "-nolisten", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Xvfb {self.display} did not start")
            time.sleep(0.05)
        self.env = dict(os.environ, DISPLAY=self.display, QT_QPA_PLATFORM="xcb")

    def xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=WAIT_S,
                              check=True).stdout

    def screenshot(self) -> np.ndarray:
        """The screen as BGR uint8, read from the XWD frame-buffer file Xvfb keeps."""
        raw = (self.fbdir / "Xvfb_screen0").read_bytes()
        h = struct.unpack(">25I", raw[:100])
        header_size, width, height, bits, line, ncolors = h[0], h[4], h[5], h[11], h[12], h[19]
        assert bits == 32 and h[7] == 0, "expected 32-bit LSB-first pixels from Xvfb -screen ...x24"
        start = header_size + 12 * ncolors
        pixels = np.frombuffer(raw, np.uint8, count=line * height, offset=start).reshape(height, line // 4, 4)
        return np.ascontiguousarray(pixels[:, :width, :3])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture()
def xserver(tmp_path: Path) -> Iterator[XServer]:
    server = XServer(tmp_path)
    yield server
    server.stop()


class Annotator:
    """A running ``fer-ros annotate`` window."""

    def __init__(self, x: XServer, args: list[str], logdir: Path) -> None:
        self.x = x
        self.log = logdir / f"annotate-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "fer_ros.cli", "annotate", *args], env=x.env,
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        out = x.xdotool("search", "--sync", "--onlyvisible", "--name", WINDOW_TITLE)
        self.window = out.split()[0]

    def keys(self, keys: str) -> None:
        """Press keys one after another on the focused window, as a person at the keyboard."""
        self.x.xdotool("windowfocus", "--sync", self.window)
        self.x.xdotool("key", "--delay", "80", *keys.split())

    def wait_exit(self) -> int:
        try:
            return self.proc.wait(WAIT_S)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text()


def wait_for(predicate, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def window_area(screen: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The part of the screen where ``expected`` fits best (the window's picture, wherever it was placed)."""
    _, _, _, (left, top) = cv2.minMaxLoc(cv2.matchTemplate(screen, expected, cv2.TM_CCOEFF_NORMED))
    return screen[top: top + expected.shape[0], left: left + expected.shape[1]]


def differing_fraction_of(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels of two same-sized pictures that differ by more than DIFF_LEVEL in any channel."""
    return float((np.abs(a.astype(np.int16) - b).max(axis=2) > DIFF_LEVEL).mean())


def differing_fraction(x: XServer, expected: np.ndarray) -> float:
    """Fraction of the window's pixels that differ from ``expected``."""
    return differing_fraction_of(window_area(x.screenshot(), expected), expected)


def wait_for_picture(x: XServer, expected: Callable[[], np.ndarray], what: str) -> np.ndarray:
    """Wait until the window shows ``expected()`` pixel for pixel (drawn anew each try: the state file may still
    be changing); returns that screenshot's window area."""
    shown: list[np.ndarray] = []

    def matches() -> bool:
        picture = expected()
        if differing_fraction(x, picture) > MAX_DIFFERING:
            return False
        shown.append(window_area(x.screenshot(), picture))
        return True

    wait_for(matches, f"the window to show {what}")
    return shown[-1]


def expected_view(bag: Path, out_dir: Path, predictions: Path | None, message: str | None = None) -> np.ndarray:
    """What the window must show for the saved state: drawn by the same renderer from the files on disk
    (``message`` instead of the saved message line, when given)."""
    with open_source(bag) as src:
        store = AnnotationStore.open(src.path, out_dir)
        session = AnnotationSession(src.stamps)
        session.restore(store.load_state() or {})
        if message is not None:
            session.message = message
        track = load_predictions(predictions) if predictions is not None else None
        frame = src.read(session.index)
        pred = track.at(frame.stamp, 0.5 * src.frame_period) if track else None
        return render_view(frame, session, src.description, clip_spans(src, store), pred, track is not None,
                           src.read(0).image.shape[:2])


def state_of(paths: OutputPaths) -> dict:
    try:
        return json.loads(paths.state.read_text())
    except (OSError, ValueError):
        return {}


def test_person_marks_two_clips_in_the_window_and_resumes(xserver: XServer, tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "session", compressed=True, storage="mcap", broken=True,
                    emotions={i: ("happy" if i < 20 else "sad", 0.8) for i in range(0, FRAMES, 2)})
    out, clips = tmp_path / "labels", tmp_path / "clips"
    paths = OutputPaths.for_source(bag, out)
    args = [str(bag), "--out-dir", str(out), "--predictions", str(bag), "--export-clips", str(clips)]
    tool = Annotator(xserver, args, tmp_path)
    wait_for(lambda: paths.state.is_file(), "the first state file")  # written just before the first frame is shown
    # keys pressed before the first frame is shown could go astray
    wait_for_picture(xserver, lambda: expected_view(bag, out, bag), "frame 0")

    # step onto the damaged frame: the window says so, the tool goes on
    tool.keys(" ".join(["d"] * CORRUPT_INDEX))
    wait_for(lambda: state_of(paths).get("index") == CORRUPT_INDEX, "frame 7")
    shown = wait_for_picture(xserver, lambda: expected_view(bag, out, bag), "the unreadable-frame message")
    assert np.count_nonzero(np.all(np.abs(shown[:200].astype(int) - ERROR) < 30, axis=2)) > 300  # red text

    # clip 1: start 10, peak 12, end 16, "surprise" (6), limb (T); at frame 16 the node says happy: disagreement
    tool.keys("d d d s d d s d d d d s 6 t")
    wait_for(lambda: state_of(paths).get("flags", {}).get("limb") is True, "the limb flag")
    assert [m[0] for m in state_of(paths)["marks"]] == [10, 12, 16] and state_of(paths)["label"] == "surprise"
    shown = wait_for_picture(xserver, lambda: expected_view(bag, out, bag),
                             "marks, label, flag and the disagreement")
    # the prediction line (5th text line of the panel: title, marks, keys, flags, node), drawn red
    below = TIMELINE_HEIGHT + PANEL_LINES * LINE_HEIGHT + 10 - (TIMELINE_HEIGHT + 5 * LINE_HEIGHT)  # its baseline
    node_line = shown[-(below + 16):-(below - 6)]
    assert np.count_nonzero(np.all(np.abs(node_line.astype(int) - ERROR) < 30, axis=2)) > 200
    tool.keys("e")
    wait_for(lambda: paths.tsv.is_file() and not state_of(paths)["marks"], "the first clip to be saved")

    # clip 2 at the end: start at 36; a peak 10 frames earlier is refused; peak at 36 again, end at 38, "sad" (5)
    tool.keys("End a a a s j s l s d d s 5 u e")
    wait_for(lambda: len(read_label_file(paths.tsv)[0]) == 2, "the second clip")
    tool.keys("Home l l q")
    assert tool.wait_exit() == 0, tool.output()
    assert "Traceback" not in tool.output()

    records, problems = read_label_file(paths.tsv)
    assert problems == []
    with open_source(bag) as src:
        s = src.stamps
        assert [(r.label, r.start, r.peak, r.end, r.limb, r.low_occlusion) for r in records] == [
            ("surprise", s[10], s[12], s[16], True, False), ("sad", s[36], s[36], s[38], False, True)]
    from fer_ros.bag.labels import read_label_csv

    assigned = read_label_csv(paths.csv, FER2013_LABELS).assign(list(s))
    assert {i: FER2013_LABELS[v[0].label] for i, v in assigned.items()} == (
        {i: "surprise" for i in range(10, 17)} | {i: "sad" for i in range(36, 39)})
    from fer_ros_training.data.bad_input import BadInputLog
    from fer_ros_training.data.clips import load_clip_folders
    from fer_ros_training.data.items import LabelResolver

    bad = BadInputLog()
    loaded = load_clip_folders(clips, LabelResolver(FER2013_LABELS), bad)
    assert not bad.records
    assert sorted((FER2013_LABELS[c.label], len(c.frames), c.peak) for c in loaded) == [
        ("sad", 3, 0), ("surprise", 7, 2)]

    # a second run resumes at frame 20 (Home, L, L) with both clips on the timeline
    again = Annotator(xserver, args, tmp_path)
    wait_for(lambda: state_of(paths).get("message", "").startswith("resumed"), "the second run's state")
    wait_for_picture(xserver, lambda: expected_view(bag, out, bag), "the resumed position and the saved clips")
    assert state_of(paths)["index"] == 20 and "2 clips saved" in state_of(paths)["message"]
    again.keys("q")
    assert again.wait_exit() == 0, again.output()
    assert (f"annotate: 2 clips saved in {paths.tsv} (record) and {paths.csv} (labels for fer-ros eval-bag --labels)"
            in again.output()), again.output()
    assert not (clips / ".annotate-tmp").exists()  # no empty scratch folder left by the exports


def test_predictions_of_another_recording_are_said_once_in_the_window(xserver: XServer, tmp_path: Path) -> None:
    """``--predictions`` scored on another recording (its stamps 100 s later) match no frame: the window says so on
    its message line, the console says it once however many frames are stepped through, and the tool goes on."""
    bag = write_bag(tmp_path / "session")
    other = write_bag(tmp_path / "other", emotions={i: ("happy", 0.8) for i in range(FRAMES)},
                      base_sec=BASE_SEC + 100)
    with open_source(bag) as src:
        problem = load_predictions(other).overlap_problem(src.stamps, src.frame_period / 2)
    assert problem and "match no frame of this recording" in problem
    out = tmp_path / "labels"
    paths = OutputPaths.for_source(bag, out)
    tool = Annotator(xserver, [str(bag), "--out-dir", str(out), "--predictions", str(other)], tmp_path)
    wait_for(lambda: paths.state.is_file(), "the first state file")
    assert state_of(paths)["message"] == problem
    # the warning is what makes the picture: without it the message line would be drawn differently
    warned = expected_view(bag, out, other)
    assert differing_fraction_of(warned, expected_view(bag, out, other, message="")) > 0.002
    wait_for_picture(xserver, lambda: expected_view(bag, out, other), "the no-overlap warning")
    tool.keys("d d d l q")
    assert tool.wait_exit() == 0, tool.output()
    assert tool.output().count("match no frame of this recording") == 1, tool.output()
    assert f"fer-ros annotate: warning: {problem}" in tool.output()
    assert "Traceback" not in tool.output()


def test_a_topic_that_is_not_an_image_is_shown_in_the_window(xserver: XServer, tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "scored", emotions={0: ("happy", 0.9)})
    tool = Annotator(xserver, [str(bag), "--topic", "/emotions", "--out-dir", str(tmp_path)], tmp_path)
    with pytest.raises(Exception) as err:
        open_source(bag, "/emotions")
    wait_for_picture(xserver, lambda: render_error(f"cannot open {bag}", str(err.value).splitlines()),
                     "the explanation that /emotions is not an image")
    tool.keys("d q")
    assert tool.wait_exit() == 2
    assert "Traceback" not in tool.output()
