"""`ros2 launch` of this checkout's launch/fer.launch.py, for real, as a robot's bring-up runs it: a configuration that
cannot work fails the launch with a non-zero exit code and one clear line; a good launch under a namespace applies its
parameters file, reads compressed input from <camera>/compressed, leaves no ANSI codes in its captured output and
exits 0 on SIGINT. Needs the ROS 2 launch tooling (launch_ros, ros2launch), which PyPI does not have: skipped in CI,
run where a ROS 2 install or a local build of it (../shared/tools/launch-ws.sh) provides it.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

NO_LAUNCH = "launch_ros is not on PyPI: needs a ROS 2 install or the launch workspace (../shared/tools/launch-ws.sh)"
pytest.importorskip("launch_ros", reason=NO_LAUNCH)
pytest.importorskip("ros2launch", reason=NO_LAUNCH)
pytest.importorskip("fer_ros.msg", reason="fer_ros is not built: run scripts/setup.sh")

from test_node_namespace import CHANGED, DIAGNOSTIC_NAME, read_parameters, shipped_params_with  # noqa: E402
from test_node_ros import STARTUP_TIMEOUT_S, Harness, node_output, ros_context, start_logged  # noqa: E402,F401

from fer_ros.ros import graph  # noqa: E402
from fer_ros.ros.conversions import array_to_compressed  # noqa: E402
from fer_ros.samples import one_face  # noqa: E402

pytestmark = pytest.mark.ros
LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "fer.launch.py"
ANSI_ESCAPE = "\x1b["


def start_launch(*arguments: str) -> subprocess.Popen:
    """`ros2 launch launch/fer.launch.py ARG:=VALUE ...` in its own session, output (stdout and stderr) to a file."""
    ros2 = shutil.which("ros2")
    if ros2 is None:
        pytest.skip("no ros2 executable on PATH (source the launch workspace's install/local_setup.bash)")
    return start_logged([ros2, "launch", str(LAUNCH_FILE), *arguments])


def wait_exit(proc: subprocess.Popen, timeout: float = STARTUP_TIMEOUT_S) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        graph.stop(proc)
        pytest.fail(f"ros2 launch still running after {timeout:g} s:\n{node_output(proc)}")


def test_a_missing_params_file_is_refused():
    proc = start_launch("params_file:=/typo.yaml")
    code = wait_exit(proc)
    out = node_output(proc)
    assert code != 0, out
    assert "params_file /typo.yaml does not exist" in out, out
    assert "process started" not in out, out  # the node was never started on defaults


def test_a_node_that_dies_at_start_up_fails_the_launch():
    proc = start_launch("model:=/nonexistent")
    code = wait_exit(proc)
    out = node_output(proc)
    assert code != 0, out
    fatal = [line for line in out.splitlines() if "FATAL" in line]
    assert len(fatal) == 1 and "model path /nonexistent does not exist" in fatal[0], out
    assert "Traceback" not in out, out
    assert "fer_node-1 exited with code 1" in out, out


def test_a_good_launch_under_a_namespace_runs_and_stops_with_sigint_exit_0(ros_context, tmp_path):
    params_file = shipped_params_with(tmp_path / "fer.yaml", CHANGED)
    proc = start_launch("camera:=/launch_cam/image_raw", "compressed:=true", "namespace:=robot1",
                        f"params_file:={params_file}")
    harness = Harness(compressed=True, emotions_topic="/robot1/emotions", camera="/launch_cam/image_raw")
    try:
        sample = one_face()
        harness.send_until_answered(lambda: array_to_compressed(sample.bgr, "jpeg"))
        assert read_parameters(harness, "/robot1/fer_node", list(CHANGED)) == CHANGED, node_output(proc)
        name = "/robot1/fer_node" + DIAGNOSTIC_NAME
        assert harness.wait_for(lambda: any(s.name == name for d in list(harness.diagnostics) for s in d.status),
                                10.0), node_output(proc)
    finally:
        harness.close()
        time.sleep(0.5)  # the last log lines reach the file
        code = graph.stop(proc)
    out = node_output(proc)
    assert code == 0, out
    assert "ready: /launch_cam/image_raw/compressed -> /robot1/emotions" in out, out
    assert ANSI_ESCAPE not in out, repr(out[-2000:])
