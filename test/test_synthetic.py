"""The synthetic expression generator: classes differ where FACS says, landmarks are true, clips rise and fall, files
follow docs/formats.md, and the real mediapipe detector finds the drawn faces."""
from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
import yaml

from fer_ros.model_card import FER2013_LABELS
from fer_ros_training.data.synthetic import (EXPRESSIONS, Pose, SynthConfig, onset_peak_offset, random_identity,
                                             render_face, render_image, render_sequence)
from fer_ros_training.data.synthetic_files import write_clip_folders, write_fer2013_csv, write_image_folders

CLEAN = SynthConfig(occlusion_prob=0.0, noise=0.0, gain=(1.0, 1.0), gradient=0.0, jitter=0.0, roll=0.0, yaw=0.0)


def _same_person(label: int, intensity: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    ident = random_identity(rng, CLEAN)
    pose = Pose(cx=64, cy=64, size=90, roll=0, yaw=0)
    return render_face(ident, label, intensity, pose, np.random.default_rng(1), CLEAN).image


def test_seven_classes_in_fer2013_order_and_all_different():
    assert tuple(EXPRESSIONS) == FER2013_LABELS
    images = [_same_person(k, 1.0).astype(np.int32) for k in range(7)]
    for i in range(7):
        for j in range(i + 1, 7):
            diff = np.abs(images[i] - images[j]).mean()
            assert diff > 0.3, f"{FER2013_LABELS[i]} and {FER2013_LABELS[j]} look the same ({diff:.2f})"


def test_zero_intensity_is_neutral_and_peak_is_not():
    neutral = _same_person(6, 1.0).astype(np.int32)
    for k in range(6):
        assert np.abs(_same_person(k, 0.0).astype(np.int32) - neutral).max() == 0, FER2013_LABELS[k]
        assert np.abs(_same_person(k, 1.0).astype(np.int32) - neutral).mean() > 0.3, FER2013_LABELS[k]


def test_mouth_differs_where_the_landmarks_say():
    """Happy vs sad of one person differ around the mouth corners, not around the eyes."""
    rng = np.random.default_rng(3)
    ident = random_identity(rng, CLEAN)
    pose = Pose(cx=64, cy=64, size=90, roll=0, yaw=0)
    happy = render_face(ident, 3, 1.0, pose, np.random.default_rng(1), CLEAN)
    sad = render_face(ident, 4, 1.0, pose, np.random.default_rng(1), CLEAN)
    diff = np.abs(happy.image.astype(np.int32) - sad.image.astype(np.int32)).sum(axis=2)
    mouth_y = int(happy.landmarks[3:5, 1].mean())
    eye_y = int(happy.landmarks[0:2, 1].mean())
    assert diff[mouth_y - 8:mouth_y + 8].sum() > 5 * diff[eye_y - 4:eye_y + 4].sum()


def test_landmarks_and_box_follow_the_pose():
    rng = np.random.default_rng(0)
    for _ in range(20):
        face = render_image(int(rng.integers(7)), rng)
        x0, y0, x1, y1 = face.box
        assert x0 < face.landmarks[:, 0].min() and face.landmarks[:, 0].max() < x1
        assert y0 < face.landmarks[:, 1].min() and face.landmarks[:, 1].max() < y1
        assert face.landmarks[0, 0] < face.landmarks[1, 0]  # image-left eye first
        assert face.landmarks[3, 0] < face.landmarks[4, 0]  # image-left mouth corner first
        assert face.landmarks[:2, 1].mean() < face.landmarks[2, 1] < face.landmarks[3:, 1].mean()  # eyes, nose, mouth


def test_same_seed_same_images():
    a = render_image(2, np.random.default_rng(5))
    b = render_image(2, np.random.default_rng(5))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.landmarks, b.landmarks)


def test_sequence_rises_to_a_peak_and_falls():
    levels = onset_peak_offset(12, 5)
    assert levels[0] == 0 and levels[-1] == 0 and levels[5] == pytest.approx(1.0)
    assert np.all(np.diff(levels[:6]) > 0) and np.all(np.diff(levels[5:]) < 0)
    frames, peak = render_sequence(3, 10, np.random.default_rng(0))
    assert len(frames) == 10 and frames[peak].intensity == pytest.approx(1.0)
    assert frames[0].intensity == 0.0 and frames[-1].intensity == 0.0


