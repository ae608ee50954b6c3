"""Test settings shared by every tier. DDS discovery stays on this machine, in a domain of this run's own."""
from __future__ import annotations

import os
import random
from pathlib import Path

# Set before anything imports rclpy: every process these tests start inherits it.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))
# Shared memory big enough for camera frames and UDP on loopback only (config/fastdds_localhost.xml says why).
os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE",
                      str(Path(__file__).resolve().parents[1] / "config" / "fastdds_localhost.xml"))
# Two cores are shared by detection, inference and the test's own processes: keep libraries from oversubscribing.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
