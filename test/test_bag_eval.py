"""Offline bag evaluation (``fer-ros eval-bag``) on bags written with rosbags: real mediapipe, real ONNX model.

Bags hold the public-domain astronaut composed into 640x480 frames (moving, rgb8/bgr8/mono8 and JPEG/PNG), generated
frames without a face (noise, background), and broken messages mixed in (garbage CDR, truncated data, unsupported
encodings, a frame too small for the pipeline). Every message must be accounted for, the output EmotionArray bag is
read back with a fresh type store and compared field by field with what the pipeline itself returns for the same
frames, and the report's numbers are checked against values known by construction.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from fer_ros import samples
from fer_ros.bag.bag_io import BagError, add_topic, make_typestore, open_bag, open_writer
from fer_ros.bag.decode import REASON_CORRUPT, REASON_TOO_LARGE, REASON_TRUNCATED, REASON_UNSUPPORTED
from fer_ros.bag.emotion_codec import face_roi
from fer_ros.bag.evaluate import EvalOptions, create_pipeline, run_offline
from fer_ros.bag.labels import read_label_csv
from fer_ros.bag.make_bag import ImageBagWriter
from fer_ros.bag.params import read_node_params
from fer_ros.bag.report import score, write_report
from fer_ros.model_card import FER2013_LABELS
from fer_ros.ros.conversions import image_to_array

TOPIC = "/camera/image_raw"
T0_NS = 1_700_000_000_000_000_000  # header stamps start here (a plausible epoch time)
PERIOD_NS = 33_333_333  # 30 Hz
CLIP_FRAMES = 10


@dataclass
class Written:
    """What the test put into a bag, message by message."""

    kinds: list[str]  # "face", "noface", or an unreadable reason, or "too_small"
    stamps_ns: list[int]
    frames: list[tuple[np.ndarray, str] | None]  # (pixels, colour) the pipeline must get, None when unreadable


def fresh_pipeline(params_file: Path | None = None, smoothing: float | None = 0.0):
    """A pipeline as eval-bag builds it from the node's parameters (fresh: mediapipe's tracking state is per object)."""
    params, _ = read_node_params(params_file)
    return create_pipeline(params, smoothing_override=smoothing)


def _gradient() -> np.ndarray:
    """A generated frame without a face: colour ramps (uniform noise is avoided: mediapipe finds faces in it)."""
    x = np.linspace(0, 255, 640, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, 480, dtype=np.float32)[:, None]
    return np.stack([np.broadcast_to(x, (480, 640)), np.broadcast_to(y, (480, 640)),
                     np.full((480, 640), 90.0, np.float32)], axis=2).astype(np.uint8)


def _raw_frames(bag: ImageBagWriter, written: Written) -> None:
    clip = list(samples.camera_clip(samples.ClipConfig(frames=CLIP_FRAMES, faces=1, face_width=120, seed=3)))
    items: list[tuple[str, np.ndarray | None, str]] = [("face", f.rgb, "rgb8") for _, f in clip[:5]]
    items += [("face", samples.one_face(cx=300).bgr, "bgr8"),
              ("face", cv2.cvtColor(samples.one_face(cx=310).rgb, cv2.COLOR_RGB2GRAY), "mono8"),
              ("noface", _gradient(), "rgb8"),
              ("noface", samples.no_face().rgb, "rgb8"),
              (REASON_CORRUPT, None, ""), (REASON_TRUNCATED, None, ""), (REASON_UNSUPPORTED, None, ""),
              ("too_small", np.zeros((4, 4, 3), np.uint8), "rgb8")]
    items += [("face", f.rgb, "rgb8") for _, f in clip[5:]]
    for i, (kind, image, encoding) in enumerate(items):
        stamp = T0_NS + i * PERIOD_NS
        written.kinds.append(kind)
        written.stamps_ns.append(stamp)
        if kind == REASON_CORRUPT:
            bag.add_raw(b"\x00\x01\x00\x00" + bytes(range(7, 60)), stamp)
        elif kind == REASON_TRUNCATED:
            msg = bag.image_message(samples.one_face().rgb, stamp)
            msg.data = msg.data[: msg.data.size // 2]
            bag.add_message(msg, stamp)
        elif kind == REASON_UNSUPPORTED:
            depth = np.full((480, 640), 1.5, np.float32)
            bag.add_frame(depth.view(np.uint8).reshape(480, 640 * 4), stamp, encoding="32FC1")
        else:
            bag.add_frame(image, stamp, encoding)
        if kind in ("face", "noface", "too_small"):
            msg = bag.image_message(image, stamp, encoding)
            written.frames.append(image_to_array(msg))
        else:
            written.frames.append(None)


def write_mixed_bag(path: Path, storage: str, version: int, label_topic: bool = False) -> Written:
    written = Written([], [], [])
    with ImageBagWriter(path, TOPIC, version=version, storage=storage) as bag:
        _raw_frames(bag, written)
        if label_topic:
            bag.add_label("happy", written.stamps_ns[0])
    return written


def _seconds(stamp_ns: int) -> float:
    """A header stamp in seconds, computed as the tools compute it (sec + nanosec * 1e-9)."""
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    return sec + nanosec * 1e-9


def _reference(written: Written) -> list:
    """The pipeline's own results for the readable frames (None where it refuses the frame)."""
    out = []
    with fresh_pipeline() as pipeline:
        for frame, stamp in zip(written.frames, written.stamps_ns):
            if frame is None:
                continue
            try:
                out.append(pipeline.process(frame[0], _seconds(stamp), frame[1]))
            except Exception:
                out.append(None)
    return out


