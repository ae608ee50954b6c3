"""Bad compressed input through the installed fer_node over real DDS: decompression bombs and JPEGs with corrupt
data are refused, counted under one name each on /diagnostics, logged throttled, and libjpeg prints nothing raw;
latency thresholds that contradict each other are refused at run time.
"""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 venv: scripts/setup.sh, then source ./env.sh")
pytest.importorskip("fer_ros.msg", reason="fer_ros is not built: run scripts/setup.sh")

from sensor_msgs.msg import CompressedImage  # noqa: E402
from test_node_ros import Harness, node_output, ros_context, start_node  # noqa: E402,F401

from fer_ros.ros import graph  # noqa: E402
from fer_ros.ros.conversions import array_to_compressed  # noqa: E402
from fer_ros.samples import astronaut, one_face  # noqa: E402

pytestmark = pytest.mark.ros
BAD_FRAMES = 5  # of each kind, 0.2 s apart so the one-frame slot keeps each of them


def _bomb() -> CompressedImage:
    """25 Mpx of zeros in a PNG of a few KB: above the 16.8 Mpx default budget."""
    return CompressedImage(format="png", data=cv2.imencode(".png", np.zeros((5000, 5000), np.uint8))[1].tobytes())


def _corrupt_jpeg() -> CompressedImage:
    """A real photo whose entropy-coded data lost a 2000-byte block (libjpeg: 'Corrupt JPEG data: ...')."""
    data = bytearray(cv2.imencode(".jpg", np.ascontiguousarray(astronaut()[:, :, ::-1]))[1].tobytes())
    data[len(data) // 2:len(data) // 2 + 2000] = bytes(2000)
    return CompressedImage(format="jpeg", data=bytes(data))


def _latest_values(harness: Harness) -> dict[str, str]:
    return {kv.key: kv.value for kv in harness.diagnostics[-1].status[0].values} if harness.diagnostics else {}


def test_bombs_and_corrupt_jpegs_are_refused_counted_and_logged_throttled(ros_context):
    topic = "/bad_input/emotions"
    proc = start_node(True, emotions_topic=topic)
    harness = Harness(compressed=True, emotions_topic=topic)
    sample = one_face()
    try:
        harness.send_until_answered(lambda: array_to_compressed(sample.bgr, "jpeg"))
        for make in (_bomb, _corrupt_jpeg):
            for _ in range(BAD_FRAMES):
                harness.publish(make())
                time.sleep(0.2)
        harness.send_until_answered(lambda: array_to_compressed(sample.bgr, "jpeg"), timeout=10.0)

        def counted() -> bool:
            values = _latest_values(harness)
            return int(values.get("rejected_too_large", 0)) >= 1 and int(values.get("rejected_corrupt", 0)) >= 1
        assert harness.wait_for(counted, 10.0), f"not counted: {_latest_values(harness)}"
        assert proc.poll() is None
    finally:
        harness.close()
        assert graph.stop(proc) == 0
    values = _latest_values(harness)
    out = node_output(proc)
    raw_libjpeg = [line for line in out.splitlines() if "Corrupt JPEG data" in line and "dropped frame" not in line]
    assert not raw_libjpeg, raw_libjpeg  # the decoder's warning is in the node's log line, not printed by libjpeg
    for reason in ("too_large", "corrupt"):
        logged = [line for line in out.splitlines() if f"dropped frame ({reason}," in line]
        counted = int(values[f"rejected_{reason}"])
        assert logged, (reason, values)
        if counted > 1:  # throttled: fewer log lines than frames (one per LOG_THROTTLE_S)
            assert len(logged) < counted, (reason, logged, values)
    assert "max_image_pixels" in out and "5000x5000" in out


def test_latency_warn_above_error_is_refused_at_run_time(ros_context):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    proc = start_node(False, emotions_topic="/thresholds/emotions")
    harness = Harness(compressed=False, emotions_topic="/thresholds/emotions")
    try:
        client = harness.node.create_client(SetParameters, "/fer_node/set_parameters")
        assert client.wait_for_service(timeout_sec=60.0)

        def set_warn(value: float):
            pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
            future = client.call_async(SetParameters.Request(parameters=[
                Parameter(name="diagnostics.latency_warn_ms", value=pv)]))
            assert harness.wait_for(future.done, 10.0)
            return future.result().results[0]

        refused = set_warn(300.0)  # the default latency_error_ms is 200
        assert not refused.successful and "latency_error_ms" in refused.reason, refused.reason
        assert set_warn(150.0).successful
        harness.node.destroy_client(client)
    finally:
        harness.close()
        assert graph.stop(proc) == 0
