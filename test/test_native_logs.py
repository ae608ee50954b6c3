"""Issue 14.10: mediapipe's native absl/TFLite lines stay off the console of fer-ros commands, everything else
(errors, progress redraws) passes through, in order."""
from __future__ import annotations

import os
import subprocess
import sys

from fer_ros.native_logs import NOISE, filter_native_logs

NATIVE = (b"W0000 00:00:1796587583.158369    4291 inference_feedback_manager.cc:114] Feedback manager requires a "
          b"model with a single signature inference.\n")


def test_filter_drops_native_lines_and_passes_the_rest(capfd):
    f = filter_native_logs()
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n" + NATIVE)
    os.write(2, b"WARNING fer_ros_training.data: kept\n")
    os.write(2, b"\rmake-bag: 3/8 frames")  # a progress redraw: no newline, passes at once
    os.write(2, b"W0000 00:00:1.5 12 a.cc:9] split ")
    os.write(2, b"across writes\nlast\n")
    f.close()
    assert capfd.readouterr().err == "WARNING fer_ros_training.data: kept\n\rmake-bag: 3/8 frames" + "last\n"
    assert NOISE.match(NATIVE) and not NOISE.match(b"WARNING: something else")


def _run_image(env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-m", "fer_ros.cli", "run-image", "--sample"], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env}).stderr


def test_run_image_console_has_no_native_log_lines():
    shown = _run_image({"FER_ROS_NATIVE_LOGS": "1"})
    assert "W0000" in shown or "XNNPACK" in shown, "mediapipe printed no native lines here: nothing to filter"
    quiet = _run_image({})
    assert "W0000" not in quiet and "XNNPACK" not in quiet and "absl::InitializeLog" not in quiet, quiet
