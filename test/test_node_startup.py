"""Start-up refusals of the installed fer_node: each bad file or value ends in ONE FATAL line that names the field
and the fix, exit 1, no traceback; integers where a double is expected are taken; misspelt names are warned about.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 venv: scripts/setup.sh, then source ./env.sh")
pytest.importorskip("fer_ros.msg", reason="fer_ros is not built: run scripts/setup.sh")

from test_node_ros import STARTUP_TIMEOUT_S, node_output  # noqa: E402

from fer_ros.registry import DEFAULT_MODEL, resolve_model  # noqa: E402
from fer_ros.ros import graph  # noqa: E402

pytestmark = pytest.mark.ros


def _start(params_file: Path | str, **params) -> subprocess.Popen:
    cmd = graph.node_command(params_file, remap={"image": "/startup_check/image", "emotions": "/startup_check/e"},
                             params=params)
    log = tempfile.TemporaryFile(mode="w+")
    proc = graph.start(cmd, graph.ros_env(), stdout=log, stderr=subprocess.STDOUT, text=True)
    proc.log = log
    return proc


def _params_file(tmp_path: Path, edit) -> Path:
    config = yaml.safe_load(graph.default_params_file().read_text())
    (section,) = [v for k, v in config.items() if k.endswith("fer_node")]
    edit(section["ros__parameters"])
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _bad_card(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(resolve_model(DEFAULT_MODEL).directory, folder)
    card = yaml.safe_load((folder / "model.yaml").read_text())
    card["input"]["height"] = "sixty-four"
    (folder / "model.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return folder / "model.yaml"


@pytest.mark.parametrize("case", ["max_faces_text", "max_faces_double", "missing_file", "card_height",
                                  "latency_warn_above_error", "min_confidence_text_in_file"])
def test_a_bad_start_up_value_is_one_fatal_line(tmp_path, case):
    default = graph.default_params_file()
    params_file, params, names = {
        "max_faces_text": (default, {"detector.max_faces": "abc"}, ["detector.max_faces", "an int"]),
        "max_faces_double": (default, {"detector.max_faces": "8.0"}, ["detector.max_faces", "an int"]),
        "missing_file": (tmp_path / "nope.yaml", {}, ["nope.yaml", "does not exist", "--params-file"]),
        "card_height": (default, {"model": str(_bad_card(tmp_path))}, ["input.height", "write it like"]),
        "latency_warn_above_error": (default, {"diagnostics.latency_warn_ms": 300.0},
                                     ["latency_warn_ms", "latency_error_ms"]),
        "min_confidence_text_in_file": (_params_file(tmp_path, lambda p: p["detector"].update(min_confidence="high")),
                                        {}, ["detector.min_confidence", "a double"]),
    }[case]
    proc = _start(params_file, **params)
    try:
        code = proc.wait(timeout=STARTUP_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            graph.stop(proc)
    out = node_output(proc)
    fatal = [line for line in out.splitlines() if "FATAL" in line]
    assert code == 1, out
    assert len(fatal) == 1 and "Traceback" not in out and "[ERROR]" not in out, out
    for name in names:
        assert name in fatal[0], fatal[0]


def test_an_integer_double_is_taken_and_a_misspelt_name_is_warned_about(tmp_path):
    def edit(p):
        p["detector"]["min_confidence"] = 1  # an int where a double is expected: easy to write, simply accepted
        p["detector"]["min_confidense"] = 0.4  # misspelt: ignored, but said so with the closest known name
    proc = _start(_params_file(tmp_path, edit))
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while "ready:" not in node_output(proc) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        out = node_output(proc)
        assert "ready:" in out, out
    finally:
        assert graph.stop(proc) == 0
    assert "unknown parameter 'detector.min_confidense' is ignored: did you mean 'detector.min_confidence'?" in out
    assert "FATAL" not in out and "Traceback" not in out