def test_writers_follow_the_documented_layouts(tmp_path):
    images = write_image_folders(tmp_path / "img", per_class=2, seed=0)
    assert sorted(p.name for p in images.iterdir() if p.is_dir()) == sorted(FER2013_LABELS)
    assert len(list(images.glob("*/*.png"))) == 14
    with open(images / "faces.csv") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 15 and len(rows[1]) == 15
    with open(images / "split.csv") as f:
        assert next(csv.reader(f)) == ["path", "split"]

    clips = write_clip_folders(tmp_path / "clips", per_class=2, frames=5, seed=0, video_every=3)
    folders = [p for p in clips.glob("*/*") if p.is_dir()]
    videos = list(clips.glob("*/*.avi"))
    assert len(folders) + len(videos) == 14 and len(videos) == 4
    meta = yaml.safe_load((folders[0] / "clip.yaml").read_text())
    assert 0 <= meta["peak"] < 5 and len(list(folders[0].glob("*.png"))) == 5
    cap = cv2.VideoCapture(str(videos[0]))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 5

    fer = write_fer2013_csv(tmp_path / "fer.csv", per_class=2)
    with open(fer) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 14 and len(rows[0]["pixels"].split()) == 48 * 48
    assert {r["Usage"] for r in rows} <= {"Training", "PublicTest", "PrivateTest"}


def test_mediapipe_finds_the_drawn_faces():
    """The real detector locates the drawings close to their known boxes and landmarks."""
    from fer_ros.faces.detector import DetectorConfig, box_iou, create_detector

    det = create_detector(DetectorConfig(backend="mediapipe", static_images=True, use_mesh=False))
    rng = np.random.default_rng(11)
    try:
        found = 0
        for k in range(14):
            face = render_image(k % 7, rng, SynthConfig(occlusion_prob=0.0))
            dets = det.detect(face.image)
            if dets:
                found += 1
                assert float(np.ravel(box_iou(dets[0].box[None], face.box[None]))[0]) > 0.5
                eye = np.linalg.norm(face.landmarks[1] - face.landmarks[0])
                assert np.abs(dets[0].landmarks[:2] - face.landmarks[:2]).max() < 0.5 * eye
    finally:
        det.close()
    assert found >= 12


def test_synth_refuses_a_non_empty_folder_and_force_replaces_it_cleanly(tmp_path, capsys):
    """Issue 14.3: writing into an old data set left its images beside a new faces.csv/split.csv that did not list
    them (the next train had empty val/test splits)."""
    from fer_ros.cli import main as cli_main
    from fer_ros.errors import ConfigError

    out = tmp_path / "synth"
    assert cli_main(["synth", "images", str(out), "--per-class", "3", "--image-size", "64"]) == 0
    capsys.readouterr()
    try:  # the CLI's top-level handler turns a ConfigError into one line and exit 2
        code, message = cli_main(["synth", "images", str(out), "--per-class", "2", "--image-size", "64"]), \
            capsys.readouterr().err
    except ConfigError as exc:
        code, message = 2, str(exc)
    assert code == 2 and f"{out} already exists" in message and "--force" in message
    assert len(list(out.glob("*/*.png"))) == 21  # untouched
    (out / "stray.txt").write_text("x")
    assert cli_main(["synth", "images", str(out), "--per-class", "2", "--image-size", "64", "--force"]) == 0
    listed = {row["path"] for row in csv.DictReader(open(out / "split.csv"))}
    on_disk = {str(p.relative_to(out)) for p in out.glob("*/*.png")}
    assert listed == on_disk and len(on_disk) == 14 and not (out / "stray.txt").exists()
    fer = tmp_path / "fer.csv"
    write_fer2013_csv(fer, per_class=1)
    with pytest.raises(ConfigError, match="--force"):
        write_fer2013_csv(fer, per_class=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    write_image_folders(empty, per_class=1)  # an empty folder is a new data set
