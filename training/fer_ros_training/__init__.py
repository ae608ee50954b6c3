"""fer_ros_training: the offline half of fer_ros (networks, data, training, evaluation, export).

Importable as ``fer_ros_training`` (never ``training``). ``fer_ros_training.networks`` holds one definition per
network, shared by training, ONNX export and the runtime's torch backend.
"""
from __future__ import annotations

__version__ = "0.1.0"
