"""Labels for bag evaluation (per-frame CSV, interval CSV, label topic) and the metrics computed from them.

No pipeline here: label files and bags are written by the test, read back through the same code eval-bag uses, and
every count (matched, unknown, invalid, unmatched, conflicting) is checked, as are accuracy, macro-F1 and flicker
against values worked out by hand.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fer_ros.bag.bag_io import add_topic, make_typestore, open_bag, open_writer
from fer_ros.bag.labels import KIND_INTERVAL, KIND_PER_FRAME, labels_from_messages, read_label_csv
from fer_ros.bag.metrics import TrackLabels, classification, distribution, flicker
from fer_ros.bag.params import read_node_params
from fer_ros.errors import ConfigError
from fer_ros.model_card import FER2013_LABELS

PERIOD = 1 / 30
STAMPS = [100.0 + i * PERIOD for i in range(30)]  # 30 frames at 30 Hz


def _names(assigned: dict, stamps_count: int = len(STAMPS)) -> list[str | None]:
    out: list[str | None] = [None] * stamps_count
    for i, labels in assigned.items():
        out[i] = FER2013_LABELS[labels[0].label]
    return out


def test_per_frame_csv_matches_nearest_frame_within_half_a_period(tmp_path: Path) -> None:
    f = tmp_path / "per_frame.csv"
    f.write_text("stamp,label\n"
                 f"{STAMPS[0]},Happy\n"                      # exact, mixed case
                 f"{STAMPS[3] + 0.4 * PERIOD},sad\n"         # within half a period of frame 3
                 f"{STAMPS[5] + 0.6 * PERIOD},fear\n"        # nearer frame 6 than 5
                 f"{STAMPS[-1] + 0.51 * PERIOD},angry\n"     # beyond the last frame by more than half a period
                 "100.2,joy\n"                                # unknown name
                 "not-a-number,happy\n"                       # invalid stamp
                 f"{STAMPS[8]},\n")                           # empty label
    labels = read_label_csv(f, FER2013_LABELS)
    assert labels.kind == KIND_PER_FRAME
    names = _names(labels.assign(STAMPS))
    assert names[0] == "happy" and names[3] == "sad" and names[6] == "fear" and names[5] is None
    assert sum(n is not None for n in names) == 3
    summary = labels.summary()
    assert summary["unknown_names"] == {"joy": 1}
    assert summary["invalid_rows"] == 2 and len(summary["invalid_examples"]) == 2
    assert summary["unmatched_rows"] == 1 and summary["rows"] == 4


def test_per_frame_csv_with_faces_and_conflicts(tmp_path: Path) -> None:
    f = tmp_path / "faces.csv"
    f.write_text("stamp,label,face\n"
                 f"{STAMPS[2]},happy,3\n"
                 f"{STAMPS[2]},sad,7\n"      # a second person in the same frame
                 f"{STAMPS[2]},angry,3\n"    # contradicts the first row for face 3
                 f"{STAMPS[4]},neutral,\n")  # empty face: the largest face
    labels = read_label_csv(f, FER2013_LABELS)
    assigned = labels.assign(STAMPS)
    assert [(FER2013_LABELS[x.label], x.face) for x in assigned[2]] == [("happy", 3), ("sad", 7)]
    assert [(FER2013_LABELS[x.label], x.face) for x in assigned[4]] == [("neutral", None)]
    assert labels.conflicts == 1


def test_interval_csv_labels_every_frame_inside(tmp_path: Path) -> None:
    f = tmp_path / "intervals.csv"
    f.write_text("start,end,label\n"
                 f"{STAMPS[2]},{STAMPS[5]},surprise\n"
                 f"{STAMPS[10] - 0.001},{STAMPS[12] + 0.001},NEUTRAL\n"
                 f"{STAMPS[20]},{STAMPS[19]},happy\n"      # end before start: invalid
                 "50,60,happy\n")                            # before the recording: unmatched
    labels = read_label_csv(f, FER2013_LABELS)
    assert labels.kind == KIND_INTERVAL
    names = _names(labels.assign(STAMPS))
    assert [i for i, n in enumerate(names) if n == "surprise"] == [2, 3, 4, 5]
    assert [i for i, n in enumerate(names) if n == "neutral"] == [10, 11, 12]
    assert labels.invalid == 1 and labels.unmatched == 1


def test_label_file_with_an_unknown_header_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("time,emotion\n1.0,happy\n")
    with pytest.raises(ConfigError, match="stamp,label"):
        read_label_csv(f, FER2013_LABELS)
    with pytest.raises(ConfigError, match="does not exist"):
        read_label_csv(tmp_path / "missing.csv", FER2013_LABELS)


def _label_bag(tmp_path: Path, storage: str, version: int) -> Path:
    """A bag with three label topics: std_msgs/String, a custom stamped label type, and EmotionArray."""
    store = make_typestore()
    from rosbags.typesys import get_types_from_msg

    custom = "std_msgs/Header header\nstring label\nuint32 face_id\n"
    store.register(get_types_from_msg(custom, "my_hri/msg/StampedLabel"))
    path = tmp_path / f"labels_{storage}_{version}"
    writer = open_writer(path, version, storage)
    t = store.types
    string_conn = add_topic(writer, "/annotator/label", "std_msgs/msg/String", store)
    stamped_conn = add_topic(writer, "/annotator/stamped", "my_hri/msg/StampedLabel", store)
    array_conn = add_topic(writer, "/truth", "fer_ros/msg/EmotionArray", store)

    def header(s: float):
        ns = int(round(s * 1e9))
        return t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9),
                                        frame_id="camera")

    for when, name in ((STAMPS[0], "happy"), (STAMPS[5] - 0.001, ""), (STAMPS[10] - 0.001, "Sad"),
                       (STAMPS[12] - 0.001, "joy")):
        writer.write(string_conn, int(round(when * 1e9)),
                     store.serialize_cdr(t["std_msgs/msg/String"](data=name), "std_msgs/msg/String"))
    for i, name in ((1, "fear"), (7, "surprise")):
        msg = t["my_hri/msg/StampedLabel"](header=header(STAMPS[i]), label=name, face_id=4)
        writer.write(stamped_conn, int(round(STAMPS[i] * 1e9)), store.serialize_cdr(msg, "my_hri/msg/StampedLabel"))
    emotion = t["fer_ros/msg/Emotion"]
    roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=1, y_offset=2, height=3, width=4, do_rectify=False)
    point = t["geometry_msgs/msg/Point32"](x=0.0, y=0.0, z=0.0)
    e = emotion(face_id=9, roi=roi, landmarks=[point] * 5, landmark_source="detector", detection_confidence=1.0,
                label="disgust", confidence=1.0, probabilities=np.zeros(7, np.float32), frames_used=1, valence=math.nan,
                arousal=math.nan)
    arr = t["fer_ros/msg/EmotionArray"](header=header(STAMPS[3]), model_id="truth", labels=list(FER2013_LABELS),
                                        emotions=[e], processing_latency_ms=0.0)
    writer.write(array_conn, int(round(STAMPS[3] * 1e9)), store.serialize_cdr(arr, "fer_ros/msg/EmotionArray"))
    writer.close()
    return path


@pytest.mark.parametrize("storage,version", [("sqlite3", 8), ("mcap", 9)])
def test_label_topics_in_a_bag(tmp_path: Path, storage: str, version: int) -> None:
    path = _label_bag(tmp_path, storage, version)
    with open_bag(path) as bag:  # a fresh type store: the custom type must come from the bag's own definition
        results = {}
        for topic in ("/annotator/label", "/annotator/stamped", "/truth"):
            conns = bag.connections(topic)
            msgs = [(m.timestamp_ns, bag.deserialize(m)) for m in bag.messages(conns)]
            results[topic] = labels_from_messages(msgs, conns[0].msgtype, topic, FER2013_LABELS)
    strings = results["/annotator/label"]
    names = _names(strings.assign(STAMPS))
    assert [i for i, n in enumerate(names) if n == "happy"] == [0, 1, 2, 3, 4]  # until the empty (clearing) message
    assert [i for i, n in enumerate(names) if n == "sad"] == [10, 11]  # until the next (unknown) label
    assert names[12:] == [None] * 18 and strings.unknown == {"joy": 1}
    stamped = results["/annotator/stamped"].assign(STAMPS)
    assert {i: (FER2013_LABELS[v[0].label], v[0].face) for i, v in stamped.items()} == {1: ("fear", 4),
                                                                                      7: ("surprise", 4)}
    truth = results["/truth"].assign(STAMPS)
    assert {i: (FER2013_LABELS[v[0].label], v[0].face) for i, v in truth.items()} == {3: ("disgust", None)}


def test_classification_metrics_against_hand_computed_values() -> None:
    labels = ("a", "b", "c")
    truth = [0, 0, 0, 0, 1, 1, 2, 2]
    pred = [0, 0, 0, 1, 1, 0, 2, 1]
    m = classification(truth, pred, labels)
    assert m["confusion_matrix"]["rows_truth_columns_predicted"] == [[3, 1, 0], [1, 1, 0], [0, 1, 1]]
    assert m["accuracy"] == pytest.approx(5 / 8)
    # F1: a = 2*3/(4+4) = 0.75, b = 2*1/(2+3) = 0.4, c = 2*1/(2+1) = 2/3
    assert m["macro_f1"] == pytest.approx((0.75 + 0.4 + 2 / 3) / 3)
    assert m["per_class"]["a"]["accuracy"] == pytest.approx(0.75)
    assert m["per_class"]["c"]["accuracy"] == pytest.approx(0.5)
    empty = classification([], [], labels)
    assert empty["accuracy"] is None and empty["macro_f1"] is None
    assert empty["per_class"]["a"]["accuracy"] is None


def test_flicker_counts_changes_per_second_per_track() -> None:
    tracks = {
        1: TrackLabels([0.0, 0.5, 1.0, 1.5, 2.0], ["happy", "sad", "happy", "happy", "happy"]),  # 2 changes in 2 s
        2: TrackLabels([3.0, 1.0, 2.0], ["neutral", "neutral", "fear"]),  # unordered: 1 change in 2 s
        3: TrackLabels([5.0], ["sad"]),  # a single frame has no duration
    }
    f = flicker(tracks)
    assert f["per_track"]["1"]["changes_per_s"] == pytest.approx(1.0)
    assert f["per_track"]["2"]["changes"] == 2 and f["per_track"]["2"]["changes_per_s"] == pytest.approx(1.0)
    assert f["per_track"]["3"]["changes_per_s"] is None
    assert f["changes_per_s"] == pytest.approx(4 / 4.0)
    d = distribution([1.0, 2.0, 3.0, 4.0])
    assert d["p50"] == pytest.approx(2.5) and d["max"] == 4.0 and d["count"] == 4


def test_node_parameters_file_is_read_like_the_node(tmp_path: Path) -> None:
    params, unknown = read_node_params()  # the repository's config/fer.yaml
    assert params["model"] == "mini_xception_fer2013" and params["detector.use_mesh"] is True and unknown == []
    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    smoothing: 0.3\n"
                 "fer_node:\n  ros__parameters:\n    detector: {min_confidence: 0.7}\n    not_a_param: 1\n")
    params, unknown = read_node_params(f)
    assert params["smoothing"] == 0.3 and params["detector.min_confidence"] == 0.7 and unknown == ["not_a_param"]
    f.write_text("fer_node:\n  ros__parameters:\n    backend: cuda\n")
    with pytest.raises(ConfigError, match="backend"):
        read_node_params(f)
    f.write_text("other_node:\n  ros__parameters: {}\n")
    with pytest.raises(ConfigError, match="other_node"):
        read_node_params(f)
