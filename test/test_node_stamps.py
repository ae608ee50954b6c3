"""Input stamps that go backwards, live (issue 13, item 1): two publishers on the camera topic, the second 50 ms
behind, must not reset the face tracks; a real jump back (a bag looping) resets them, is logged once and counted.
The installed fer_node in its own process, real DDS on loopback, real face photos."""
from __future__ import annotations

import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 venv: scripts/setup.sh, then source ./env.sh")
pytest.importorskip("fer_ros.msg", reason="fer_ros is not built: run scripts/setup.sh")

from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from fer_ros import samples  # noqa: E402
from fer_ros.ros import graph  # noqa: E402
from fer_ros.ros.conversions import array_to_image  # noqa: E402
from test_node_ros import Harness, node_output, start_node  # noqa: E402

pytestmark = pytest.mark.ros
BEHIND_NS = 50_000_000  # the second publisher's stamps trail the first's by 50 ms
FRAMES = 90


def diag_values(harness: Harness) -> dict[str, str]:
    for d in reversed(harness.diagnostics):
        for status in d.status:
            if "facial expression recognition" in status.name:
                return {kv.key: kv.value for kv in status.values} | {"_message": status.message}
    return {}


@pytest.fixture(scope="module")
def ros_context():
    rclpy.init()
    yield
    rclpy.shutdown()


def test_a_second_publisher_behind_keeps_ids_and_a_jump_back_resets_once(ros_context):
    proc = start_node(False, **{"diagnostics.period": 0.5})
    harness = Harness(compressed=False)
    second = harness.node.create_publisher(Image, "/cam/image", qos_profile_sensor_data)
    try:
        clip = [f for _, f in samples.camera_clip(samples.ClipConfig(frames=FRAMES, faces=2, face_width=90))]
        harness.send_until_answered(lambda: array_to_image(clip[0].rgb, "rgb8"))
        harness.emotions.clear()
        msgs = [array_to_image(f.rgb, "rgb8") for f in clip]
        for i, msg in enumerate(msgs):
            stamp = harness.publish(msg)
            late = array_to_image(clip[max(i - 1, 0)].rgb, "rgb8")  # what a camera 50 ms behind saw
            late.header.frame_id = "test_camera"
            late.header.stamp = Time(nanoseconds=stamp[0] * 1_000_000_000 + stamp[1] - BEHIND_NS).to_msg()
            time.sleep(0.005)
            second.publish(late)
            time.sleep(1 / 30)
        assert harness.wait_for(lambda: diag_values(harness).get("input_publishers") == "2", 10.0)
        got = [m for _, m in harness.emotions]
        two = [m for m in got if len(m.emotions) == 2]
        assert len(two) >= FRAMES // 2, f"{len(two)} of {len(got)} answers had both faces"
        ids = {e.face_id for m in two for e in m.emotions}
        assert len(ids) == 2, f"ids {sorted(ids)} over {len(two)} messages: tracks were reset by late stamps"
        values = diag_values(harness)
        assert int(values["stamps_late"]) > 0 and values["stamps_jumped_back"] == "0"
        assert "2 publishers on the input topic" in values["_message"]

        # a bag played again: stamps jump back far; tracks reset, logged once, counted
        old = array_to_image(clip[0].rgb, "rgb8")
        old.header.frame_id = "test_camera"
        now = harness.node.get_clock().now().nanoseconds
        for k in range(3):
            old.header.stamp = Time(nanoseconds=now - 600_000_000_000 + k * 33_000_000).to_msg()
            second.publish(old)
            time.sleep(0.1)
        assert harness.wait_for(lambda: diag_values(harness).get("stamps_jumped_back") == "1", 10.0), \
            diag_values(harness)
    finally:
        harness.close()
        code = graph.stop(proc)
    log = node_output(proc)
    assert code == 0, log[-3000:]
    assert log.count("stamps jumped back") == 1, log[-3000:]
    assert log.count("publishers on /cam/image") == 1

