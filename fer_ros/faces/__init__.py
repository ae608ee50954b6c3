"""Face stages of the perception core: detection, landmark refinement and alignment (no ROS imports).

``create_detector(DetectorConfig)`` -> a ``FaceDetector``; ``create_landmarker(cfg)`` -> the optional face mesh;
``align_batch(image, color, detections, card)`` -> the model-ready batch. See docs/architecture.md.
"""
from __future__ import annotations

from fer_ros.faces.detector import DetectorConfig, DetectorStats, FaceDetector, box_iou, create_detector

__all__ = ["DetectorConfig", "DetectorStats", "FaceDetector", "box_iou", "create_detector"]
