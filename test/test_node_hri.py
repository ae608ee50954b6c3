"""The ROS4HRI face pipeline role against the real hri_msgs, over DDS, with real processes.

fer_node (the installed executable, config/fer.yaml) sees camera frames from this test; a REP-155 client in another
process (``hri_peer.py consumer``) knows nothing of fer_ros's ids: it learns the faces from /humans/faces/tracked,
subscribes to their topics as libhri does (reliable) and prints what it gets. Then the face leaves the camera and its
topics must leave the graph.
"""
from __future__ import annotations

import re
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 venv: scripts/setup.sh, then source ./env.sh")
pytest.importorskip("fer_ros.msg", reason="fer_ros is not built: run scripts/setup.sh")

from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from fer_ros.ros.conversions import array_to_image  # noqa: E402
from fer_ros.samples import FRAME_HEIGHT, FRAME_WIDTH, no_face, one_face  # noqa: E402
from hri_interop import FerNodeProcess, Peer, hri_env, hri_msgs_prefix, wait_until  # noqa: E402

pytestmark = pytest.mark.ros
STARTUP_TIMEOUT_S = 120.0  # model load + DDS discovery of three processes on two busy cores
FRAME_PERIOD_S = 0.2
PER_FACE = ("roi", "cropped", "aligned", "landmarks", "expression")


@pytest.fixture(scope="module")
def env():
    return hri_env(hri_msgs_prefix())


class Camera:
    """This test's camera: publishes frames and remembers the stamps it gave them."""

    def __init__(self) -> None:
        rclpy.init()
        self.node = rclpy.create_node("hri_test_camera")
        self.pub = self.node.create_publisher(Image, "/hri_cam/image", qos_profile_sensor_data)
        self.stamps: set[tuple[int, int]] = set()

    def publish(self, rgb) -> None:
        msg = array_to_image(rgb, "rgb8")
        msg.header.frame_id = "hri_camera"
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.stamps.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
        self.pub.publish(msg)

    def publishers(self, topic: str) -> int:
        return self.node.count_publishers(topic)

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.shutdown()


