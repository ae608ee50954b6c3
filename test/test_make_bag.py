"""``fer-ros make-bag`` (issue 14.9): a real video written with OpenCV and a folder of real images become bags that
rosbags reads back frame for frame, with stamps at the frame rate, JPEG by default, and that eval-bag scores."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from fer_ros.bag.bag_io import COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, open_bag
from fer_ros.bag.decode import decode_image
from fer_ros.cli import main

FPS = 12.0
SIZE = (320, 240)  # width, height of the test video


def _frames(n: int) -> list[np.ndarray]:
    """The astronaut photograph (BGR) panning sideways: a face in every frame, each frame different."""
    base = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), SIZE)
    return [np.roll(base, 6 * i, axis=1) for i in range(n)]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for frame in _frames(8):
        writer.write(frame)
    writer.release()
    return path


def _video_frames(path: Path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def _read_bag(path: Path, topic: str) -> tuple[str, list]:
    with open_bag(path) as bag:
        conns = bag.image_connections(topic)
        return conns[0].msgtype, [decode_image(bag.deserialize(m)) for m in bag.messages(conns)]


def test_video_to_a_jpeg_bag_by_default(video, tmp_path, capsys):
    out = tmp_path / "bag"
    assert main(["make-bag", str(video), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 8 frames (320x240, 12 fps)" in printed and "JPEG quality 90" in printed
    msgtype, frames = _read_bag(out, "/camera/image_raw/compressed")
    assert msgtype == COMPRESSED_IMAGE_TYPE
    expected = _video_frames(video)
    assert len(frames) == len(expected) == 8
    assert [f.stamp_ns for f in frames] == [round(i / FPS * 1e9) for i in range(8)]
    for got, want in zip(frames, expected):
        assert got.color == "bgr" and got.image.shape == want.shape
        assert np.abs(got.image.astype(int) - want.astype(int)).mean() < 4  # JPEG q90 of the same pixels


def test_png_bag_is_lossless_and_raw_bag_is_exact(video, tmp_path):
    expected = _video_frames(video)
    assert main(["make-bag", str(video), "--out", str(tmp_path / "png"), "--png", "--no-progress"]) == 0
    assert main(["make-bag", str(video), "--out", str(tmp_path / "raw"), "--raw", "--topic", "/cam/image",
                 "--max-frames", "3", "--start", "100.5", "--fps", "5", "--no-progress"]) == 0
    _, png = _read_bag(tmp_path / "png", "/camera/image_raw/compressed")
    assert all(np.array_equal(got.image, want) for got, want in zip(png, expected))
    msgtype, raw = _read_bag(tmp_path / "raw", "/cam/image")
    assert msgtype == IMAGE_TYPE and len(raw) == 3
    assert [f.stamp_ns for f in raw] == [100_500_000_000, 100_700_000_000, 100_900_000_000]
    assert all(np.array_equal(got.image, want) for got, want in zip(raw, expected))
    size = {name: sum(f.stat().st_size for f in (tmp_path / name).rglob("*")) for name in ("png", "raw")}
    assert size["raw"] / 3 > size["png"] / 8  # raw frames are the large ones


def test_image_folder_in_name_order_skipping_an_unreadable_file(tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = _frames(3)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), frame)
    (folder / "frame_001b.jpg").write_bytes(b"not a jpeg")  # sorts between frames 1 and 2
    (folder / "notes.txt").write_text("not an image")
    assert main(["make-bag", str(folder), "--out", str(tmp_path / "bag"), "--raw", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 frames that could not be decoded: 2 (" in printed and "wrote 3 frames" in printed
    _, got = _read_bag(tmp_path / "bag", "/camera/image_raw")
    assert all(np.array_equal(g.image, f) for g, f in zip(got, frames))
    assert [g.stamp_ns for g in got] == [0, round(1e9 / 30), round(3e9 / 30)]  # 30 fps default, index 2 skipped


def test_refusals_leave_nothing_behind(video, tmp_path, capsys):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    assert main(["make-bag", str(video), "--out", str(existing)]) == 2
    assert "fer-ros make-bag: error: output bag" in capsys.readouterr().err
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["make-bag", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "no images" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"garbage")
    assert main(["make-bag", str(broken), "--out", str(tmp_path / "o2"), "--no-progress"]) == 2
    assert "no frame of" in capsys.readouterr().err and not (tmp_path / "o2").exists()
    assert main(["make-bag", str(video), "--out", str(tmp_path / "o3"), "--jpeg-quality", "0"]) == 2
    assert not (tmp_path / "o3").exists()


def test_eval_bag_scores_the_bag_made_from_a_video(video, tmp_path, capsys):
    bag = tmp_path / "bag"
    assert main(["make-bag", str(video), "--out", str(bag), "--max-frames", "4", "--no-progress"]) == 0
    assert main(["eval-bag", str(bag), "--topic", "/camera/image_raw/compressed", "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["messages"]["total"] == 4 and report["messages"]["processed"] == 4
    assert report["frames_without_face"]["count"] == 0
