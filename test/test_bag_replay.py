"""Live replay through real ROS 2 processes: ``fer-ros replay`` (rclpy publisher of the bag's raw bytes + raw recorder)
-> the installed fer_node executable (config/fer.yaml) -> EmotionArray recorded into a bag, read back with rosbags.

The bag mixes a two-face clip of the real astronaut photo, a frame without a face and broken messages (garbage CDR,
a truncated image, an unsupported encoding). Checked: every message is accounted for, the recorded EmotionArrays
(serialized by rclpy, deserialized by rosbags) equal the offline evaluator's field by field, the labels of the two
runs agree, and a missing node gives a clear error. DDS stays on localhost in a random domain (test/conftest.py).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy", reason="needs the ROS 2 venv: scripts/setup.sh, then source ./env.sh")
pytest.importorskip("fer_ros.msg", reason="fer_ros is not built: run scripts/setup.sh")

from terminal import run_with_stderr_on_a_terminal  # noqa: E402

from fer_ros import samples  # noqa: E402
from fer_ros.bag.bag_io import open_bag  # noqa: E402
from fer_ros.bag.make_bag import ImageBagWriter  # noqa: E402
from fer_ros.ros import graph  # noqa: E402

pytestmark = pytest.mark.ros
TOPIC = "/camera/image_raw"
T0_NS = 1_700_000_000_000_000_000
PERIOD_NS = 33_333_333
CLIP_FRAMES = 16
REPLAY_TIMEOUT_S = 240  # node start-up (imports, model), discovery and the replay itself on a loaded 2-core machine


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> tuple[Path, Path, list[int]]:
    """The input bag (sqlite3, format 9), a per-frame label file, and the stamps of the face frames."""
    root = tmp_path_factory.mktemp("replay")
    path = root / "session"
    clip = [f for _, f in samples.camera_clip(samples.ClipConfig(frames=CLIP_FRAMES, faces=2, face_width=110,
                                                                  seed=7))]
    face_stamps = []
    with ImageBagWriter(path, TOPIC, version=9, storage="sqlite3") as b:
        n = 0
        for i, frame in enumerate(clip):
            stamp = T0_NS + n * PERIOD_NS
            b.add_frame(frame.rgb, stamp)
            face_stamps.append(stamp)
            n += 1
            if i == 5:  # broken messages in the middle of the stream
                b.add_raw(b"\x00\x01\x00\x00" + bytes(range(3, 90)), T0_NS + n * PERIOD_NS)
                n += 1
                cut = b.image_message(frame.rgb, T0_NS + n * PERIOD_NS)
                cut.data = cut.data[:1000]
                b.add_message(cut, T0_NS + n * PERIOD_NS)
                n += 1
                b.add_frame(np.zeros((480, 640 * 2), np.uint8), T0_NS + n * PERIOD_NS, encoding="16UC1")
                n += 1
                b.add_frame(samples.no_face().rgb, T0_NS + n * PERIOD_NS)
                n += 1
    labels = root / "labels.csv"
    labels.write_text("stamp,label\n" + "".join(f"{s * 1e-9:.9f},{'happy' if k % 2 else 'neutral'}\n"
                                                for k, s in enumerate(face_stamps)))
    return path, labels, face_stamps


def _replay(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_ros.cli", "replay", *args], env=env, capture_output=True,
                          text=True, timeout=REPLAY_TIMEOUT_S)


def _emotions(path: Path) -> list:
    with open_bag(path) as b:
        (topic,) = [t for t in b.topics() if t.msgtype == "fer_ros/msg/EmotionArray"]
        return [b.deserialize(m) for m in b.messages(b.connections(topic.name))]


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_lockstep_replay_through_the_installed_node_equals_offline(bag, tmp_path: Path) -> None:
    """Three processes: this test starts fer_node itself; replay publishes and records; nothing may be lost."""
    path, labels, face_stamps = bag
    env = graph.ros_env(domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    log = open(tmp_path / "fer_node.log", "w")
    # the whole-frame pass inline, as offline: the node's own thread would see lockstep frames at machine speed
    node = graph.start(graph.node_command(graph.default_params_file(), remap={"image": TOPIC},
                                          params={"detector.parallel": False}), env, stdout=log, stderr=log)
    out = tmp_path / "live"
    try:
        done = _replay([str(path), "--topic", TOPIC, "--out", str(out), "--lockstep", "--labels", str(labels),
                        "--format-version", "8", "--storage", "mcap"], env)
    finally:
        code = graph.stop(node)
        log.close()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "\r" not in done.stderr and "frames (" not in done.stderr  # stderr is a pipe: no progress bar
    assert code == 0, (tmp_path / "fer_node.log").read_text()[-3000:]

    report = json.loads((out / "report.json").read_text())
    m = report["messages"]
    assert (m["total"], m["processed"], m["dropped"]) == (CLIP_FRAMES + 4, CLIP_FRAMES + 1, 0)
    assert m["unreadable_reasons"] == {"corrupt": 1, "truncated": 1, "unsupported_encoding": 1}
    details = report["details"]
    assert details["answers_for_unreadable_messages"] == 0 and details["answers_matching_no_message"] == 0
    assert details["undecodable_answers"] == 0 and details["duplicate_answers"] == 0
    assert report["latency_ms"]["round_trip_ms"]["count"] == CLIP_FRAMES + 1
    histogram = report["faces_per_frame"]["histogram"]
    assert histogram["0"] == 1 and sum(histogram.values()) == CLIP_FRAMES + 1 and histogram["2"] >= CLIP_FRAMES // 2
    assert "live dropped 0" in done.stdout and "frames/s" in done.stdout

    meta = yaml.safe_load((out / "emotions" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 8 and meta["storage_identifier"] == "mcap"
    assert meta["topics_with_message_count"][0]["topic_metadata"]["offered_qos_profiles"]

    # rclpy's CDR read by rosbags equals what the offline evaluator wrote, field by field
    live = {_stamp(x): x for x in _emotions(out / "emotions")}
    offline = {_stamp(x): x for x in _emotions(out / "offline" / "emotions")}
    assert set(live) == set(offline) and len(live) == CLIP_FRAMES + 1
    assert set(face_stamps) <= set(live)
    for stamp, a in live.items():
        b = offline[stamp]
        assert a.header.frame_id == b.header.frame_id == "camera"
        assert a.model_id == b.model_id == "mini_xception_fer2013"
        assert list(a.labels) == list(b.labels) and len(a.labels) == 7
        assert a.processing_latency_ms > 0
        assert [e.face_id for e in a.emotions] == [e.face_id for e in b.emotions]
        for ea, eb in zip(a.emotions, b.emotions):
            assert (ea.roi.x_offset, ea.roi.y_offset, ea.roi.width, ea.roi.height, ea.roi.do_rectify) == \
                   (eb.roi.x_offset, eb.roi.y_offset, eb.roi.width, eb.roi.height, eb.roi.do_rectify)
            assert np.allclose([[p.x, p.y, p.z] for p in ea.landmarks], [[p.x, p.y, p.z] for p in eb.landmarks],
                               atol=1e-3)
            assert ea.detection_confidence == pytest.approx(eb.detection_confidence, abs=1e-5)
            assert ea.label == eb.label and ea.confidence == pytest.approx(eb.confidence, abs=1e-5)
            assert np.allclose(ea.probabilities, eb.probabilities, atol=1e-5)
            assert ea.frames_used == eb.frames_used == 1
            assert math.isnan(ea.valence) and math.isnan(ea.arousal)

    c = report["comparison_with_offline"]
    assert c["frames_both_processed"] == CLIP_FRAMES + 1 == c["frames_same_labels"]
    offline_report = json.loads((out / "offline" / "report.json").read_text())
    assert report["faces_per_frame"] == offline_report["faces_per_frame"]
    faces = sum(int(k) * v for k, v in histogram.items())
    assert c["faces_compared"] == faces == c["faces_same_label"]
    assert c["live_dropped"] == 0 and c["processed_offline_only"] == 0
    assert report["accuracy"] == offline_report["accuracy"] is not None
    assert report["confusion_matrix"] == offline_report["confusion_matrix"]
    assert report["scoring"]["scored"] == CLIP_FRAMES
    assert (out / "report.md").read_text().count("Live against offline") == 1


def test_timed_replay_with_the_node_started_by_the_tool(bag, tmp_path: Path) -> None:
    """At twice the recorded pace the node may skip frames: whatever happens, every message is accounted for. Run as
    in a user's shell (stderr a terminal), replay draws its progress while it publishes to the live node."""
    path, _, _ = bag
    env = graph.ros_env(domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    out = tmp_path / "timed"
    cmd = [sys.executable, "-m", "fer_ros.cli", "replay", str(path), "--topic", TOPIC, "--out", str(out),
           "--rate", "2", "--start-node", "--params-file", str(graph.default_params_file())]
    code, drawn = run_with_stderr_on_a_terminal(cmd, REPLAY_TIMEOUT_S, env)
    assert code == 0, drawn[-3000:] + (out / "fer_node.log").read_text()[-2000:]
    total = CLIP_FRAMES + 4
    assert f"\rreplay: {total}/{total} frames (100 %)" in drawn, drawn[-3000:]
    assert f"\rreplay (offline comparison): {total}/{total} frames (100 %)" in drawn, drawn[-3000:]
    assert "Traceback" not in drawn
    report = json.loads((out / "report.json").read_text())
    m = report["messages"]
    assert m["total"] == CLIP_FRAMES + 4 and m["unreadable"] == 3
    assert m["processed"] + m["dropped"] == CLIP_FRAMES + 1 and m["processed"] >= (CLIP_FRAMES + 1) // 2
    assert set(m["dropped_reasons"]) <= {"no_output"}
    c = report["comparison_with_offline"]
    assert c["live_dropped"] == m["dropped"] and c["processed_offline_only"] == m["dropped"]
    # frames processed both ways carry the same labels while the node saw the same sequence (no drop before them)
    assert c["frames_both_processed"] == m["processed"] and c["frames_same_labels"] >= 1
    assert "fer_node" in (out / "fer_node.log").read_text()


def test_replay_without_a_node_says_what_to_start(bag, tmp_path: Path) -> None:
    path, _, _ = bag
    env = graph.ros_env()  # a domain of its own: nobody listens there
    done = _replay([str(path), "--topic", TOPIC, "--out", str(tmp_path / "nobody"), "--wait", "2",
                    "--no-offline"], env)
    assert done.returncode == 2
    assert "nobody subscribes to /camera/image_raw" in done.stderr and "--start-node" in done.stderr
    missing = _replay([str(path), "--topic", "/nope", "--out", str(tmp_path / "x"), "--no-offline"], env)
    assert missing.returncode == 2 and "'/nope' is not in the bag" in missing.stderr and TOPIC in missing.stderr
