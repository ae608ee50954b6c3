"""The ROS4HRI companion role against the real hri_msgs, over DDS, with real processes.

fer_node runs with ``hri.mode:=companion`` and no camera. ``hri_peer.py detector`` plays a REP-155 face detector in
another process: it lists two faces (and an id that cannot name a topic) on /humans/faces/tracked, publishes real
face crops (the smiling astronaut, Grace Hopper) on their /aligned (or /cropped) topics, and reads
/humans/faces/<id>/expression back. Then one face leaves the list: fer_node must drop that face's subscription and
publisher and keep serving the other. Its /diagnostics must count the expressions and flag the bad id.
"""
from __future__ import annotations

import threading

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 venv: scripts/setup.sh, then source ./env.sh")
pytest.importorskip("fer_ros.msg", reason="fer_ros is not built: run scripts/setup.sh")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from hri_interop import FerNodeProcess, Peer, hri_env, hri_msgs_prefix, wait_until  # noqa: E402

pytestmark = pytest.mark.ros
STARTUP_TIMEOUT_S = 120.0  # model load + DDS discovery of two processes on two busy cores


@pytest.mark.parametrize("image", ["aligned", "cropped"])
def test_companion_adds_expressions_to_another_detectors_faces_and_forgets_them(image):
    env = hri_env(hri_msgs_prefix())
    node = FerNodeProcess(env, params={"hri.mode": "companion", "hri.companion_image": image})
    # "bad-id" cannot name a topic: it must be logged and skipped without holding up the other faces
    detector = Peer(["detector", image, "astronaut", "hopper", "bad-id"], env)
    rclpy.init()
    watcher = rclpy.create_node("hri_test_graph_watcher")
    statuses = []  # fer_node's /diagnostics, as (level, message, values)
    watcher.create_subscription(DiagnosticArray, "/diagnostics", lambda a: statuses.extend(
        (s.level[0], s.message, {kv.key: kv.value for kv in s.values}) for s in a.status if "companion" in s.name), 10)
    executor = SingleThreadedExecutor()
    executor.add_node(watcher)
    threading.Thread(target=executor.spin, daemon=True).start()

    def fer_topics(face_id: str) -> tuple[int, int]:
        """(publishers of its expression, subscribers of its crops): fer_node's, the only ones there."""
        return (watcher.count_publishers(f"/humans/faces/{face_id}/expression"),
                watcher.count_subscribers(f"/humans/faces/{face_id}/{image}"))

    try:
        both = detector.wait_for(lambda: detector.of("expression", "astronaut") and detector.of("expression", "hopper"),
                                 STARTUP_TIMEOUT_S)
        # this process discovers fer_node's endpoints on its own schedule: wait for them, both ways
        while_listed = both and wait_until(lambda: fer_topics("astronaut") == (1, 1), STARTUP_TIMEOUT_S)
        detector.send("drop astronaut")
        dropped = detector.wait_for(lambda: detector.of("dropped"), STARTUP_TIMEOUT_S)
        forgotten = dropped and wait_until(lambda: fer_topics("astronaut") == (0, 0), STARTUP_TIMEOUT_S)
        after_drop = len(detector.events)
        still_served = detector.wait_for(
            lambda: any(e["kind"] == "expression" and e["id"] == "hopper" for e in detector.events[after_drop:]),
            STARTUP_TIMEOUT_S)
        hopper_kept = wait_until(lambda: fer_topics("hopper") == (1, 1), STARTUP_TIMEOUT_S)
        diagnosed = wait_until(lambda: any(int(v["expressions_published"]) > 0 for _, _, v in statuses),
                               STARTUP_TIMEOUT_S)
    finally:
        executor.shutdown()
        watcher.destroy_node()
        rclpy.shutdown()
        detector_err = detector.stop()
        code, node_log = node.stop()
    context = f"\ndetector: {detector_err}\nnode (exit code {code}): {node_log[-3000:]}"
    assert both, f"no expression for both faces; events: {detector.events[-6:]}{context}"
    astronaut = detector.of("expression", "astronaut")[-1]
    assert astronaut["expression"] == "happy" and 0.5 < astronaut["confidence"] <= 1.0  # the astronaut smiles
    assert 0.0 < detector.of("expression", "hopper")[-1]["confidence"] <= 1.0
    for face_id in ("astronaut", "hopper"):
        sent = {tuple(e["header"]) for e in detector.of("sent", face_id)}
        assert all(tuple(e["header"]) in sent for e in detector.of("expression", face_id)), \
            "each expression carries the header of the crop it describes"
    assert while_listed, "fer_node had no expression publisher and crop subscription for a listed face"
    assert forgotten, f"astronaut's topics stayed after it left the list{context}"
    assert still_served and hopper_kept, context
    assert f"/humans/faces/<id>/{image} -> /humans/faces/<id>/expression" in node_log and "no detector" in node_log
    assert "face id 'bad-id' cannot name a topic" in node_log
    assert diagnosed, f"no /diagnostics status with expressions from the companion: {statuses[-3:]}"
    level, message, values = next(s for s in statuses if int(s[2]["expressions_published"]) > 0)
    assert level == 1 and "bad_id" in message  # WARN: the bad id, retried with every list
    assert values["model"] == "mini_xception_fer2013" and int(values["crops_received"]) >= 2
    assert code == 0, node_log[-3000:]
