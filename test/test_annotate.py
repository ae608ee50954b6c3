"""Annotation tool without a window: frame sources on real bags and videos, the key state machine, the files it
writes (atomic, resumable), headless validation / clip export / trimming, and the files read back by eval-bag's label
loader and the FAN clip loader.

Frames are the public-domain astronaut photograph (scikit-image), shifted a little per frame so every frame differs.
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from skimage import data as skdata

from fer_ros.annotate import store as store_mod
from fer_ros.annotate.headless import apply_label_file
from fer_ros.annotate.session import JUMP_FRAMES, Action, AnnotationSession
from fer_ros.annotate.sources import BagFrameSource, SourceError, VideoFrameSource, open_source
from fer_ros.annotate.store import (
    AnnotationStore,
    ClipRecord,
    OutputPaths,
    atomic_write_text,
    read_label_file,
    records_to_tsv,
)
from fer_ros.model_card import FER2013_LABELS

FRAMES = 40  # frames per test recording: enough for three clips and the 10-frame jumps
HEIGHT, WIDTH = 240, 320
BASE_SEC = 1_700_000_000  # header stamps like a real recording (large seconds, nanosecond part)
PERIOD_NS = 33_333_333  # 30 Hz
CORRUPT_INDEX = 7  # the frame whose image data is broken in the "broken" bags


def astronaut_frames(n: int = FRAMES) -> list[np.ndarray]:
    """n BGR frames of the astronaut portrait, shifted 3 px right per frame."""
    base = cv2.resize(cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR), (WIDTH, HEIGHT))
    return [np.roll(base, 3 * i, axis=1) for i in range(n)]


def frame_stamp(i: int, base_sec: int = BASE_SEC) -> tuple[int, int]:
    ns = i * PERIOD_NS + 123_456
    return base_sec + ns // 1_000_000_000, ns % 1_000_000_000


def write_bag(path: Path, compressed: bool = False, storage: str = "sqlite3", broken: bool = False,
              emotions: dict[int, tuple[str, float]] | None = None, extra_string_topic: bool = False,
              base_sec: int = BASE_SEC) -> Path:
    """A rosbag2 recording of the astronaut frames on /camera/image_raw (or .../compressed), written with rosbags.

    ``broken``: frame CORRUPT_INDEX's data is damaged. ``emotions``: frame index -> (label, confidence) written as
    the node's EmotionArray on /emotions (a "scored" bag). ``extra_string_topic``: a std_msgs/String topic too.
    ``base_sec``: where the stamps start (another value makes another recording's stamps).
    """
    from fer_ros.bag.bag_io import add_topic, make_typestore, open_writer

    store = make_typestore()
    T = store.types
    writer = open_writer(path, version=9, storage=storage)
    topic = "/camera/image_raw/compressed" if compressed else "/camera/image_raw"
    msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    conn = add_topic(writer, topic, msgtype, store)
    emo_conn = add_topic(writer, "/emotions", "fer_ros/msg/EmotionArray", store) if emotions else None
    str_conn = add_topic(writer, "/notes", "std_msgs/msg/String", store) if extra_string_topic else None
    Header, Time = T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
    for i, bgr in enumerate(astronaut_frames()):
        sec, nsec = frame_stamp(i, base_sec)
        header = Header(stamp=Time(sec=sec, nanosec=nsec), frame_id="head_camera")
        if compressed:
            payload = np.frombuffer(cv2.imencode(".jpg", bgr)[1].tobytes(), np.uint8)
            if broken and i == CORRUPT_INDEX:
                payload = np.frombuffer(b"\xff\xd8\xff" + bytes(range(256)) * 4 + b"\xff\xd9", np.uint8).copy()
            msg = T[msgtype](header=header, format="jpeg", data=payload)
        else:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            rows = HEIGHT // 2 if broken and i == CORRUPT_INDEX else HEIGHT  # truncated: half the rows missing
            msg = T[msgtype](header=header, height=HEIGHT, width=WIDTH, encoding="rgb8", is_bigendian=0,
                             step=WIDTH * 3, data=rgb[:rows].reshape(-1).copy())
        bag_time = base_sec * 10**9 + i * PERIOD_NS + 5_000_000  # received 5 ms after the exposure
        writer.write(conn, bag_time, store.serialize_cdr(msg, msgtype))
        if emo_conn is not None and i in emotions:
            label, conf = emotions[i]
            probs = np.full(7, (1 - conf) / 6, np.float32)
            probs[FER2013_LABELS.index(label)] = conf
            emo = T["fer_ros/msg/Emotion"](
                face_id=1, roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=90, y_offset=20, height=120,
                                                                      width=110, do_rectify=False),
                landmarks=[T["geometry_msgs/msg/Point32"](x=0.0, y=0.0, z=0.0) for _ in range(5)],
                landmark_source="detector", detection_confidence=0.9, label=label, confidence=conf,
                probabilities=probs, frames_used=1, valence=math.nan, arousal=math.nan)
            arr = T["fer_ros/msg/EmotionArray"](header=header, model_id="mini_xception_fer2013",
                                                 labels=list(FER2013_LABELS), emotions=[emo],
                                                 processing_latency_ms=4.0)
            writer.write(emo_conn, bag_time + 4_000_000, store.serialize_cdr(arr, "fer_ros/msg/EmotionArray"))
        if str_conn is not None and i % 10 == 0:
            writer.write(str_conn, bag_time, store.serialize_cdr(T["std_msgs/msg/String"](data=f"n{i}"),
                                                                 "std_msgs/msg/String"))
    writer.close()
    return path


def write_video(path: Path, fps: float = 25.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for bgr in astronaut_frames():
        writer.write(bgr)
    writer.release()
    return path


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return cv2.PSNR(a, b)


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bags")
    return {
        "raw_sqlite": write_bag(root / "raw_sqlite"),
        "jpeg_mcap": write_bag(root / "jpeg_mcap", compressed=True, storage="mcap"),
        "broken_raw": write_bag(root / "broken_raw", broken=True),
        "broken_jpeg": write_bag(root / "broken_jpeg", compressed=True, broken=True),
        "scored": write_bag(root / "scored", emotions={i: ("happy" if i < 20 else "sad", 0.8) for i in range(0, 40, 2)},
                            extra_string_topic=True),
    }


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "session.avi")


# --- sources ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["raw_sqlite", "jpeg_mcap"])
def test_bag_source_gives_every_frame_with_header_stamps_in_any_order(bags: dict[str, Path], name: str) -> None:
    frames = astronaut_frames()
    with open_source(bags[name]) as src:
        assert isinstance(src, BagFrameSource) and len(src) == FRAMES and not src.problems
        sec, nsec = frame_stamp(13)
        assert src.stamps[13] == pytest.approx(sec + nsec * 1e-9, abs=1e-6)
        assert src.frame_period == pytest.approx(PERIOD_NS * 1e-9, rel=1e-6)
        for i in (0, 25, 3, 39, 24, 25):  # jumps back and forth, as a person does
            frame = src.read(i)
            assert frame.error == "" and frame.image.shape == (HEIGHT, WIDTH, 3)
            assert psnr(frame.image, frames[i]) > (30 if name == "jpeg_mcap" else 99)
            assert psnr(frame.image, frames[i + 1 if i < 39 else i - 1]) < 25  # it is that frame, not a neighbour


@pytest.mark.parametrize("name", ["broken_raw", "broken_jpeg"])
def test_unreadable_frame_is_reported_and_the_next_one_reads(bags: dict[str, Path], name: str) -> None:
    with open_source(bags[name]) as src:
        bad = src.read(CORRUPT_INDEX)
        assert bad.image is None and bad.error and src.unreadable == {CORRUPT_INDEX}
        assert src.read(CORRUPT_INDEX + 1).image is not None


def test_bag_topic_errors_say_what_the_bag_has(bags: dict[str, Path], tmp_path: Path) -> None:
    from fer_ros.bag.bag_io import BagError

    with pytest.raises(BagError, match="/notes.*std_msgs/msg/String"):  # not an image: named with the listing
        open_source(bags["scored"], topic="/notes")
    with pytest.raises(BagError, match="/camera/image_raw"):
        open_source(bags["scored"], topic="/nope")
    with pytest.raises(SourceError, match="does not exist"):
        open_source(tmp_path / "missing.avi")


def test_video_source_seeks_back_and_forth(video: Path) -> None:
    frames = astronaut_frames()
    with open_source(video) as src:
        assert isinstance(src, VideoFrameSource) and len(src) == FRAMES and src.fps == pytest.approx(25.0)
        assert src.stamps[10] == pytest.approx(0.4)
        for i in (0, 30, 5, 6, 39, 12):
            got = src.read(i).image
            assert psnr(got, frames[i]) > 30 and psnr(got, frames[(i + 5) % FRAMES]) < 25


def test_garbage_video_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "noise.mp4"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(SourceError, match="cannot open"):
        open_source(bad)


# --- session ---------------------------------------------------------------------------------------------------
def stamps(n: int = FRAMES) -> list[float]:
    return [100.0 + i / 30 for i in range(n)]


def press(session: AnnotationSession, keys: str) -> list[Action]:
    return [session.handle_key(k) for k in keys.split()]


def test_session_steps_jumps_and_stays_inside() -> None:
    s = AnnotationSession(stamps())
    press(s, "a a d d d right left")
    assert s.index == 3
    press(s, "l l")
    assert s.index == 3 + 2 * JUMP_FRAMES
    press(s, "end d")
    assert s.index == FRAMES - 1
    press(s, "j home a")
    assert s.index == 0


def test_session_marks_start_peak_end_in_order_and_saves_a_record() -> None:
    s = AnnotationSession(stamps())
    press(s, "d d s")
    assert [m.index for m in s.marks] == [2]
    press(s, "a s")  # a peak before the start is refused, with the reason
    assert len(s.marks) == 1 and "before start" in s.message
    press(s, "d d d s d d s s")  # the fourth S is refused too
    assert [m.index for m in s.marks] == [2, 4, 6] and "E saves" in s.message
    assert press(s, "e") == [Action.SAVE]
    assert s.take_clip("c_0000") is None and "1-7" in s.message  # no label yet
    press(s, "4 g u u p")
    record = s.take_clip("c_0000")
    assert record == ClipRecord("c_0000", "happy", 100 + 2 / 30, 100 + 6 / 30, 100 + 4 / 30,
                                non_correlating=True, heavy_occlusion=True)
    assert s.marks == [] and not any(s.flags.values()) and s.label == "happy"  # label kept for the next clip
    assert s.take_clip("c_0001") is None and "start, peak, end" in s.message


def test_session_undo_reset_unknown_and_quit() -> None:
    s = AnnotationSession(stamps())
    press(s, "s d s z")
    assert len(s.marks) == 1 and "peak" in s.message
    press(s, "x t 7 w")
    assert s.marks == [] and not any(s.flags.values()) and s.label is None
    press(s, "k")
    assert "does nothing" in s.message
    assert press(s, "q") == [Action.QUIT] and press(s, "escape") == [Action.QUIT]


def test_session_state_round_trips_and_rejects_marks_of_another_source() -> None:
    s = AnnotationSession(stamps())
    press(s, "l s d d s 2 t")
    again = AnnotationSession(stamps())
    assert again.restore(s.state()) == []
    assert (again.index, again.marks, again.label, again.flags) == (s.index, s.marks, s.label, s.flags)
    other = AnnotationSession([0.5 + i for i in range(FRAMES)])
    problems = other.restore(s.state())
    assert other.marks == [] and "do not match" in problems[0] and other.index == s.index


# --- store -----------------------------------------------------------------------------------------------------
def test_store_writes_thesis_tsv_and_interval_csv_and_resumes(tmp_path: Path) -> None:
    source = tmp_path / "session_bag"
    st = AnnotationStore.open(source)
    assert st.records == [] and st.next_clip_id() == "session_bag_0000"
    a = ClipRecord(st.next_clip_id(), "happy", 1700000000.000123456, 1700000001.5, 1700000000.75, limb=True)
    st.add(a)
    b = ClipRecord(st.next_clip_id(), "sad", 1699999990.0, 1699999991.0, 1699999990.5, other=True)
    st.add(b)
    tsv = (tmp_path / "session_bag.annotations.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == list(store_mod.TSV_COLUMNS)
    assert tsv[1].split("\t") == ["session_bag_0000", "happy", "1700000000.0001235", "1700000001.5",
                                  "1700000000.75", "0", "1", "0", "0", "0"]
    rows = list(csv.reader((tmp_path / "session_bag.labels.csv").open()))
    assert rows == [["start", "end", "label"], ["1699999990.0", "1699999991.0", "sad"],
                    ["1700000000.0001235", "1700000001.5", "happy"]]  # sorted by start
    resumed = AnnotationStore.open(source)
    assert resumed.records == [a, b] and resumed.next_clip_id() == "session_bag_0002"
    resumed.save_state({"index": 12})
    assert AnnotationStore.open(source).load_state() == {"index": 12}


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "x.annotations.tsv"
    atomic_write_text(target, "old\n")

    with pytest.raises(TypeError):
        atomic_write_text(target, 12345)  # type: ignore[arg-type]  # fails inside write()
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["x.annotations.tsv"]


def test_bad_rows_of_a_label_file_are_counted_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "labels.tsv"
    good = ClipRecord("c_0000", "fear", 1.0, 2.0, 1.5)
    text = records_to_tsv([good]) + "c_0001\thappy\tsoon\t2\t1\t0\t0\t0\t0\t0\nc_0002\t\t1\t2\t1.5\t0\t0\t0\t0\t0\n" \
        "c_0003\tsad\t1\t2\t1.5\t0\t2\t0\t0\t0\n"
    path.write_text(text)
    records, problems = read_label_file(path)
    assert records == [good] and len(problems) == 3
    assert "line 3" in problems[0] and "no label" in problems[1] and "not 0 or 1" in problems[2]
    paths = OutputPaths.for_source(tmp_path / "rec", tmp_path)
    paths.tsv.write_text(text)
    st = AnnotationStore.open(tmp_path / "rec")
    assert st.records == [good] and len(st.problems) == 3
    st.add(ClipRecord(st.next_clip_id(), "sad", 3.0, 4.0, 3.5))  # the rewrite keeps the unreadable rows in a copy
    assert st.backup is not None and st.backup.read_text() == text and len(read_label_file(paths.tsv)[0]) == 2
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("start,end,label\n1.0,2.0,Angry\n")
    (r,), _ = read_label_file(csv_path)
    assert r.label == "angry" and math.isnan(r.peak)


def test_eval_bag_label_loader_reads_the_interval_csv(bags: dict[str, Path], tmp_path: Path) -> None:
    """What the annotator writes is what eval-bag reads: every frame of a clip gets its label."""
    from fer_ros.bag.labels import read_label_csv

    with open_source(bags["raw_sqlite"]) as src:
        st = AnnotationStore.open(src.path, tmp_path)
        st.add(ClipRecord(st.next_clip_id(), "surprise", src.stamps[5], src.stamps[9], src.stamps[7]))
        st.add(ClipRecord(st.next_clip_id(), "neutral", src.stamps[20], src.stamps[30], src.stamps[22]))
        labels = read_label_csv(st.paths.csv, FER2013_LABELS)
        assigned = labels.assign(list(src.stamps))
    expected = {i: "surprise" for i in range(5, 10)} | {i: "neutral" for i in range(20, 31)}
    assert {i: FER2013_LABELS[v[0].label] for i, v in assigned.items()} == expected


def test_eval_bag_scores_the_annotation_and_its_output_is_shown_as_predictions(bags: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    """The whole loop: annotate -> fer-ros eval-bag --labels -> its scored bag -> predictions in the window."""
    import json

    from fer_ros.annotate.predictions import load_predictions
    from fer_ros.cli import main

    with open_source(bags["raw_sqlite"]) as src:
        st = AnnotationStore.open(src.path, tmp_path)
        st.add(ClipRecord(st.next_clip_id(), "happy", src.stamps[5], src.stamps[14], src.stamps[8]))
        stamps_ = list(src.stamps)
    out = tmp_path / "eval"
    assert main(["eval-bag", str(bags["raw_sqlite"]), "--topic", "/camera/image_raw", "--labels", str(st.paths.csv),
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["labels"]["kind"] == "interval" and report["labels"]["invalid_rows"] == 0
    assert report["scoring"]["labelled_faces"] == 10  # frames 5..14, one face each
    track = load_predictions(out / "emotions")
    assert track.problems == [] and len(track.stamps) == FRAMES
    for i in (0, 5, 14, 39):
        faces = track.at(stamps_[i], 0.5 / 30)
        assert faces and faces[0].label in FER2013_LABELS and 0 < faces[0].confidence <= 1
    # predictions of this recording overlap it; shifted by 100 s (another recording) they match no frame, said once
    assert track.overlap_problem(stamps_, 0.5 / 30) is None
    problem = track.overlap_problem([t + 100.0 for t in stamps_], 0.5 / 30)
    assert problem is not None and "match no frame of this recording" in problem


# --- headless --------------------------------------------------------------------------------------------------
def test_headless_validates_exports_and_trims_a_bag(bags: dict[str, Path], tmp_path: Path) -> None:
    from fer_ros.bag.bag_io import open_bag

    with open_source(bags["scored"]) as src:
        s = src.stamps
        records = [ClipRecord("ok_0000", "happy", s[4], s[9], s[6], limb=True),
                   ClipRecord("ok_0001", "sad", s[30], s[33], math.nan),
                   ClipRecord("bad_0002", "joy", s[1], s[2], s[1]),  # unknown label
                   ClipRecord("bad_0003", "fear", s[10], s[8], s[9]),  # end before start
                   ClipRecord("bad_0004", "fear", s[0] - 1.0, s[12], s[11]),  # before the recording
                   ClipRecord("bad_0005", "fear", s[10], s[12], s[20])]  # peak outside
        label_file = tmp_path / "labels.tsv"
        label_file.write_text(records_to_tsv(records))
        report = apply_label_file(src, label_file, FER2013_LABELS, export_root=tmp_path / "clips",
                                  trim_out=tmp_path / "trimmed", margin=0.0)
    assert [c.valid for c in report.clips] == [True, True, False, False, False, False]
    assert (report.clips[0].start, report.clips[0].peak, report.clips[0].end) == (4, 6, 9)
    assert "joy" in report.clips[2].problems[0] and "before start" in report.clips[3].problems[0]
    assert "matches no frame" in report.clips[4].problems[0] and "outside" in report.clips[5].problems[0]
    assert report.problem_count == 4 and "4 problems" in report.lines()[0]
    happy = tmp_path / "clips" / "happy" / "ok_0000"
    assert sorted(p.name for p in happy.iterdir()) == [f"{i:06d}.png" for i in range(6)] + ["clip.yaml"]
    assert not (tmp_path / "clips" / ".annotate-tmp").exists()  # no empty scratch folder left behind
    meta = yaml.safe_load((happy / "clip.yaml").read_text())
    assert meta["peak"] == 2 and meta["flags"]["limb"] and meta["start"] == pytest.approx(s[4])
    assert psnr(cv2.imread(str(happy / "000002.png")), astronaut_frames()[6]) > 99
    assert yaml.safe_load((tmp_path / "clips" / "sad" / "ok_0001" / "clip.yaml").read_text())["peak"] is None
    with open_bag(tmp_path / "trimmed") as out:
        counts = {t.name: t.count for t in out.topics()}
    # frames 4..9 and 30..33; emotions on even frames of those; the String topic on frame 30
    assert counts == {"/camera/image_raw": 10, "/emotions": 5, "/notes": 1} and report.trimmed_items == 16


def test_headless_trims_and_exports_a_video_and_the_clip_loader_reads_it(video: Path, tmp_path: Path) -> None:
    with open_source(video) as src:
        label_file = tmp_path / "labels.csv"
        label_file.write_text(f"start,end,label\n{src.stamps[2]},{src.stamps[5]},angry\n"
                              f"{src.stamps[20]},{src.stamps[22]},Surprise\n")
        report = apply_label_file(src, label_file, FER2013_LABELS, export_root=tmp_path / "clips",
                                  trim_out=tmp_path / "trimmed.avi", margin=0.04)
    assert report.problem_count == 0 and report.trimmed_items == (4 + 2) + (3 + 2)
    with open_source(tmp_path / "trimmed.avi") as trimmed:
        assert len(trimmed) == 11 and psnr(trimmed.read(1).image, astronaut_frames()[2]) > 30
    from fer_ros_training.data.bad_input import BadInputLog
    from fer_ros_training.data.clips import load_clip_folders
    from fer_ros_training.data.items import LabelResolver

    bad = BadInputLog()
    clips = load_clip_folders(tmp_path / "clips", LabelResolver(FER2013_LABELS), bad)
    assert not bad.records
    assert sorted((FER2013_LABELS[c.label], len(c.frames)) for c in clips) == [("angry", 4), ("surprise", 3)]


def test_export_replaces_an_earlier_export_whole_and_lists_unreadable_frames(bags: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    with open_source(bags["broken_jpeg"]) as src:
        rec = ClipRecord("c_0000", "fear", src.stamps[5], src.stamps[12], src.stamps[9])
        first = store_mod.export_clip(src, rec, 5, 12, 9, tmp_path)
        assert first.frames == 7 and first.unreadable == [CORRUPT_INDEX] and first.peak_index == 3
        shorter = store_mod.export_clip(src, rec, 8, 9, 9, tmp_path)
    folder = tmp_path / "fear" / "c_0000"
    assert shorter.frames == 2 and sorted(p.name for p in folder.iterdir()) == ["000000.png", "000001.png",
                                                                                "clip.yaml"]
    assert not (tmp_path / store_mod.EXPORT_SCRATCH).exists()  # emptied and removed


def test_headless_cli_exit_codes(bags: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from fer_ros.cli import main

    with open_source(bags["raw_sqlite"]) as src:
        s = src.stamps
    paths = OutputPaths.for_source(bags["raw_sqlite"], tmp_path)
    atomic_write_text(paths.tsv, records_to_tsv([ClipRecord("a_0000", "happy", s[1], s[3], s[2])]))
    assert main(["annotate", str(bags["raw_sqlite"]), "--headless", "--out-dir", str(tmp_path)]) == 0
    assert "1 clips, 1 valid, 0 problems" in capsys.readouterr().out
    atomic_write_text(paths.tsv, records_to_tsv([ClipRecord("a_0000", "happy", s[3], s[1], s[2])]))
    assert main(["annotate", str(bags["raw_sqlite"]), "--headless", "--out-dir", str(tmp_path)]) == 1
    assert main(["annotate", str(bags["scored"]), "--headless", "--topic", "/emotions"]) == 2
    assert "fer_ros/msg/EmotionArray, expected one of sensor_msgs/msg/Image" in capsys.readouterr().err


def test_window_scales_a_small_video_up_and_shows_which_key_is_which_label() -> None:
    """Issue 14.11: a 160x120 frame is shown at MIN_VIEW_HEIGHT, the keys line names the labels and lights the
    chosen one (rendered for real; the Xvfb test checks the window shows exactly this rendering)."""
    from fer_ros.annotate.sources import Frame
    from fer_ros.annotate.window import LINE_HEIGHT, MESSAGE, MIN_VIEW_HEIGHT, TIMELINE_HEIGHT, render_view

    small = cv2.resize(cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR), (160, 120))
    session = AnnotationSession(np.arange(3) / 10.0, FER2013_LABELS)
    before = render_view(Frame(0, 0.0, small), session, "clip.avi")
    assert before[:MIN_VIEW_HEIGHT].std() > 10 and before.shape[0] > MIN_VIEW_HEIGHT  # the frame fills 360 rows
    x0 = (before.shape[1] - 480) // 2  # 160x120 scaled x3 to 480x360, centred
    np.testing.assert_array_equal(before[:360, x0:x0 + 480][::3, ::3], small)  # nearest neighbour: pixels kept
    session.handle_key("4")  # happy
    after = render_view(Frame(0, 0.0, small), session, "clip.avi")
    changed_rows = np.flatnonzero(np.any(before != after, axis=(1, 2)))
    assert changed_rows.min() > MIN_VIEW_HEIGHT  # only the panel changes: the label line and the lit key
    keys_baseline = MIN_VIEW_HEIGHT + TIMELINE_HEIGHT + 3 * LINE_HEIGHT  # title, marks, keys

    def lit(img: np.ndarray) -> int:
        line = img[keys_baseline - 16:keys_baseline + 6].astype(int)
        return int(np.count_nonzero(np.all(np.abs(line - MESSAGE) < 40, axis=2)))

    assert lit(before) == 0 and lit(after) > 20  # the chosen label's key is drawn highlighted


def test_window_draws_the_node_face_box_where_the_frame_is_shown() -> None:
    """Issue 14.11: the predicted face's roi is drawn on the (scaled-up) frame; the cached frame is not touched."""
    from fer_ros.annotate.predictions import FacePrediction
    from fer_ros.annotate.sources import Frame
    from fer_ros.annotate.window import DIM, render_view

    small = cv2.resize(cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR), (160, 120))
    kept = small.copy()
    session = AnnotationSession(np.arange(3) / 10.0, FER2013_LABELS)
    face = FacePrediction(1, "happy", 0.9, (40, 30, 50, 60))  # x, y, w, h in image pixels
    shown = render_view(Frame(0, 0.0, small), session, "clip.avi", prediction=[face], has_predictions=True)
    x0 = (shown.shape[1] - 480) // 2  # 160x120 shown x3
    np.testing.assert_array_equal(shown[30 * 3 + 60, x0 + 40 * 3], DIM)  # left edge of the box, at scale
    np.testing.assert_array_equal(shown[30 * 3 + 60, x0 + 90 * 3], DIM)  # right edge
    np.testing.assert_array_equal(small, kept)
