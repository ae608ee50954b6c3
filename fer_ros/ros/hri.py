"""ROS4HRI (REP-155) output of the face pipeline role: fer_node as the face detector of a ROS4HRI stack.

Per processed frame, stamped with the source image's header:
  /humans/faces/tracked (hri_msgs/IdsList)                       the ids of the faces whose tracks live (also empty)
  /humans/faces/<id>/roi (hri_msgs/NormalizedRegionOfInterest2D) box / image size, clipped to [0, 1], c = score
  /humans/faces/<id>/cropped (sensor_msgs/Image)                 the box's pixels, in the camera's encoding
  /humans/faces/<id>/aligned (sensor_msgs/Image)                 the crop the model saw (its size and colour)
  /humans/faces/<id>/landmarks (hri_msgs/FacialLandmarks)        the five points, when known
  /humans/faces/<id>/expression (hri_msgs/Expression)            for faces the model classified
for each face seen in that frame. A face stays listed (and its topics stay) while its track lives: until it has been
missed for more than ``tracking.max_misses`` frames; then its publishers are destroyed. Ids and value conventions:
``fer_ros.hri_faces``.

QoS: reliable, volatile, depth 10 (the ROS 2 default): libhri subscribes with SystemDefaultsQoS (reliable), which a
best-effort publisher would never match.

hri_msgs is not on PyPI; on a robot with ROS4HRI it is installed. Without it the output is off (logged at start-up).
"""
from __future__ import annotations

from types import ModuleType

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from fer_ros.datatypes import FaceResult, FrameResult
from fer_ros.hri_faces import (HRI_LANDMARK_SLOTS, FaceIds, box_crop, expression_fields, normalized_landmarks,
                               normalized_roi)
from fer_ros.ros.conversions import SUPPORTED_ENCODINGS, array_to_image

FACES_NS = "/humans/faces"
TRACKED_TOPIC = f"{FACES_NS}/tracked"
HRI_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
ENCODINGS = {color: encoding for encoding, (_, color) in SUPPORTED_ENCODINGS.items()}  # fer_ros colour -> encoding


def import_hri_msgs() -> tuple[ModuleType | None, str]:
    """``hri_msgs.msg``, or None with the reason when hri_msgs is not installed."""
    try:
        import hri_msgs.msg
    except ImportError as exc:
        return None, f"hri_msgs is not installed ({exc})"
    return hri_msgs.msg, ""


def face_topic(face_id: str, name: str) -> str:
    return f"{FACES_NS}/{face_id}/{name}"


def expression_msg(msgs: ModuleType, header, label: str, confidence: float, valence: float, arousal: float):
    msg = msgs.Expression(header=header)
    for key, value in expression_fields(label, confidence, valence, arousal).items():
        setattr(msg, key, value)
    return msg


def image_msg(pixels, color: str, header):
    """A sensor_msgs/Image of an HxW, HxWx1 or HxWx3 uint8 array in fer_ros colour ``color``."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    return array_to_image(pixels, ENCODINGS[color], header)


class _FaceTopics:
    """The per-face publishers of one face id."""

    NAMES = ("roi", "cropped", "aligned", "landmarks", "expression")

    def __init__(self, node, msgs: ModuleType, face_id: str) -> None:
        from sensor_msgs.msg import Image

        types = {"roi": msgs.NormalizedRegionOfInterest2D, "cropped": Image, "aligned": Image,
                 "landmarks": msgs.FacialLandmarks, "expression": msgs.Expression}
        self.pubs = {name: node.create_publisher(types[name], face_topic(face_id, name), HRI_QOS)
                     for name in self.NAMES}
        self.last_seen = 0

    def destroy(self, node) -> None:
        for pub in self.pubs.values():
            node.destroy_publisher(pub)


class HriPublisher:
    """The pipeline role's ROS4HRI topics for the node's FrameResults."""

    def __init__(self, node, msgs: ModuleType, max_misses: int, model_color: str, ids: FaceIds | None = None) -> None:
        self._node = node
        self._msgs = msgs
        self._max_misses = int(max_misses)
        self._model_color = model_color
        self.ids = ids or FaceIds()
        self._tracked_pub = node.create_publisher(msgs.IdsList, TRACKED_TOPIC, HRI_QOS)
        self._faces: dict[str, _FaceTopics] = {}
        self._frame = 0

    def publish(self, header, frame, color: str, result: FrameResult) -> None:
        """Everything of one processed frame; ``frame`` is the source image (HxWx3 or HxW) in colour ``color``."""
        self._frame += 1
        for face in result.faces:
            face_id = self.ids(face.face_id)
            topics = self._faces.get(face_id)
            if topics is None:
                topics = self._faces[face_id] = _FaceTopics(self._node, self._msgs, face_id)
            topics.last_seen = self._frame
            self._publish_face(topics, header, frame, color, result.image_size, face)
        for face_id in [i for i, t in self._faces.items() if self._frame - t.last_seen > self._max_misses]:
            self._faces.pop(face_id).destroy(self._node)
        self._tracked_pub.publish(self._msgs.IdsList(header=header, ids=list(self._faces)))

    def _publish_face(self, topics: _FaceTopics, header, frame, color: str, image_size, face: FaceResult) -> None:
        msgs, pubs = self._msgs, topics.pubs
        xmin, ymin, xmax, ymax, c = normalized_roi(face.box, image_size, face.detection_score)
        pubs["roi"].publish(msgs.NormalizedRegionOfInterest2D(header=header, xmin=xmin, ymin=ymin, xmax=xmax,
                                                              ymax=ymax, c=c))
        # the images are copied into their messages only for someone who reads them (as the debug image)
        crop = box_crop(frame, face.box) if pubs["cropped"].get_subscription_count() else None
        if crop is not None:
            pubs["cropped"].publish(image_msg(crop, color, header))
        if face.aligned is not None and pubs["aligned"].get_subscription_count():
            pubs["aligned"].publish(image_msg(face.aligned, self._model_color, header))
        points = normalized_landmarks(face.landmarks, image_size, face.detection_score)
        if points is not None:
            height, width = image_size
            landmarks = msgs.FacialLandmarks(header=header, height=height, width=width)
            for k in HRI_LANDMARK_SLOTS:  # the other slots stay zero, as normalized_landmarks leaves them
                slot, (x, y, conf) = landmarks.landmarks[k], points[k]
                slot.x, slot.y, slot.c = float(x), float(y), float(conf)
            pubs["landmarks"].publish(landmarks)
        if face.labelled:  # faces too small for the model have no expression
            pubs["expression"].publish(expression_msg(msgs, header, face.label, face.confidence, face.valence,
                                                      face.arousal))
