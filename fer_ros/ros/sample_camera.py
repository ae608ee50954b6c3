"""A camera node that publishes the bundled sample clip (real face photos moving in 640x480 frames).

    python -m fer_ros.ros.sample_camera --faces 2 --rate 30 [--compressed] [--count 300]

Publishes sensor_msgs/Image (rgb8) on ``image`` or sensor_msgs/CompressedImage (JPEG) on ``image/compressed``, with
sensor-data QoS and header stamps taken from the ROS clock at publish time, like a camera driver. Messages are built
once up front, so publishing costs no image work and the rate is the camera's, not this script's.
"""
from __future__ import annotations

import argparse
import sys

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from fer_ros.ros.conversions import array_to_compressed, array_to_image
from fer_ros.ros.lifecycle import run_node
from fer_ros.samples import ClipConfig, camera_clip, compose


class SampleCamera(Node):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("sample_camera")
        if args.faces == 0:
            frames = [compose([], args.height, args.width).rgb]
        else:
            clip = ClipConfig(frames=args.frames, faces=args.faces, face_width=args.face_width, fps=args.rate)
            frames = [f.rgb for _, f in camera_clip(clip, args.height, args.width)]
        if args.compressed:
            self.msgs = [array_to_compressed(f[:, :, ::-1], "jpeg") for f in frames]
            self.pub = self.create_publisher(CompressedImage, "image/compressed", qos_profile_sensor_data)
        else:
            self.msgs = [array_to_image(f, "rgb8") for f in frames]
            self.pub = self.create_publisher(Image, "image", qos_profile_sensor_data)
        for m in self.msgs:
            m.header.frame_id = "sample_camera"
        self.count, self.sent = args.count, 0
        self.create_timer(1.0 / args.rate, self._tick)
        self.get_logger().info(f"publishing {len(self.msgs)} sample frames at {args.rate:g} Hz on "
                               f"{self.pub.topic_name}")

    def _tick(self) -> None:
        if self.count and self.sent >= self.count:
            raise SystemExit(0)
        msg = self.msgs[self.sent % len(self.msgs)]
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub.publish(msg)
        self.sent += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1, help="faces in the clip (0: a frame with no face)")
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second")
    parser.add_argument("--frames", type=int, default=90, help="clip length before it loops")
    parser.add_argument("--face-width", type=float, default=110.0, help="face size in pixels")
    parser.add_argument("--count", type=int, default=0, help="stop after this many messages (0 = forever)")
    parser.add_argument("--width", type=int, default=640, help="frame width in pixels (default 640)")
    parser.add_argument("--height", type=int, default=480, help="frame height in pixels (default 480)")
    parser.add_argument("--compressed", action="store_true", help="publish JPEG on image/compressed")
    args, ros_args = parser.parse_known_args(argv)
    return run_node(lambda: SampleCamera(args), [sys.argv[0], *ros_args], "sample_camera")


if __name__ == "__main__":
    sys.exit(main())
