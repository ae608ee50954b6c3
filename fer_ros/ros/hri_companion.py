"""fer_node in the ROS4HRI companion role (``hri.mode: companion``): expressions for another detector's faces.

No camera and no detector: the node follows a REP-155 face detector (hri_face_detect or any other):
  /humans/faces/tracked (hri_msgs/IdsList)                 in: the faces to classify
  /humans/faces/<id>/aligned (sensor_msgs/Image)           in, per listed face (``hri.companion_image: cropped``
                                                           reads /humans/faces/<id>/cropped instead)
  /humans/faces/<id>/expression (hri_msgs/Expression)      out, stamped with the header of the crop it describes
  /diagnostics (diagnostic_msgs/DiagnosticArray)           out: faces listed, crops, expressions, batch time, problems
A face's subscription and publisher are created when it is first listed and destroyed when it leaves the list, and
its temporal state (smoothing, FAN buffer) is forgotten with it. Batching and preprocessing: ``fer_ros.companion``.

Inputs are subscribed best effort (it matches reliable and best-effort publishers alike); the output is reliable,
what libhri's SystemDefaultsQoS subscriptions need.
"""
from __future__ import annotations

import logging
import time

from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import InvalidTopicNameException
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data

from fer_ros.companion import CompanionClassifier
from fer_ros.errors import FerRosError, InvalidFrameError
from fer_ros.node_parameters import PARAMETERS, refusal
from fer_ros.ros.conversions import image_to_array
from fer_ros.ros.hri import HRI_QOS, TRACKED_TOPIC, expression_msg, face_topic, import_hri_msgs
from fer_ros.ros.stats import CompanionStats, diagnostic_array, warn_throttled

INPUT_QOS = QoSProfile(depth=2, reliability=qos_profile_sensor_data.reliability,
                       durability=qos_profile_sensor_data.durability, history=qos_profile_sensor_data.history)


class HriCompanion:
    """The companion role's subscriptions and publishers on ``node`` (which declared the parameters ``p``)."""

    def __init__(self, node: Node, p: dict) -> None:
        msgs, why = import_hri_msgs()
        if msgs is None:
            raise FerRosError(f"hri.mode companion needs hri_msgs: {why}; install ROS4HRI's hri_msgs")
        from fer_ros.inference import create_backend
        from fer_ros.registry import resolve_model

        self._node = node
        self._msgs = msgs
        self._image = str(p["hri.companion_image"])
        card = resolve_model(p["model"])
        backend = create_backend(card, p["backend"], logging.getLogger("fer_ros.companion"))
        self.classifier = CompanionClassifier(backend, float(p["smoothing"]), int(p["fan_window"]))
        self._faces: dict[str, tuple[object, object]] = {}  # id -> (crop subscription, expression publisher)
        self.stats = CompanionStats()
        self._last_log: dict[str, float] = {}
        self._hardware_id = backend.name
        node.create_subscription(msgs.IdsList, TRACKED_TOPIC, self._on_tracked, INPUT_QOS)
        from diagnostic_msgs.msg import DiagnosticArray

        self._diag_pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        node.create_timer(float(p["diagnostics.period"]), self._publish_diagnostics)
        node.get_logger().info(
            f"ROS4HRI companion: {TRACKED_TOPIC} + /humans/faces/<id>/{self._image} -> /humans/faces/<id>/expression;"
            f" model {card.id} on {backend.name}; no detector")

    def _on_tracked(self, msg) -> None:
        # faces whose topics cannot exist are left out, or the batch would wait for their crops forever
        listed = [i for i in dict.fromkeys(msg.ids) if i in self._faces or self._add_face(i)]
        for face_id in self.classifier.update_tracked(listed):
            sub, pub = self._faces.pop(face_id)
            self._node.destroy_subscription(sub)
            self._node.destroy_publisher(pub)
        self._classify()  # crops still held from the previous list

    def _add_face(self, face_id: str) -> bool:
        """Subscribe to a newly listed face's crops and advertise its expression; False for an unusable id."""
        from sensor_msgs.msg import Image

        try:
            pub = self._node.create_publisher(self._msgs.Expression, face_topic(face_id, "expression"), HRI_QOS)
        except InvalidTopicNameException as exc:  # say so, keep serving the others
            self._problem("bad_id", f"face id {face_id!r} cannot name a topic, ignored: {type(exc).__name__}")
            return False
        sub = self._node.create_subscription(Image, face_topic(face_id, self._image),
                                             lambda m, i=face_id: self._on_crop(i, m), INPUT_QOS)
        self._faces[face_id] = (sub, pub)
        return True

    def _on_crop(self, face_id: str, msg) -> None:
        try:
            crop, color = image_to_array(msg)
            held = self.classifier.add(face_id, crop, color, msg.header)
        except (InvalidFrameError, ValueError) as exc:
            return self._problem("bad_crop", f"crop of face {face_id} dropped: {exc}")
        self.stats.crops += int(held)
        if held and self.classifier.ready():
            self._classify()

    def _classify(self) -> None:
        """Classify the held crops and publish; a batch that fails is dropped and counted, never fatal."""
        start = time.perf_counter()
        try:
            results = self.classifier.classify()
        except Exception as exc:  # a NaN model output, a backend error: lose this batch, serve the next
            return self._problem("failure", f"batch of faces dropped: {type(exc).__name__}: {exc}")
        if results:
            self.stats.batches += 1
            self.stats.batch_ms.append((time.perf_counter() - start) * 1e3)
        for r in results:
            entry = self._faces.get(r.face_id)
            if entry is not None:
                entry[1].publish(expression_msg(self._msgs, r.source, r.label, r.confidence, r.valence, r.arousal))
                self.stats.published += 1

    def _problem(self, kind: str, message: str) -> None:
        """Count a problem and log it at most every LOG_THROTTLE_S per kind."""
        self.stats.problems[kind] += 1
        warn_throttled(self._node.get_logger(), self._last_log, kind,
                       f"{message} ({self.stats.problems[kind]} so far)")

    def _publish_diagnostics(self) -> None:
        level, message, values = self.stats.report(len(self.classifier.tracked), self._image)
        values.update({"backend": self._hardware_id, "model": self.classifier.card.id})
        name = f"{self._node.get_fully_qualified_name()}: facial expression recognition (ROS4HRI companion)"
        self._diag_pub.publish(diagnostic_array(name, level, message, self._hardware_id, values,
                                                self._node.get_clock().now().to_msg()))

    def close(self) -> None:
        self.classifier.close()


class FerCompanionNode(Node):
    """fer_node with ``hri.mode: companion``: the same parameters (detector and camera ones unused), no camera."""

    def __init__(self, **kwargs) -> None:
        from fer_ros.ros.node import NODE_NAME, FerNode

        super().__init__(NODE_NAME, **kwargs)
        FerNode._declare_parameters(self)  # one declaration and validation for both roles
        p = {param.name: self.get_parameter(param.name).value for param in PARAMETERS}
        self.companion = HriCompanion(self, p)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _on_set_parameters(self, params) -> SetParametersResult:
        reason = refusal(params)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        for param in params:
            if param.name == "smoothing":
                self.companion.classifier.temporal.set_smoothing(float(param.value))
        return SetParametersResult(successful=True)

    def shutdown(self) -> None:
        self.companion.close()