def _read_output(path: Path) -> tuple[list, dict]:
    with open_bag(path) as bag:
        (topic,) = bag.topics()
        msgs = [(m.timestamp_ns, bag.deserialize(m)) for m in bag.messages(bag.connections(topic.name))]
    meta = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    return msgs, meta


@pytest.mark.parametrize("storage,version", [("sqlite3", 8), ("sqlite3", 9), ("mcap", 8), ("mcap", 9)])
def test_every_message_is_accounted_for_and_the_output_bag_matches_the_pipeline(
        tmp_path: Path, storage: str, version: int) -> None:
    bag_path = tmp_path / "in"
    written = write_mixed_bag(bag_path, storage, version)
    out = tmp_path / "out"
    run = run_offline(EvalOptions(bag_path, TOPIC, out, format_version=version, storage=storage))

    m = run.ledger.as_dict()
    assert m["total"] == len(written.kinds) == 18
    assert m["processed"] == written.kinds.count("face") + written.kinds.count("noface") == 14
    assert m["unreadable_reasons"] == {REASON_CORRUPT: 1, REASON_TRUNCATED: 1, REASON_UNSUPPORTED: 1}
    assert m["dropped_reasons"] == {REASON_CORRUPT: 1}  # too small for the pipeline: the node counts it as corrupt too
    assert {e["reason"] for e in m["examples"]} == {REASON_CORRUPT, REASON_TRUNCATED, REASON_UNSUPPORTED}

    msgs, meta = _read_output(out / "emotions")
    assert meta["version"] == version
    assert meta["storage_identifier"] == storage
    topic_meta = meta["topics_with_message_count"][0]["topic_metadata"]
    assert topic_meta["name"] == "/emotions" and topic_meta["type"] == "fer_ros/msg/EmotionArray"
    assert topic_meta["offered_qos_profiles"]  # recorded, so playback does not guess
    assert len(msgs) == m["processed"]

    expected = [r for r in _reference(written) if r is not None]
    processed_stamps = [s for s, k in zip(written.stamps_ns, written.kinds) if k in ("face", "noface")]
    kinds = [k for k in written.kinds if k in ("face", "noface")]
    assert len(expected) == len(msgs)
    for (bag_time, msg), ref, stamp, kind in zip(msgs, expected, processed_stamps, kinds):
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == divmod(stamp, 1_000_000_000)
        assert bag_time == stamp + 2_000_000  # the source image's bag time
        assert msg.header.frame_id == "camera"
        assert msg.model_id == "mini_xception_fer2013" and list(msg.labels) == list(FER2013_LABELS)
        assert msg.processing_latency_ms > 0
        assert len(msg.emotions) == len(ref.faces) == (1 if kind == "face" else 0)
        for e, f in zip(msg.emotions, ref.faces):
            assert e.face_id == f.face_id
            x0, y0, x1, y1 = (float(v) for v in f.box)  # the box clipped to the 640x480 image, in whole pixels
            assert abs(e.roi.x_offset - max(0.0, x0)) <= 0.5 and abs(e.roi.y_offset - max(0.0, y0)) <= 0.5
            assert abs(e.roi.width - (min(640.0, x1) - max(0.0, x0))) <= 1.0
            assert abs(e.roi.height - (min(480.0, y1) - max(0.0, y0))) <= 1.0
            assert (e.roi.x_offset, e.roi.y_offset, e.roi.width, e.roi.height) == face_roi(f.box, ref.image_size)
            assert not e.roi.do_rectify
            assert np.allclose([[p.x, p.y, p.z] for p in e.landmarks],
                               np.c_[f.landmarks, np.zeros(5)], atol=1e-3)
            assert e.detection_confidence == pytest.approx(f.detection_score, abs=1e-5)
            assert e.label == f.label and e.label == FER2013_LABELS[int(np.argmax(e.probabilities))]
            assert e.confidence == pytest.approx(f.confidence, abs=1e-5)
            assert np.allclose(e.probabilities, f.probabilities, atol=1e-5)
            assert float(np.sum(e.probabilities)) == pytest.approx(1.0, abs=1e-4)
            assert e.frames_used == 1 and math.isnan(e.valence) and math.isnan(e.arousal)
    # the moving face keeps its id through the clip
    ids = {e.face_id for _, msg in msgs[:5] for e in msg.emotions}
    assert len(ids) == 1

    report = write_report(run, out, {"mode": "offline", "bag": str(bag_path), "topic": TOPIC})
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["messages"]["total"] == 18 and on_disk["frames_without_face"]["count"] == 2
    assert on_disk["faces_per_frame"]["histogram"] == {"0": 2, "1": 12}
    assert on_disk["accuracy"] is None  # no labels given
    for stage in ("detect_ms", "landmarks_ms", "align_ms", "infer_ms", "total_ms", "decode_ms"):
        assert on_disk["latency_ms"][stage]["count"] == 14 and on_disk["latency_ms"][stage]["p95"] >= 0
    assert "| 18 | 14 | 1 | 3 |" in (out / "report.md").read_text()
    assert set(report["figures"]) >= {"latency.png", "faces_per_frame.png", "flicker.png"}
    assert all((out / f).stat().st_size > 1000 for f in report["figures"])


