"""Write image bags with rosbags: for tests, benchmarks and demos (a recording without a camera or rosbag2).

    with ImageBagWriter(path, "/camera/image_raw", version=8, storage="mcap") as bag:
        bag.add_frame(rgb, stamp_ns=...)                 # sensor_msgs/Image rgb8 (or bgr8/mono8)
        bag.add_raw(b"garbage", stamp_ns=...)             # a corrupt message on the same topic
        bag.add_label("happy", stamp_ns=...)              # std_msgs/String on a label topic

Compressed topics take JPEG (``compressed="jpeg"``, ``jpeg_quality`` 0-100, OpenCV's 95 by default) or PNG.
Bag receive times are the header stamps plus ``receive_delay_ns``, as a recorder on the robot would log them.
``fer-ros make-bag`` (``make_bag_cli``) writes one from a video or an image folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from fer_ros.bag.bag_io import COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, add_topic, make_typestore, open_writer

RECEIVE_DELAY_NS = 2_000_000  # bag time - header stamp of the written images: a plausible camera-to-recorder delay
# What a camera driver offers: best effort, keep last 5 (qos_profile_sensor_data).
SENSOR_QOS = Qos(QosHistory.KEEP_LAST, 5, QosReliability.BEST_EFFORT, QosDurability.VOLATILE, QosTime(0, 0),
                 QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)


class ImageBagWriter:
    """A new bag with one image topic (raw or compressed) and, on demand, a std_msgs/String label topic."""

    def __init__(self, path: Path | str, topic: str, version: int = 9, storage: str = "sqlite3",
                 compressed: str | None = None, label_topic: str = "/labels", frame_id: str = "camera",
                 receive_delay_ns: int = RECEIVE_DELAY_NS, jpeg_quality: int | None = None) -> None:
        self.store = make_typestore()
        self.compressed = compressed
        self.encode_params = [] if jpeg_quality is None else [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
        self.frame_id = frame_id
        self.receive_delay_ns = receive_delay_ns
        self.writer = open_writer(path, version, storage)
        self.msgtype = COMPRESSED_IMAGE_TYPE if compressed else IMAGE_TYPE
        self.conn = add_topic(self.writer, topic, self.msgtype, self.store, (SENSOR_QOS,))
        self._label_topic = label_topic
        self._label_conn: Any = None
        self._t = self.store.types

    def __enter__(self) -> ImageBagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.writer.close()

    def header(self, stamp_ns: int) -> Any:
        stamp = self._t["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
        return self._t["std_msgs/msg/Header"](stamp=stamp, frame_id=self.frame_id)

    def image_message(self, image: np.ndarray, stamp_ns: int, encoding: str = "rgb8") -> Any:
        """An Image (raw topics) or CompressedImage (``image`` must then be BGR or gray) message."""
        image = np.ascontiguousarray(image)
        if self.compressed:
            png = self.compressed == "png"
            ok, data = cv2.imencode(".png" if png else ".jpg", image, [] if png else self.encode_params)
            if not ok:
                raise ValueError("OpenCV could not encode the frame")
            return self._t[COMPRESSED_IMAGE_TYPE](header=self.header(stamp_ns), format=self.compressed,
                                                  data=data.reshape(-1))
        height, width = image.shape[:2]
        return self._t[IMAGE_TYPE](header=self.header(stamp_ns), height=height, width=width, encoding=encoding,
                                   is_bigendian=0, step=int(image.strides[0]),
                                   data=image.view(np.uint8).reshape(-1))

    def add_message(self, msg: Any, stamp_ns: int) -> None:
        """Serialize and store a ready message of the topic's type."""
        self.add_raw(bytes(self.store.serialize_cdr(msg, self.msgtype)), stamp_ns)

    def add_frame(self, image: np.ndarray, stamp_ns: int, encoding: str = "rgb8") -> None:
        self.add_message(self.image_message(image, stamp_ns, encoding), stamp_ns)

    def add_raw(self, raw: bytes, stamp_ns: int) -> None:
        """Store bytes as they are on the image topic (corrupt messages for tests)."""
        self.writer.write(self.conn, stamp_ns + self.receive_delay_ns, raw)

    def add_label(self, label: str, stamp_ns: int) -> None:
        """A std_msgs/String on the label topic at bag time ``stamp_ns`` (a labelling tool publishing as it goes)."""
        if self._label_conn is None:
            self._label_conn = add_topic(self.writer, self._label_topic, "std_msgs/msg/String", self.store)
        msg = self._t["std_msgs/msg/String"](data=label)
        self.writer.write(self._label_conn, stamp_ns, bytes(self.store.serialize_cdr(msg, "std_msgs/msg/String")))
