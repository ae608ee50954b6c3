"""The ROS4HRI output (hri_msgs/Expression on /humans/faces/<id>/expression), exercised for real.

hri_msgs is not on PyPI, so this test builds a package of that name with colcon, whose Expression message has the
fields the node fills (header, expression, valence, arousal, confidence: the ROS4HRI message's fields), puts it on the
node's path, and listens from a separate process as a ROS4HRI consumer would.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("fer_ros.msg", reason="fer_ros is not built: run scripts/setup.sh")
if shutil.which("colcon") is None:
    pytest.skip("colcon is not on PATH: source ./env.sh", allow_module_level=True)

import rclpy  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from fer_ros.ros import graph  # noqa: E402
from fer_ros.ros.conversions import array_to_image  # noqa: E402
from fer_ros.samples import one_face  # noqa: E402

pytestmark = pytest.mark.ros

PACKAGE_XML = """<?xml version="1.0"?>
<package format="3">
  <name>hri_msgs</name><version>0.0.1</version><description>test build of the Expression message</description>
  <maintainer email="fer-ros@users.noreply.github.com">fer_ros tests</maintainer><license>Apache-2.0</license>
  <buildtool_depend>ament_cmake</buildtool_depend><buildtool_depend>rosidl_default_generators</buildtool_depend>
  <depend>std_msgs</depend><member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
"""
CMAKELISTS = """cmake_minimum_required(VERSION 3.16)
project(hri_msgs)
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
find_package(std_msgs REQUIRED)
rosidl_generate_interfaces(${PROJECT_NAME} "msg/Expression.msg" DEPENDENCIES std_msgs)
ament_package()
"""
EXPRESSION_MSG = """std_msgs/Header header
string expression
float32 valence
float32 arousal
float32 confidence
"""
LISTENER = textwrap.dedent("""
    import json, sys, rclpy
    from hri_msgs.msg import Expression
    rclpy.init()
    node = rclpy.create_node("hri_listener")
    def on_msg(m):
        print(json.dumps({"expression": m.expression, "confidence": m.confidence, "valence": m.valence,
                          "frame_id": m.header.frame_id}), flush=True)
        raise SystemExit(0)
    node.create_subscription(Expression, sys.argv[1], on_msg, 10)
    try:
        rclpy.spin(node)
    except SystemExit:
        pass
""")


@pytest.fixture(scope="module")
def hri_prefix(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("hri_ws")
    pkg = ws / "src" / "hri_msgs"
    (pkg / "msg").mkdir(parents=True)
    (pkg / "package.xml").write_text(PACKAGE_XML)
    (pkg / "CMakeLists.txt").write_text(CMAKELISTS)
    (pkg / "msg" / "Expression.msg").write_text(EXPRESSION_MSG)
    build = subprocess.run(
        ["colcon", "--log-base", str(ws / "log"), "build", "--base-paths", str(ws / "src"), "--build-base",
         str(ws / "build"), "--install-base", str(ws / "install"), "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}",
         "-DBUILD_TESTING=OFF"], cwd=ws, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return ws / "install" / "hri_msgs"


def env_with(prefix: Path) -> dict[str, str]:
    env = graph.ros_env(domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    site = next(prefix.glob("lib/python3*/site-packages"))
    env["PYTHONPATH"] = f"{site}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env["LD_LIBRARY_PATH"] = f"{prefix / 'lib'}{os.pathsep}{env.get('LD_LIBRARY_PATH', '')}"
    env["AMENT_PREFIX_PATH"] = f"{prefix}{os.pathsep}{env.get('AMENT_PREFIX_PATH', '')}"
    return env


def test_expression_per_face_on_the_ros4hri_topic(hri_prefix):
    env = env_with(hri_prefix)
    log = tempfile.TemporaryFile(mode="w+")
    node = graph.start(graph.node_command(graph.default_params_file(), remap={"image": "/hri_cam/image",
                                                                                "emotions": "/hri/emotions"}),
                       env, stdout=log, stderr=subprocess.STDOUT, text=True)
    listener = subprocess.Popen([sys.executable, "-c", LISTENER, "/humans/faces/fer1/expression"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    rclpy.init()
    cam = rclpy.create_node("hri_test_camera")
    pub = cam.create_publisher(Image, "/hri_cam/image", qos_profile_sensor_data)
    frame = array_to_image(one_face().rgb, "rgb8")
    frame.header.frame_id = "hri_camera"
    try:
        deadline = time.monotonic() + 60.0
        while listener.poll() is None and time.monotonic() < deadline:
            frame.header.stamp = cam.get_clock().now().to_msg()
            pub.publish(frame)
            time.sleep(0.2)
        out, err = listener.communicate(timeout=10.0)
    finally:
        cam.destroy_node()
        rclpy.shutdown()
        if listener.poll() is None:
            graph.stop(listener)
        code = graph.stop(node)
    log.seek(0)
    node_log = log.read()
    assert out.strip(), f"no Expression received\nlistener: {err[-2000:]}\nnode: {node_log[-3000:]}"
    msg = json.loads(out.strip().splitlines()[-1])
    assert msg["expression"] == "happy" and 0.5 < msg["confidence"] <= 1.0  # the astronaut smiles
    assert msg["frame_id"] == "hri_camera" and msg["valence"] == 0.0  # the default model gives no valence
    assert "ROS4HRI output on" in node_log
    assert code == 0