def stream_until(camera: Camera, rgb, done, timeout: float, node: FerNodeProcess) -> bool:
    """Publish ``rgb`` until ``done()``; False after ``timeout`` s or when the node has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and node.running:
        camera.publish(rgb)
        time.sleep(FRAME_PERIOD_S)
        if done():
            return True
    return False


def test_faces_are_discovered_through_tracked_and_leave_with_their_topics(env):
    node = FerNodeProcess(env, remap={"image": "/hri_cam/image", "emotions": "/hri/emotions"})
    consumer = Peer(["consumer"], env)
    camera = Camera()
    face = one_face()
    try:
        def face_complete() -> bool:
            return any(all(consumer.of(name, i) for name in PER_FACE) for e in consumer.of("tracked") for i in e["ids"])

        got_face = stream_until(camera, face.rgb, face_complete, STARTUP_TIMEOUT_S, node)
        listed = [e for e in consumer.of("tracked") if e["ids"]]
        ids = {i for e in listed for i in e["ids"]}
        face_id = next(iter(ids), None)

        def topics() -> dict[str, int]:
            return {n: camera.publishers(f"/humans/faces/{face_id}/{n}") for n in PER_FACE}

        def gone() -> bool:  # an empty list after the face was listed, and no publisher left on its topics
            tracked = consumer.of("tracked")
            last = max((k for k, e in enumerate(tracked) if e["ids"]), default=len(tracked))
            return any(not e["ids"] for e in tracked[last + 1:]) and not any(topics().values())

        # this process discovers the node's publishers on its own schedule
        topics_while_there = got_face and wait_until(lambda: topics() == dict.fromkeys(PER_FACE, 1), STARTUP_TIMEOUT_S)
        left = got_face and stream_until(camera, no_face().rgb, gone, STARTUP_TIMEOUT_S, node)
        topics_after = topics()
    finally:
        camera.close()
        consumer_err = consumer.stop()
        code, node_log = node.stop()
    context = f"\nconsumer: {consumer_err}\nnode (exit code {code}): {node_log[-3000:]}"
    assert got_face, f"the consumer never got every per-face topic; events: {consumer.events[-10:]}{context}"
    assert len(ids) == 1 and re.fullmatch(r"[a-z]{4}[0-9]+", face_id), f"one face, one stable id: {ids}"
    assert all(e["ids"] == [face_id] for e in listed)
    assert all(tuple(e["header"][:2]) in camera.stamps and e["header"][2] == "hri_camera"
               for e in consumer.events if "header" in e), "everything is stamped with its source image's header"
    assert topics_while_there, "this process never saw one publisher on each of the face's topics"

    roi = consumer.of("roi", face_id)[-1]
    truth = face.faces[0].box / [FRAME_WIDTH, FRAME_HEIGHT, FRAME_WIDTH, FRAME_HEIGHT]
    assert 0.0 <= roi["xmin"] < roi["xmax"] <= 1.0 and 0.0 <= roi["ymin"] < roi["ymax"] <= 1.0
    assert abs((roi["xmin"] + roi["xmax"]) / 2 - (truth[0] + truth[2]) / 2) < 0.05
    assert abs((roi["ymin"] + roi["ymax"]) / 2 - (truth[1] + truth[3]) / 2) < 0.07
    assert 0.5 <= roi["c"] <= 1.0  # the detection score

    expression = consumer.of("expression", face_id)[-1]
    assert expression["expression"] == "happy" and 0.5 < expression["confidence"] <= 1.0  # the astronaut smiles
    assert expression["valence"] == 0.0 and expression["arousal"] == 0.0  # the default model gives neither
    roi_stamps = {tuple(e["header"]) for e in consumer.of("roi", face_id)}
    assert {tuple(e["header"]) for e in consumer.of("expression", face_id)} & roi_stamps, "same frames, same stamps"

    cropped = consumer.of("cropped", face_id)[-1]
    assert cropped["encoding"] == "rgb8" and cropped["bytes"] == cropped["width"] * cropped["height"] * 3
    assert abs(cropped["width"] - (roi["xmax"] - roi["xmin"]) * FRAME_WIDTH) <= 2.5
    aligned = consumer.of("aligned", face_id)[-1]
    assert (aligned["encoding"], aligned["width"], aligned["height"]) == ("mono8", 64, 64)  # the default model's input

    points = consumer.of("landmarks", face_id)[-1]["points"]
    for slot in (68, 69, 30, 48, 54):  # pupils, nose tip, outer mouth corners
        x, y, _ = points[slot]
        assert roi["xmin"] <= x <= roi["xmax"] and roi["ymin"] <= y <= roi["ymax"], (slot, points[slot], roi)
    assert points[68][0] < points[69][0] and points[48][0] < points[54][0]  # the person's right is the image's left
    assert all(p == [0.0, 0.0, 0.0] for k, p in enumerate(points) if k not in (68, 69, 30, 48, 54))

    assert left, f"the face's topics stayed after it left (publishers: {topics_after}){context}"
    assert "ROS4HRI output on" in node_log
    assert code == 0, node_log[-3000:]


def test_faces_too_small_for_the_model_get_a_roi_and_no_expression(env):
    node = FerNodeProcess(env, remap={"image": "/hri_cam/image", "emotions": "/hri/emotions"},
                          params={"detector.min_face_size": 400})  # the 120-px face is below it: tracked, unlabelled
    consumer = Peer(["consumer"], env)
    camera = Camera()
    try:
        enough = stream_until(camera, one_face().rgb, lambda: len(consumer.of("roi")) >= 10, STARTUP_TIMEOUT_S, node)
    finally:
        camera.close()
        consumer_err = consumer.stop()
        code, node_log = node.stop()
    assert enough, f"no roi for the small face; events: {consumer.events[-10:]}\n{consumer_err}\n{node_log[-3000:]}"
    assert consumer.of("cropped") and consumer.of("landmarks")
    # published in the same frames as roi (same reliable writer queue) if they were published at all
    assert not consumer.of("expression") and not consumer.of("aligned")
    assert code == 0


def test_hri_mode_disabled_publishes_no_ros4hri_topic(env):
    node = FerNodeProcess(env, remap={"image": "/hri_cam/image", "emotions": "/hri/emotions"},
                          params={"hri.mode": "disabled"})
    camera = Camera()
    try:
        wait_until(lambda: not node.running or ("ready:" in node.output() and camera.publishers("/hri/emotions")),
                   STARTUP_TIMEOUT_S)
        emotions, tracked = camera.publishers("/hri/emotions"), camera.publishers("/humans/faces/tracked")
    finally:
        camera.close()
        code, node_log = node.stop()
    assert emotions == 1, node_log[-3000:]
    assert tracked == 0  # the node's endpoints are discovered together: its emotions publisher is there, this is not
    assert "ROS4HRI output off: hri.mode is disabled" in node_log and code == 0
