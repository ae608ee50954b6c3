"""Face stages of the perception core: detection, landmark refinement and alignment (no ROS imports).

``create_detector(DetectorConfig)`` -> a ``FaceDetector``; ``create_landmarker(cfg)`` -> the optional face mesh
(None when ``use_mesh`` is off); ``align_batch(image, color, detections, card)`` -> the model-ready batch.
mediapipe is imported only when a detector or the mesh is built. See docs/architecture.md.
"""
from __future__ import annotations

from fer_ros.faces.align import align_batch, align_crops, crop_face, face_transform, normalize, to_model_color
from fer_ros.faces.detector import DetectorConfig, DetectorStats, FaceDetector, box_iou, create_detector
from fer_ros.faces.landmarks import MeshLandmarker, create_landmarker

__all__ = ["DetectorConfig", "DetectorStats", "FaceDetector", "MeshLandmarker", "align_batch", "align_crops",
           "box_iou", "create_detector", "create_landmarker", "crop_face", "face_transform", "normalize",
           "to_model_color"]
