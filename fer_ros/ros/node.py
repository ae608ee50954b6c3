"""fer_node: camera images in, EmotionArray out.

A thin shell around the ROS-free ``EmotionPipeline``: it declares and validates parameters, converts messages, keeps
only the newest frame (a one-slot mailbox between the subscription and a worker thread, so a slow model drops old
frames instead of queueing them), publishes results stamped with the source header, and reports health on
/diagnostics.

Topics (relative, so a namespace or remapping moves them):
  image (sensor_msgs/Image) or <image>/compressed (sensor_msgs/CompressedImage) in; remapping image is enough
  emotions (fer_ros/EmotionArray)                                               out, one per processed frame
  debug_image (sensor_msgs/Image, bgr8)                                         out, only built when subscribed
  /diagnostics (diagnostic_msgs/DiagnosticArray)                                out
  /humans/faces/tracked, /humans/faces/<id>/... (ROS4HRI, hri_msgs)             out, hri.mode pipeline (fer_ros.ros.hri)
With hri.mode companion the node is fer_ros.ros.hri_companion's instead: no camera, another detector's faces.
"""
from __future__ import annotations

import sys
import threading
import time

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from fer_ros.errors import FerRosError, FrameError
from fer_ros.msg import EmotionArray
from fer_ros.node_parameters import (BY_NAME, PARAMETERS, cross_check, pipeline_params, refusal,
                                     unknown_name_message)
from fer_ros.ros.conversions import array_to_image, compressed_to_array, image_to_array, result_to_msg
from fer_ros.ros.frame_slot import FrameSlot, stop_worker
from fer_ros.ros.hri import HriPublisher, import_hri_msgs
from fer_ros.ros.lifecycle import run_node
from fer_ros.ros.stats import NodeStats, diagnostic_array, warn_throttled

NODE_NAME = "fer_node"
WORKER_POLL_S = 0.5  # how often the worker wakes to notice shutdown when no frame comes
WORKER_JOIN_S = 5.0  # at shutdown, how long the frame in progress may take before the node exits without it


class FerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._declare_parameters()
        p = {param.name: self.get_parameter(param.name).value for param in PARAMETERS}

        from fer_ros.pipeline import EmotionPipeline, PipelineConfig  # heavy imports after parameters are valid

        config = PipelineConfig.from_flat(pipeline_params(p))
        hri_msgs, hri_off = import_hri_msgs() if p["hri.mode"] == "pipeline" else (None, "hri.mode is disabled")
        config.keep_aligned = hri_msgs is not None  # published on /humans/faces/<id>/aligned
        self.pipeline = EmotionPipeline(config)
        self.stats = NodeStats()
        self._slot = FrameSlot()
        self._last_start = 0.0
        self._last_log: dict[str, float] = {}
        # per-frame settings, kept here so the frame path does no parameter lookups; updated when set at run time
        self._live = {"max_rate": float(p["max_rate"]), "debug_image": bool(p["debug_image"]),
                      "max_image_pixels": int(p["max_image_pixels"])}

        sensor_qos = QoSProfile(depth=1, reliability=qos_profile_sensor_data.reliability,
                                durability=qos_profile_sensor_data.durability,
                                history=qos_profile_sensor_data.history)
        self.compressed = bool(p["compressed"])
        if self.compressed:
            image_sub = self.create_subscription(CompressedImage, self._compressed_topic(), self._on_image, sensor_qos)
        else:
            image_sub = self.create_subscription(Image, "image", self._on_image, sensor_qos)
        self._image_sub = image_sub
        self._stamp_resets_logged = 0  # tracker resets already logged (each jump back is logged once)
        self._publishers_warned = False
        self.emotions_pub = self.create_publisher(EmotionArray, "emotions", 10)
        self.debug_pub = self.create_publisher(Image, "debug_image", sensor_qos)
        from diagnostic_msgs.msg import DiagnosticArray

        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(float(p["diagnostics.period"]), self._publish_diagnostics)

        self.hri = None
        if hri_msgs is None:
            self.get_logger().info(f"ROS4HRI output off: {hri_off}")
        else:
            self.hri = HriPublisher(self, hri_msgs, p["tracking.max_misses"], self.pipeline.card.input.color)
            self.get_logger().info(f"ROS4HRI output on: /humans/faces/tracked, /humans/faces/<id>/"
                                   f"{{roi,cropped,aligned,landmarks,expression}} (ids {self.hri.ids.token}<track>)")
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._worker = threading.Thread(target=self._work, name="fer_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"ready: {image_sub.topic_name} -> {self.resolve_topic_name('emotions')}; model {self.pipeline.model_id} "
            f"on {self.pipeline.backend_name}; detector {self.pipeline.detector_name}; labels "
            f"{', '.join(self.pipeline.labels)}")

    # --- parameters -------------------------------------------------------------------------------------------------
    def _declare_parameters(self) -> None:
        # rclpy raises InvalidParameterTypeException (a traceback) for an override typed unlike the default: read the
        # overrides (params file, -p) first, so a wrong type is refused naming the parameter and an integer where a
        # double is expected is simply taken as that double.
        overrides = getattr(self, "_parameter_overrides", {})
        problems = []
        for param in PARAMETERS:
            descriptor = ParameterDescriptor(description=param.description, read_only=param.read_only)
            value = overrides[param.name].value if param.name in overrides else param.default
            reason = param.validate(value)
            if reason:
                problems.append(f"parameter '{param.name}' = {value!r} {reason}")
                continue
            self.declare_parameter(param.name, param.coerce(value), descriptor, ignore_override=True)
        clash = None if problems else cross_check({p.name: self.get_parameter(p.name).value for p in PARAMETERS})
        if problems or clash:
            raise FerRosError("; ".join(problems or [clash]) + " (fix config/fer.yaml or the launch arguments)")
        for name in sorted(set(overrides) - set(BY_NAME)):  # a misspelt name would otherwise be ignored silently
            if not self.has_parameter(name) and not name.startswith("qos_overrides."):
                self.get_logger().warn(unknown_name_message(name))

    def _on_set_parameters(self, params) -> SetParametersResult:
        known = [param for param in params if param.name in BY_NAME]
        reason = refusal(known)  # all or nothing: refuse the whole set if one value is bad
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        clash = cross_check({**{p.name: self.get_parameter(p.name).value for p in PARAMETERS},
                             **{p.name: p.value for p in known}})
        if clash:
            return SetParametersResult(successful=False, reason=clash)
        for param in known:
            if param.name == "smoothing":
                self.pipeline.set_smoothing(float(param.value))
            elif param.name in self._live:
                self._live[param.name] = type(self._live[param.name])(param.value)
        return SetParametersResult(successful=True)

    # --- frames -----------------------------------------------------------------------------------------------------
    def _compressed_topic(self) -> str:
        """image_transport's ``<image>/compressed`` of the resolved ``image``, so ``-r image:=/cam/image_raw`` alone
        gives /cam/image_raw/compressed; an explicit ``image/compressed`` remap still wins."""
        explicit = self.resolve_topic_name("image/compressed")
        if explicit != self.resolve_topic_name("image/compressed", only_expand=True):
            return explicit
        return self.resolve_topic_name("image") + "/compressed"

    def _on_image(self, msg) -> None:
        self.stats.received += 1
        self._slot.put(msg)

    def _work(self) -> None:
        while rclpy.ok():
            item = self._slot.take(timeout=WORKER_POLL_S)
            if item is None:
                if self._slot.closed:
                    return
                continue
            msg, received = item
            max_rate = self._live["max_rate"]
            if max_rate > 0 and received - self._last_start < 1.0 / max_rate:
                self.stats.rate_limited += 1
                continue
            self._last_start = received
            try:
                self._process(msg, received)
            except Exception as exc:  # a frame must never take the node down
                if not self.context.ok():  # stopping: publishing after the shutdown fails, the frame did not
                    return
                self._reject("failure", f"frame failed: {type(exc).__name__}: {exc}")

    def _process(self, msg, received: float) -> None:
        try:  # every kind of refusal is counted under its error's reason (errors.py), as eval-bag counts it
            convert = compressed_to_array if self.compressed else image_to_array
            frame, color = convert(msg, self._live["max_image_pixels"])
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            result = self.pipeline.process(frame, stamp, color)
        except FrameError as exc:
            return self._reject(exc.reason, str(exc))
        self._note_stamps()
        latency_ms = (time.monotonic() - received) * 1000.0
        self.emotions_pub.publish(result_to_msg(result, msg.header, latency_ms))
        self.stats.record(latency_ms, len(result.faces))
        if self.hri is not None:
            self.hri.publish(msg.header, frame, color, result)
        if self._live["debug_image"] and self.debug_pub.get_subscription_count() > 0:
            self._publish_debug(frame, color, result, msg.header)

    def _publish_debug(self, frame, color, result, header) -> None:
        import cv2

        from fer_ros.visualize import draw_results

        bgr = {"rgb": lambda f: cv2.cvtColor(f, cv2.COLOR_RGB2BGR), "gray": lambda f: cv2.cvtColor(
            f, cv2.COLOR_GRAY2BGR)}.get(color, lambda f: f)(frame)
        self.debug_pub.publish(array_to_image(draw_results(bgr, result), "bgr8", header))

    def _reject(self, reason: str, message: str) -> None:
        """Count a dropped frame and log it at most every LOG_THROTTLE_S per reason."""
        self.stats.rejected[reason] += 1
        warn_throttled(self.get_logger(), self._last_log, reason,
                       f"dropped frame ({reason}, {self.stats.rejected[reason]} so far): {message}")

    def _note_stamps(self) -> None:
        """Log each jump back of the input stamps (tracks were reset) once; late frames are only counted."""
        resets = self.pipeline.tracker.stats.time_resets
        if resets > self._stamp_resets_logged:
            self._stamp_resets_logged = resets
            self.get_logger().warn(
                f"image stamps jumped back by more than {self.pipeline.tracker.cfg.max_stamp_step_back:g} s (a bag "
                f"looping, a clock reset): face tracks and ids restarted ({resets} time(s) so far)")

    def _stamp_values(self) -> tuple[int, list[str], dict[str, str]]:
        """Diagnostics level, problems and values about the input stamps and how many publish them."""
        stats = self.pipeline.tracker.stats
        publishers = self.count_publishers(self._image_sub.topic_name)
        values = {"stamps_late": str(stats.late_frames), "stamps_jumped_back": str(stats.time_resets),
                  "input_publishers": str(publishers)}
        if publishers > 1:
            if not self._publishers_warned:
                self._publishers_warned = True
                self.get_logger().warn(f"{publishers} publishers on {self._image_sub.topic_name}: their frames "
                                       f"interleave (late ones are processed and counted as stamps_late)")
            return 1, [f"{publishers} publishers on the input topic"], values
        return 0, [], values

    # --- diagnostics ------------------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        level, message, values = self.stats.report(
            self._slot.replaced, self.get_parameter("diagnostics.latency_warn_ms").value,
            self.get_parameter("diagnostics.latency_error_ms").value,
            self.get_parameter("diagnostics.min_rate_hz").value)
        values.update({"backend": self.pipeline.backend_name, "detector": self.pipeline.detector_name,
                       "model": self.pipeline.model_id})
        stamp_level, stamp_problems, stamp_values = self._stamp_values()
        values.update(stamp_values)
        if stamp_problems:
            level = max(level, stamp_level)
            message = "; ".join(([] if message == "ok" else [message]) + stamp_problems)
        # the fully qualified name tells namespaced nodes apart
        name = f"{self.get_fully_qualified_name()}: facial expression recognition"
        self.diag_pub.publish(diagnostic_array(name, level, message, self.pipeline.backend_name, values,
                                               self.get_clock().now().to_msg()))

    def shutdown(self) -> None:
        if stop_worker(self._worker, self._slot, WORKER_JOIN_S):
            self.pipeline.close()
        else:
            self.get_logger().warn(f"a frame was still being processed {WORKER_JOIN_S:g} s after the stop: exiting "
                                   f"without closing the pipeline under it")


def make_node() -> Node:
    """fer_node in the role its hri.mode parameter asks for (read by a short-lived probe node)."""
    probe = Node(NODE_NAME, automatically_declare_parameters_from_overrides=True, start_parameter_services=False,
                 enable_rosout=False)
    try:
        mode = probe.get_parameter("hri.mode").value if probe.has_parameter("hri.mode") else None
    finally:
        probe.destroy_node()
    if mode == "companion":
        from fer_ros.ros.hri_companion import FerCompanionNode

        return FerCompanionNode()
    return FerNode()


def main(argv: list[str] | None = None) -> int:
    return run_node(make_node, argv if argv is not None else sys.argv, NODE_NAME)


if __name__ == "__main__":
    sys.exit(main())
