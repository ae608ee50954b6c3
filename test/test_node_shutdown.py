"""Every way of stopping fer_node exits 0 without a traceback: real processes, real signals, at several moments.

Start-up moments are fractions of the time this machine takes to get the node ready (measured first), most of them
near the end, where the node is built and the spin starts (the old failures: tracebacks from rcl_shutdown called
twice, from an executor built on a context the signal had shut down, and from a second SIGINT in the clean-up). Moments while frames stream are reached by
waiting for the node's answers first.
"""
from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 venv: scripts/setup.sh, then source ./env.sh")
pytest.importorskip("fer_ros.msg", reason="fer_ros is not built: run scripts/setup.sh")

from test_node_ros import STARTUP_TIMEOUT_S, Harness, node_output, ros_context, start_node  # noqa: E402,F401

from fer_ros.ros.conversions import array_to_image  # noqa: E402
from fer_ros.samples import one_face  # noqa: E402

pytestmark = pytest.mark.ros
START_UP_FRACTIONS = (0.3, 0.6, 0.75, 0.85, 0.9, 0.95, 1.0)  # of the time to "ready": where to signal
SECOND_SIGNAL_S = 0.02  # a double Ctrl-C, or launch's SIGINT then SIGTERM, comes this soon after the first


def _check_clean_exit(proc) -> str:
    code = proc.wait(timeout=STARTUP_TIMEOUT_S)
    out = node_output(proc)
    assert code == 0, f"exit {code}:\n{out[-3000:]}"
    assert "Traceback" not in out and "Exception ignored" not in out, out[-3000:]
    assert "dropped frame (failure" not in out, out[-3000:]  # a stop is not a failed frame
    return out


def _start_up_seconds() -> float:
    """How long this machine takes from the start to the node's "ready" line (one run, stopped after)."""
    proc = start_node(False, emotions_topic="/startup/emotions")
    start = time.monotonic()
    while "ready:" not in node_output(proc) and proc.poll() is None and time.monotonic() - start < STARTUP_TIMEOUT_S:
        time.sleep(0.01)
    seconds = time.monotonic() - start
    proc.send_signal(signal.SIGINT)
    _check_clean_exit(proc)
    return seconds


def _send(proc, signals) -> None:
    for i, sig in enumerate(signals):
        if i:
            time.sleep(SECOND_SIGNAL_S)
        proc.send_signal(sig)


@pytest.mark.parametrize("signals", [(signal.SIGINT,), (signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-SIGINT"])
def test_signals_during_start_up_exit_0(signals):
    # moments spread over the whole start-up of this machine: imports, model loading, node construction, first spin
    ready_s = _start_up_seconds()
    for fraction in START_UP_FRACTIONS:
        proc = start_node(False, emotions_topic="/startup/emotions")
        time.sleep(fraction * ready_s)
        _send(proc, signals)
        _check_clean_exit(proc)


class Streamer:
    """Publishes a camera frame continuously (as fast as the node can be kept busy) until stopped."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        frame = one_face().rgb
        self.msg = array_to_image(np.ascontiguousarray(np.tile(frame, (2, 2, 1))), "rgb8")  # 1280x960: slower frames
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.harness.publish(self.msg)
            time.sleep(0.01)

    def __enter__(self) -> Streamer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("signals", [
    (signal.SIGINT,), (signal.SIGTERM,), (signal.SIGINT, signal.SIGINT), (signal.SIGINT, signal.SIGTERM),
], ids=["SIGINT", "SIGTERM", "SIGINT-SIGINT", "SIGINT-SIGTERM"])
def test_signals_while_frames_stream_exit_0(ros_context, signals):
    topic = "/stream/emotions"
    for _ in range(2):  # frames are in flight at the signal: the worker may be publishing as the context goes down
        proc = start_node(False, emotions_topic=topic)
        harness = Harness(compressed=False, emotions_topic=topic)
        try:
            harness.send_until_answered(lambda: array_to_image(one_face().rgb, "rgb8"))
            with Streamer(harness):
                answered = len(harness.emotions)
                harness.wait_for(lambda: len(harness.emotions) > answered + 3, 10.0)
                _send(proc, signals)
                _check_clean_exit(proc)
        finally:
            harness.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_shutdown_does_not_close_the_pipeline_under_a_frame(ros_context, monkeypatch):
    """The worker is inside a frame when the node stops and the join times out: the pipeline must stay open until the
    frame ends (closing mediapipe's graph under it aborted the process in 2 of 11 runs)."""
    from fer_ros.ros import node as node_module

    monkeypatch.setattr(node_module, "WORKER_JOIN_S", 0.0)  # the frame in progress outlasts the join at once
    fer = node_module.FerNode()
    try:
        big = np.ascontiguousarray(np.tile(one_face().rgb, (6, 6, 1)))  # 3840x2880: a frame of ~100 ms or more
        fer._slot.put(array_to_image(big, "rgb8"))
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while fer.pipeline.stats.frames == 0 and time.monotonic() < deadline:  # counted when process() starts
            time.sleep(0.0005)
        assert fer.pipeline.stats.frames == 1, "the worker never started the frame"
        fer.shutdown()
        assert fer._worker.is_alive(), "the frame ended before the stop: the test did not test the race"
        fer._worker.join(STARTUP_TIMEOUT_S)
        assert fer.stats.processed == 1 and not fer.stats.rejected, dict(fer.stats.rejected)
        # nothing the frame used was closed under it: the pipeline still processes (a closed one raises)
        assert len(fer.pipeline.process(one_face().rgb, 2.0, "rgb").faces) <= 1
    finally:
        fer._worker.join(STARTUP_TIMEOUT_S)
        fer.pipeline.close()
        fer.destroy_node()
