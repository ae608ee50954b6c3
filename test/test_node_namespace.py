"""fer_node as a robot runs it, under namespaces and remappings: the shipped parameters file applies with and without a
namespace, /diagnostics tells nodes apart by their fully qualified names, and compressed input follows the remapped
``image`` topic (image_transport's ``<image>/compressed``). Real node processes, real DDS on loopback.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy", reason="needs the ROS 2 venv: scripts/setup.sh, then source ./env.sh")
pytest.importorskip("fer_ros.msg", reason="fer_ros is not built: run scripts/setup.sh")

from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.parameter import parameter_value_to_python  # noqa: E402
from test_node_ros import STARTUP_TIMEOUT_S, Harness, node_output, ros_context, start_node  # noqa: E402,F401

from fer_ros.ros import graph  # noqa: E402
from fer_ros.ros.conversions import array_to_compressed  # noqa: E402
from fer_ros.samples import one_face  # noqa: E402

pytestmark = pytest.mark.ros
SHIPPED_PARAMS = Path(__file__).resolve().parents[1] / "config" / "fer.yaml"
DIAGNOSTIC_NAME = ": facial expression recognition"  # after the node's name in its /diagnostics status
CHANGED = {"smoothing": 0.25, "detector.min_confidence": 0.45, "diagnostics.min_rate_hz": 2.0}  # none a default


def shipped_params_with(path: Path, values: dict[str, object]) -> Path:
    """config/fer.yaml as shipped (same top-level key), with ``values`` (dotted names) changed."""
    data = yaml.safe_load(SHIPPED_PARAMS.read_text())
    [section] = data.values()
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        tree = section["ros__parameters"]
        for key in parents:
            tree = tree[key]
        assert leaf in tree, dotted
        tree[leaf] = value
    path.write_text(yaml.safe_dump(data))
    return path


def read_parameters(harness: Harness, node: str, names: list[str]) -> dict[str, object]:
    """The values ``node`` (fully qualified name) holds, asked through its get_parameters service."""
    client = harness.node.create_client(GetParameters, f"{node}/get_parameters")
    try:
        assert client.wait_for_service(timeout_sec=STARTUP_TIMEOUT_S), f"{node} offers no get_parameters"
        future = client.call_async(GetParameters.Request(names=names))
        assert harness.wait_for(future.done, 10.0), f"{node}/get_parameters did not answer"
        return dict(zip(names, (parameter_value_to_python(v) for v in future.result().values)))
    finally:
        harness.node.destroy_client(client)


@pytest.fixture(scope="module")
def two_nodes(ros_context, tmp_path_factory):
    """fer_node with and without a namespace, both started with the shipped file (some values changed)."""
    params_file = shipped_params_with(tmp_path_factory.mktemp("params") / "fer.yaml", CHANGED)
    procs = {"/fer_node": start_node(False, emotions_topic="emotions", params_file=params_file),
             "/robot1/fer_node": start_node(False, emotions_topic="emotions", params_file=params_file,
                                            remap={"__ns": "/robot1"})}
    harness = Harness(compressed=False)
    yield harness, procs
    harness.close()
    for proc in procs.values():
        assert graph.stop(proc) == 0, node_output(proc)


def test_shipped_parameters_apply_with_and_without_a_namespace(two_nodes):
    harness, procs = two_nodes
    for name, proc in procs.items():
        assert read_parameters(harness, name, list(CHANGED)) == CHANGED, node_output(proc)


def test_diagnostics_name_each_node_by_its_fully_qualified_name(two_nodes):
    harness, procs = two_nodes

    def names() -> set[str]:
        return {s.name for d in list(harness.diagnostics) for s in d.status}

    expected = {name + DIAGNOSTIC_NAME for name in procs}
    assert harness.wait_for(lambda: expected <= names(), STARTUP_TIMEOUT_S), f"diagnostics named {names()}"


@pytest.mark.parametrize("remap,camera", [
    ({"image": "/cam2/image_raw", "image/compressed": None}, "/cam2/image_raw"),  # -r image:=... is enough
    ({"image": None, "image/compressed": "/cam3/image/compressed"}, "/cam3/image"),  # an explicit remap still wins
], ids=["image-remapped", "image-compressed-remapped"])
def test_compressed_input_follows_the_remapped_image_topic(ros_context, remap, camera):
    proc = start_node(True, emotions_topic="/remap/emotions", remap=remap)
    harness = Harness(compressed=True, emotions_topic="/remap/emotions", camera=camera)
    try:
        sample = one_face()
        harness.send_until_answered(lambda: array_to_compressed(sample.bgr, "jpeg"))
        # the detector's whole-frame pass may run beside the first frames: the face comes within a few frames
        answers = [harness.send_until_answered(lambda: array_to_compressed(sample.bgr, "jpeg"), timeout=10.0)
                   for _ in range(5)]
        assert any(len(msg.emotions) == 1 for msg in answers), [len(msg.emotions) for msg in answers]
        assert re.search(rf"ready: {camera}/compressed -> /remap/emotions", node_output(proc)), node_output(proc)
    finally:
        harness.close()
        assert graph.stop(proc) == 0, node_output(proc)
