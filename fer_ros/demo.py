"""``fer-ros demo``: the node in a real ROS 2 graph on the bundled sample, printing the emotions it publishes.

Three processes on this machine only (localhost discovery; the caller's ROS_DOMAIN_ID, or a random one when it is
unset): the sample camera (real face photos moving in 640x480 frames, 30 Hz), the installed fer_node started with
config/fer.yaml as the launch file would, and this process subscribed to the node's ``emotions`` like behaviour code.
Ctrl-C stops everything cleanly.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

from fer_ros.ros import graph

CAMERA_TOPIC = "/camera/image_raw"
STARTUP_TIMEOUT_S = 60.0  # first messages must arrive within this (model load + DDS discovery)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=10.0, help="how long to watch the node's output")
    p.add_argument("--faces", type=int, default=2, help="faces in the sample clip")
    p.add_argument("--rate", type=float, default=30.0, help="camera frames per second")
    p.add_argument("--compressed", action="store_true", help="send JPEG (CompressedImage) instead of raw images")
    p.add_argument("--params-file", default=None, help="node parameters (default: the installed config/fer.yaml)")
    p.add_argument("--every", type=int, default=10, help="print every Nth message")


def run(args: argparse.Namespace) -> int:
    env = graph.ros_env(domain_id=graph.caller_domain_id())
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY", "ROS_DOMAIN_ID")})
    import rclpy

    from fer_ros.msg import EmotionArray
    from fer_ros.ros.emotion_echo import format_emotions, stamp_seconds
    from fer_ros.ros.lifecycle import ignore_unrun_handlers

    print(f"fer-ros demo: ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}, discovery localhost only", flush=True)
    compressed = ["--compressed"] if args.compressed else []
    camera = graph.start(graph.python_module_command(
        "fer_ros.ros.sample_camera", "--faces", str(args.faces), "--rate", str(args.rate), *compressed,
        "--ros-args", "-r", f"image:={CAMERA_TOPIC}", "-r", f"image/compressed:={CAMERA_TOPIC}/compressed"), env)
    node_cmd = graph.node_command(args.params_file or graph.default_params_file(),
                                  remap={"image": CAMERA_TOPIC},  # compressed: the node reads <image>/compressed
                                  params={"compressed": args.compressed})
    print("$ " + " ".join(node_cmd), flush=True)
    node_proc = graph.start(node_cmd, env)

    rclpy.init()
    sub_node = rclpy.create_node("demo_behaviour")
    messages, labels, latencies, ages = [], Counter(), [], []

    def on_msg(msg: EmotionArray) -> None:
        age = (sub_node.get_clock().now().nanoseconds * 1e-9 - stamp_seconds(msg.header.stamp)) * 1000.0
        messages.append(msg)
        latencies.append(msg.processing_latency_ms)
        ages.append(age)
        labels.update(e.label for e in msg.emotions)
        if len(messages) % max(args.every, 1) == 1:
            print(format_emotions(msg, age), flush=True)

    sub_node.create_subscription(EmotionArray, "/emotions", on_msg, 10)
    ignore_unrun_handlers()  # the messages left when the demo stops listening need no warning at its exit
    code = 0
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not messages and time.monotonic() < deadline and node_proc.poll() is None:
            rclpy.spin_once(sub_node, timeout_sec=0.1)
        if not messages:
            print("demo: no EmotionArray received: the node did not start (see its messages above)",
                  file=sys.stderr)
            code = 1
        else:
            end = time.monotonic() + args.seconds
            while time.monotonic() < end and node_proc.poll() is None:
                rclpy.spin_once(sub_node, timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        sub_node.destroy_node()
        rclpy.shutdown()
        node_code = graph.stop(node_proc)
        graph.stop(camera)
    if messages:
        lat = sorted(latencies)
        age = sorted(ages)
        print(f"\nreceived {len(messages)} EmotionArray messages from {messages[0].model_id} "
              f"(labels: {', '.join(messages[0].labels)})")
        print(f"faces seen per label: {dict(labels.most_common())}")
        print(f"processing latency p50 {lat[len(lat) // 2]:.1f} ms, p95 {lat[int(len(lat) * 0.95)]:.1f} ms; "
              f"camera stamp -> received p50 {age[len(age) // 2]:.1f} ms")
    print(f"fer_node exited with code {node_code}")
    return code or (1 if node_code not in (0, -2) else 0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
