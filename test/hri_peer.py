"""The other end of the ROS4HRI tests, run as its own process with the real hri_msgs on its path.

    python hri_peer.py consumer           a REP-155 client: learns faces only from /humans/faces/tracked, then
                                          subscribes to each listed face's roi, cropped, aligned, landmarks and
                                          expression (reliable, volatile: what libhri's SystemDefaultsQoS asks for)
    python hri_peer.py detector IMAGE IDS...
                                          a REP-155 face detector stand-in: lists IDS on /humans/faces/tracked and,
                                          for the ids astronaut and hopper, publishes that real face's crop on
                                          /humans/faces/<id>/IMAGE (aligned or cropped) 5 times a second (other ids
                                          are only listed); reads /humans/faces/<id>/expression back. A line
                                          "drop <id>" on stdin takes that face out of the list (and stops its crops).

Every message seen (and, for the detector, every crop sent) is printed as one JSON line on stdout.
"""
from __future__ import annotations

import json
import sys
import threading

import numpy as np
import rclpy
from hri_msgs.msg import Expression, FacialLandmarks, IdsList, NormalizedRegionOfInterest2D
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

LIBHRI_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
DETECTOR_PERIOD_S = 0.2
_print_lock = threading.Lock()


def emit(**event) -> None:
    with _print_lock:
        print(json.dumps(event), flush=True)


def stamp_of(header) -> list:
    return [header.stamp.sec, header.stamp.nanosec, header.frame_id]


def consumer() -> None:
    node = rclpy.create_node("hri_test_consumer")
    faces: dict[str, list] = {}

    def on_tracked(msg):
        emit(kind="tracked", ids=list(msg.ids), header=stamp_of(msg.header))
        for face_id in msg.ids:
            if face_id not in faces:
                faces[face_id] = [node.create_subscription(t, f"/humans/faces/{face_id}/{name}",
                                                           lambda m, i=face_id, n=name: on_face(i, n, m), LIBHRI_QOS)
                                  for name, t in (("roi", NormalizedRegionOfInterest2D), ("cropped", Image),
                                                  ("aligned", Image), ("landmarks", FacialLandmarks),
                                                  ("expression", Expression))]
        for face_id in [i for i in faces if i not in msg.ids]:
            for sub in faces.pop(face_id):
                node.destroy_subscription(sub)

    def on_face(face_id, name, m):
        event = {"kind": name, "id": face_id, "header": stamp_of(m.header)}
        if name == "roi":
            event.update(xmin=m.xmin, ymin=m.ymin, xmax=m.xmax, ymax=m.ymax, c=m.c)
        elif name in ("cropped", "aligned"):
            event.update(width=m.width, height=m.height, encoding=m.encoding, bytes=len(m.data))
        elif name == "landmarks":
            event.update(points=[[p.x, p.y, p.c] for p in m.landmarks], width=m.width, height=m.height)
        else:
            event.update(expression=m.expression, confidence=m.confidence, valence=m.valence, arousal=m.arousal)
        emit(**event)

    node.create_subscription(IdsList, "/humans/faces/tracked", on_tracked, LIBHRI_QOS)
    rclpy.spin(node)


def face_crops(image: str) -> dict[str, tuple[np.ndarray, str]]:
    """Real faces as a REP-155 detector gives them, the astronaut (smiling) and Grace Hopper: ``aligned``, 128x128
    with the eyes level; ``cropped``, the face box's pixels."""
    import cv2
    import matplotlib

    from fer_ros.faces.align import crop_face
    from fer_ros.samples import ASTRONAUT_FACE_BOX, ASTRONAUT_LANDMARKS, astronaut

    hopper = cv2.imread(f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg")[140:340, 165:370]  # BGR
    if image == "cropped":
        x0, y0, x1, y1 = (round(v) for v in ASTRONAUT_FACE_BOX)
        astro = astronaut()[y0:y1, x0:x1]
    else:
        astro = crop_face(astronaut(), ASTRONAUT_FACE_BOX, np.array(ASTRONAUT_LANDMARKS), 128, 128, 1.2, True)
        hopper = cv2.resize(hopper, (128, 128), interpolation=cv2.INTER_AREA)
    return {"astronaut": (np.ascontiguousarray(astro), "rgb8"), "hopper": (np.ascontiguousarray(hopper), "bgr8")}


def detector(image: str, ids: list[str]) -> None:
    node = rclpy.create_node("hri_test_face_detector")
    crops = face_crops(image)
    tracked_pub = node.create_publisher(IdsList, "/humans/faces/tracked", LIBHRI_QOS)
    listed = list(ids)
    faces = [i for i in ids if i in crops]
    pubs = {i: node.create_publisher(Image, f"/humans/faces/{i}/{image}", LIBHRI_QOS) for i in faces}
    for face_id in faces:
        node.create_subscription(Expression, f"/humans/faces/{face_id}/expression",
                                 lambda m, i=face_id: emit(kind="expression", id=i, header=stamp_of(m.header),
                                                           expression=m.expression, confidence=m.confidence),
                                 LIBHRI_QOS)

    def tick():
        header = IdsList().header
        header.stamp = node.get_clock().now().to_msg()
        header.frame_id = "stand_in_camera"
        tracked_pub.publish(IdsList(header=header, ids=list(listed)))
        for face_id in [i for i in listed if i in pubs]:
            pixels, encoding = crops[face_id]
            img = Image(header=header, height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                        is_bigendian=0, step=pixels.shape[1] * 3, data=pixels.tobytes())
            pubs[face_id].publish(img)
            emit(kind="sent", id=face_id, header=stamp_of(header))

    def read_commands():
        for line in sys.stdin:
            words = line.split()
            if len(words) == 2 and words[0] == "drop" and words[1] in listed:
                listed.remove(words[1])
                emit(kind="dropped", id=words[1])

    threading.Thread(target=read_commands, daemon=True).start()
    node.create_timer(DETECTOR_PERIOD_S, tick)
    rclpy.spin(node)


def main() -> None:
    rclpy.init()
    try:
        consumer() if sys.argv[1] == "consumer" else detector(sys.argv[2], sys.argv[3:])
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
