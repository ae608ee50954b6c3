"""The ROS4HRI companion role against the real hri_msgs, over DDS, with real processes.

fer_node runs with ``hri.mode:=companion`` and no camera. ``hri_peer.py detector`` plays a REP-155 face detector in
another process: it lists two faces on /humans/faces/tracked and publishes real face crops (the smiling astronaut,
Grace Hopper) on their /aligned topics, and reads /humans/faces/<id>/expression back. Then one face leaves the list:
fer_node must drop that face's subscription and publisher and keep serving the other.
"""
from __future__ import annotations

import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 venv: scripts/setup.sh, then source ./env.sh")
pytest.importorskip("fer_ros.msg", reason="fer_ros is not built: run scripts/setup.sh")

from hri_interop import FerNodeProcess, Peer, hri_env, hri_msgs_prefix  # noqa: E402

pytestmark = pytest.mark.ros
STARTUP_TIMEOUT_S = 120.0  # model load + DDS discovery of two processes on two busy cores
POLL_S = 0.2


def wait_until(done, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(POLL_S)
    return done()


def test_companion_adds_expressions_to_another_detectors_faces_and_forgets_them():
    env = hri_env(hri_msgs_prefix())
    node = FerNodeProcess(env, params={"hri.mode": "companion"})
    detector = Peer(["detector", "astronaut", "hopper"], env)
    rclpy.init()
    watcher = rclpy.create_node("hri_test_graph_watcher")

    def fer_topics(face_id: str) -> tuple[int, int]:
        """(publishers of its expression, subscribers of its aligned crops): fer_node's, the only ones there."""
        return (watcher.count_publishers(f"/humans/faces/{face_id}/expression"),
                watcher.count_subscribers(f"/humans/faces/{face_id}/aligned"))

    try:
        both = detector.wait_for(lambda: detector.of("expression", "astronaut") and detector.of("expression", "hopper"),
                                 STARTUP_TIMEOUT_S)
        while_listed = fer_topics("astronaut")
        detector.send("drop astronaut")
        dropped = detector.wait_for(lambda: detector.of("dropped"), STARTUP_TIMEOUT_S)
        forgotten = dropped and wait_until(lambda: fer_topics("astronaut") == (0, 0), STARTUP_TIMEOUT_S)
        after_drop = len(detector.events)
        still_served = detector.wait_for(
            lambda: any(e["kind"] == "expression" and e["id"] == "hopper" for e in detector.events[after_drop:]),
            STARTUP_TIMEOUT_S)
        hopper_topics = fer_topics("hopper")
    finally:
        watcher.destroy_node()
        rclpy.shutdown()
        detector_err = detector.stop()
        code, node_log = node.stop()
    context = f"\ndetector: {detector_err}\nnode: {node_log[-3000:]}"
    assert both, f"no expression for both faces; events: {detector.events[-6:]}{context}"
    astronaut = detector.of("expression", "astronaut")[-1]
    assert astronaut["expression"] == "happy" and 0.5 < astronaut["confidence"] <= 1.0  # the astronaut smiles
    assert 0.0 < detector.of("expression", "hopper")[-1]["confidence"] <= 1.0
    for face_id in ("astronaut", "hopper"):
        sent = {tuple(e["header"]) for e in detector.of("sent", face_id)}
        assert all(tuple(e["header"]) in sent for e in detector.of("expression", face_id)), \
            "each expression carries the header of the crop it describes"
    assert while_listed == (1, 1)
    assert forgotten, f"astronaut's topics stayed after it left the list{context}"
    assert still_served and hopper_topics == (1, 1), context
    assert "ROS4HRI companion" in node_log and "no detector" in node_log
    assert code == 0, node_log[-3000:]