def test_compressed_topic_with_truncated_corrupt_and_unsupported_messages(tmp_path: Path) -> None:
    path = tmp_path / "compressed"
    faces = [samples.one_face(cx=260 + 10 * i) for i in range(4)]
    with ImageBagWriter(path, TOPIC + "/compressed", version=9, storage="mcap", compressed="jpeg") as bag:
        for i, f in enumerate(faces):
            bag.add_frame(f.bgr, T0_NS + i * PERIOD_NS)
        cut = bag.image_message(faces[0].bgr, T0_NS + 4 * PERIOD_NS)
        cut.data = cut.data[: cut.data.size - 500]  # a JPEG cut short: OpenCV would still decode it
        bag.add_message(cut, T0_NS + 4 * PERIOD_NS)
        bad = bag.image_message(faces[0].bgr, T0_NS + 5 * PERIOD_NS)
        bad.data = np.frombuffer(b"\xff\xd8\xff" + bytes(200) + b"\xff\xd9", np.uint8)  # JPEG markers, no image
        bag.add_message(bad, T0_NS + 5 * PERIOD_NS)
        depth = bag.image_message(faces[0].bgr, T0_NS + 6 * PERIOD_NS)
        depth.format = "16UC1; compressedDepth png"
        bag.add_message(depth, T0_NS + 6 * PERIOD_NS)
        png = bag.image_message(faces[1].bgr, T0_NS + 7 * PERIOD_NS)
        png.data, png.format = cv2.imencode(".png", faces[1].bgr)[1].reshape(-1), "bgr8; png compressed bgr8"
        bag.add_message(png, T0_NS + 7 * PERIOD_NS)
        bomb = bag.image_message(faces[0].bgr, T0_NS + 8 * PERIOD_NS)  # 25 Mpx of zeros in a few KB of PNG
        bomb.data, bomb.format = cv2.imencode(".png", np.zeros((5000, 5000), np.uint8))[1].reshape(-1), "png"
        bag.add_message(bomb, T0_NS + 8 * PERIOD_NS)
        damaged = bag.image_message(faces[2].bgr, T0_NS + 9 * PERIOD_NS)
        damaged.data = damaged.data.copy()
        damaged.data[damaged.data.size // 2:damaged.data.size // 2 + 500] = 0  # a lost block: libjpeg warns
        bag.add_message(damaged, T0_NS + 9 * PERIOD_NS)
    run = run_offline(EvalOptions(path, TOPIC + "/compressed", tmp_path / "out", format_version=8))
    m = run.ledger.as_dict()
    assert (m["total"], m["processed"], m["dropped"]) == (10, 5, 0)
    assert m["unreadable_reasons"] == {REASON_TRUNCATED: 1, REASON_CORRUPT: 2, REASON_UNSUPPORTED: 1,
                                       REASON_TOO_LARGE: 1}
    assert all(len(r.faces) == 1 for r in run.frames)


def test_smoothing_applied_after_the_fact_equals_the_pipeline_with_smoothing(tmp_path: Path) -> None:
    """One pass gives the node's smoothed labels and the raw ones: checked against a pipeline smoothing itself."""
    path = tmp_path / "clip"
    clip = list(samples.camera_clip(samples.ClipConfig(frames=12, faces=2, face_width=110, seed=5)))
    with ImageBagWriter(path, TOPIC, version=9) as bag:
        for i, (_, f) in enumerate(clip):
            bag.add_frame(f.rgb, T0_NS + i * PERIOD_NS)
    params_file = tmp_path / "fer.yaml"
    params_file.write_text("fer_node:\n  ros__parameters:\n    smoothing: 0.7\n")
    run = run_offline(EvalOptions(path, TOPIC, tmp_path / "out", params_file=params_file))
    with fresh_pipeline(params_file, smoothing=None) as smoothing_pipeline:
        assert smoothing_pipeline.config.smoothing == 0.7
        direct = [smoothing_pipeline.process(f.rgb, _seconds(T0_NS + i * PERIOD_NS)) for i, (_, f) in
                  enumerate(clip)]
    assert len(run.frames) == len(direct) == 12
    for record, ref in zip(run.frames, direct):
        assert [f.face_id for f in record.faces] == [f.face_id for f in ref.faces]
        for got, want in zip(record.faces, ref.faces):
            assert got.label == want.label
            assert np.allclose(got.probabilities, want.probabilities, atol=1e-7)
    assert any(f.raw_label is not None for r in run.frames for f in r.faces)
    report = write_report(run, tmp_path / "out", {"mode": "offline"})
    assert report["flicker"]["smoothing"] == 0.7
    assert report["flicker"]["with_smoothing"]["tracks"] == 2
    assert report["flicker"]["without_smoothing"]["tracks"] == 2


def test_labels_in_three_forms_score_the_same(tmp_path: Path) -> None:
    """Labels built so that exactly half the labelled faces are right: accuracy 0.5 from CSV, intervals and topic."""
    path = tmp_path / "labelled"
    written = write_mixed_bag(path, "sqlite3", 9)
    first = run_offline(EvalOptions(path, TOPIC, tmp_path / "first"))
    predicted = {r.stamp_ns: r.faces[0].label for r in first.frames if r.faces}
    face_stamps = sorted(predicted)[:8]
    wrong = {name: next(x for x in FER2013_LABELS if x != name) for name in FER2013_LABELS}
    truth = {s: (predicted[s] if i < 4 else wrong[predicted[s]]) for i, s in enumerate(face_stamps)}
    no_face_stamp = next(s for s, k in zip(written.stamps_ns, written.kinds) if k == "noface")
    dropped_stamp = next(s for s, k in zip(written.stamps_ns, written.kinds) if k == "too_small")

    per_frame = tmp_path / "per_frame.csv"
    rows = [f"{s * 1e-9:.9f},{truth[s].upper()}" for s in face_stamps]
    rows += [f"{no_face_stamp * 1e-9:.9f},happy", f"{dropped_stamp * 1e-9:.9f},sad", "1.0,happy", "5.0,joy"]
    per_frame.write_text("stamp,label\n" + "\n".join(rows) + "\n")
    intervals = tmp_path / "intervals.csv"
    half = PERIOD_NS * 0.4e-9
    intervals.write_text("start,end,label\n" + "\n".join(
        f"{s * 1e-9 - half:.9f},{s * 1e-9 + half:.9f},{truth[s]}" for s in face_stamps) + "\n")

    run = run_offline(EvalOptions(path, TOPIC, tmp_path / "out", labels_file=per_frame))
    report = write_report(run, tmp_path / "out", {"mode": "offline"})
    assert report["accuracy"] == pytest.approx(0.5)
    assert report["scoring"]["scored"] == 8 and report["scoring"]["labelled_faces"] == 10
    assert report["scoring"]["not_scored"]["no_face_in_frame"] == 1
    assert report["scoring"]["not_scored"]["frame_not_processed"] == 1
    assert report["labels"]["unknown_names"] == {"joy": 1} and report["labels"]["unmatched_rows"] == 1
    cm = np.asarray(report["confusion_matrix"]["rows_truth_columns_predicted"])
    assert cm.sum() == 8 and np.trace(cm) == 4
    assert sum(v["support"] for v in report["scoring"]["per_class"].values()) == 8
    assert 0.0 <= report["macro_f1"] <= 1.0
    assert (tmp_path / "out" / "confusion.png").stat().st_size > 1000

    run.label_set = read_label_csv(intervals, FER2013_LABELS)
    s_intervals = score(run)
    assert s_intervals["accuracy"] == pytest.approx(0.5) and s_intervals["scoring"]["scored"] == 8
    assert s_intervals["confusion_matrix"] == report["confusion_matrix"]

    # the same truth as a std_msgs/String label topic in a copy of the bag: each label holds until the next message
    topic_bag = tmp_path / "with_topic"
    with ImageBagWriter(topic_bag, TOPIC, version=8, storage="mcap") as bag:
        for s, kind, frame in zip(written.stamps_ns, written.kinds, written.frames):
            if frame is not None and kind != "too_small":
                enc = {"rgb": "rgb8", "bgr": "bgr8", "gray": "mono8"}[frame[1]]
                bag.add_frame(frame[0], s, enc)
        for s in face_stamps:
            bag.add_label(truth[s], s - PERIOD_NS // 3)
            bag.add_label("", s + PERIOD_NS // 3)
    run_topic = run_offline(EvalOptions(topic_bag, TOPIC, tmp_path / "out_topic", label_topic="/labels"))
    s_topic = score(run_topic)
    assert s_topic["accuracy"] == pytest.approx(0.5) and s_topic["scoring"]["scored"] == 8
    assert s_topic["confusion_matrix"] == report["confusion_matrix"]


def test_unusable_bags_fail_with_a_listing_of_what_they_contain(tmp_path: Path) -> None:
    not_a_bag = tmp_path / "not_a_bag"
    not_a_bag.mkdir()
    (not_a_bag / "notes.txt").write_text("hello")
    with pytest.raises(BagError, match="notes.txt"):
        open_bag(not_a_bag)
    with pytest.raises(BagError, match="does not exist"):
        open_bag(tmp_path / "missing")
    junk = tmp_path / "junk.db3"
    junk.write_bytes(b"not sqlite at all" * 10)
    with pytest.raises(BagError, match="junk.db3"):
        open_bag(junk)

    path = tmp_path / "bag"
    with ImageBagWriter(path, TOPIC) as bag:
        bag.add_frame(samples.no_face().rgb, T0_NS)
        bag.add_label("happy", T0_NS)
    with open_bag(path) as b:
        with pytest.raises(BagError, match=r"(?s)'/camera/missing' is not in the bag.*/camera/image_raw.*"
                                           r"sensor_msgs/msg/Image.*1 messages"):
            b.image_connections("/camera/missing")
        with pytest.raises(BagError, match=r"(?s)std_msgs/msg/String, expected one of sensor_msgs/msg/Image"):
            b.image_connections("/labels")
        assert len(b.image_connections("camera/image_raw")) == 1  # leading slash optional

    unknown = tmp_path / "unknown"
    store = make_typestore()
    writer = open_writer(unknown, 9, "sqlite3")
    writer.add_connection("/mystery", "acme_msgs/msg/Blob", msgdef="", rihs01="RIHS01_" + "0" * 64)
    add_topic(writer, "/camera", "sensor_msgs/msg/Image", store)
    writer.close()
    with open_bag(unknown) as b:
        with pytest.raises(BagError, match=r"(?s)acme_msgs/msg/Blob.*neither a standard.*/camera"):
            b.connections("/mystery")


def test_cli_writes_the_report_and_refuses_a_missing_topic(tmp_path: Path, capsys) -> None:
    from fer_ros.cli import main

    path = tmp_path / "bag"
    clip = list(samples.camera_clip(samples.ClipConfig(frames=6, faces=1, seed=1)))
    with ImageBagWriter(path, TOPIC, version=8, storage="mcap") as bag:
        for i, (_, f) in enumerate(clip):
            bag.add_frame(f.rgb, T0_NS + i * PERIOD_NS)
    labels = tmp_path / "labels.csv"
    labels.write_text("start,end,label\n0,1e10,happy\n")
    out = tmp_path / "out"
    assert main(["eval-bag", str(path), "--topic", TOPIC, "--labels", str(labels), "--out", str(out),
                 "--format-version", "8", "--storage", "mcap"]) == 0
    printed = capsys.readouterr().out
    assert "6 total, 6 processed" in printed and "frames/s" in printed and "accuracy" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["messages"]["processed"] == 6 and report["scoring"]["labelled_faces"] == 6
    meta = yaml.safe_load((out / "emotions" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 8 and meta["storage_identifier"] == "mcap"

    assert main(["eval-bag", str(path), "--topic", "/nope", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "'/nope' is not in the bag" in err and TOPIC in err
    assert main(["eval-bag", str(path), "--topic", TOPIC, "--out", str(out)]) == 2  # output bag exists
    assert "exists already" in capsys.readouterr().err


DAMAGED_FRAMES = 40


def _jpeg_bag(path: Path, storage: str, frames: int = DAMAGED_FRAMES) -> Path:
    """A real bag of JPEG frames; returns its storage file."""
    faces = [samples.one_face(cx=240 + 4 * i) for i in range(frames)]
    with ImageBagWriter(path, TOPIC + "/compressed", storage=storage, compressed="jpeg") as bag:
        for i, f in enumerate(faces):
            bag.add_frame(f.bgr, T0_NS + i * PERIOD_NS)
    return next(p for p in path.iterdir() if p.suffix in (".db3", ".mcap"))


def _damage_sqlite(db3: Path) -> None:
    """Garbage over two pages in the middle of the file, as a failing disk or a cut copy leaves it."""
    data = bytearray(db3.read_bytes())
    page = 4096
    mid = len(data) // 2 // page * page
    data[mid:mid + 2 * page] = np.random.default_rng(7).integers(0, 256, 2 * page, dtype=np.uint8).tobytes()
    db3.write_bytes(bytes(data))


def _damage_mcap(mcap: Path) -> None:
    """The length field of a message record in a chunk past the middle of the file, made far too large."""
    data = bytearray(mcap.read_bytes())
    u64 = lambda at: int.from_bytes(data[at:at + 8], "little")  # noqa: E731
    pos = 8  # after the magic; records are opcode (1 byte), length (8 bytes little-endian), content
    while not (data[pos] == 0x06 and pos > len(data) // 2):  # a Chunk record
        pos += 9 + u64(pos + 1)
    # chunk content: start time, end time, uncompressed size (8 bytes each), crc (4), compression (u32 length +
    # name), records length (8), then the records themselves (rosbags writes them uncompressed)
    name_len = int.from_bytes(data[pos + 37:pos + 41], "little")
    assert name_len == 0, "the chunk is compressed"
    inner = pos + 41 + name_len + 8
    while data[inner] != 0x05:  # skip schema/channel records to the first Message record
        inner += 9 + u64(inner + 1)
    data[inner + 1:inner + 9] = (u64(inner + 1) * 1000).to_bytes(8, "little")
    mcap.write_bytes(bytes(data))


@pytest.mark.parametrize("storage,damage,error", [("sqlite3", _damage_sqlite, "CorruptError"),
                                                  ("mcap", _damage_mcap, "Truncated record")])
def test_a_bag_damaged_mid_file_is_scored_as_far_as_it_reads(tmp_path: Path, capsys, storage, damage, error):
    from fer_ros.bag.bag_io import REASON_BAG_UNREADABLE
    from fer_ros.cli import main

    path = tmp_path / "bag"
    damage(_jpeg_bag(path, storage))
    out = tmp_path / "out"
    code = main(["eval-bag", str(path), "--topic", TOPIC + "/compressed", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 3, captured.err
    err_lines = [line for line in captured.err.splitlines() if line.startswith("fer-ros eval-bag")]
    assert len(err_lines) == 1 and "the bag is damaged" in err_lines[0] and error in err_lines[0], captured.err
    assert "Traceback" not in captured.err
    report = json.loads((out / "report.json").read_text())
    m, read = report["messages"], report["details"]["bag_read"]
    assert m["total"] == read["expected"] == DAMAGED_FRAMES  # every message the metadata counts is accounted for
    assert 0 < read["read"] < DAMAGED_FRAMES and error in read["error"]
    assert m["processed"] + m["dropped"] == read["read"]
    assert m["unreadable_reasons"] == {REASON_BAG_UNREADABLE: DAMAGED_FRAMES - read["read"]}
    msgs, _ = _read_output(out / "emotions")  # the output bag is complete for what was read
    assert len(msgs) == m["processed"]
    assert "metadata counts" in (out / "report.md").read_text()


def test_messages_missing_from_the_storage_are_reported(tmp_path: Path, capsys) -> None:
    import sqlite3

    from fer_ros.bag.bag_io import REASON_MISSING
    from fer_ros.cli import main

    path = tmp_path / "bag"
    db3 = _jpeg_bag(path, "sqlite3", frames=20)
    with sqlite3.connect(db3) as db:  # rows lost, metadata.yaml still counts them
        db.execute("DELETE FROM messages WHERE id > 10")
    out = tmp_path / "out"
    assert main(["eval-bag", str(path), "--topic", TOPIC + "/compressed", "--out", str(out)]) == 3
    assert "10 of 20 messages read" in capsys.readouterr().err
    m = json.loads((out / "report.json").read_text())["messages"]
    assert m["total"] == 20 and m["unreadable_reasons"] == {REASON_MISSING: 10}


def test_a_folder_without_metadata_says_the_storage_file_can_be_passed(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    db3 = _jpeg_bag(path, "sqlite3", frames=3)
    (path / "metadata.yaml").unlink()
    with pytest.raises(BagError, match=r"no metadata.yaml.*pass it directly.*\.db3"):
        open_bag(path)
    with open_bag(db3) as bag:
        assert bag.count(bag.image_connections(TOPIC + "/compressed")) == 3


def test_an_interrupted_run_leaves_no_partial_output_bag(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "bag"
    _jpeg_bag(path, "sqlite3", frames=300)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fer_ros.cli", "eval-bag", str(path), "--topic", TOPIC + "/compressed", "--out",
           str(out)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ))
    deadline = time.monotonic() + 120
    while not (out / "emotions").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # into the frames
    assert proc.poll() is None, "eval-bag ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)  # Ctrl-C in the middle of the bag
    proc.wait(timeout=120)
    assert not (out / "emotions").exists(), "a partial output bag was left behind"
    assert subprocess.run(cmd[:-1] + [str(out)], capture_output=True, timeout=600).returncode == 0  # rerun


def test_misspelt_parameters_are_printed_with_the_closest_name(tmp_path: Path, capsys) -> None:
    from fer_ros.cli import main

    path = tmp_path / "bag"
    _jpeg_bag(path, "sqlite3", frames=2)
    params = tmp_path / "params.yaml"
    params.write_text("/**/fer_node:\n  ros__parameters:\n    detector:\n      min_confidense: 0.4\n")
    out = tmp_path / "out"
    assert main(["eval-bag", str(path), "--topic", TOPIC + "/compressed", "--params-file", str(params),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "unknown parameter 'detector.min_confidense' is ignored: did you mean 'detector.min_confidence'?" in printed
    assert json.loads((out / "report.json").read_text())["unknown_params"] == ["detector.min_confidense"]
