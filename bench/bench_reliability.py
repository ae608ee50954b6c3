"""Reliability figures of fer_node: bad input, overload, a long soak, and how fast every way of stopping ends.

    source ./env.sh && python bench/bench_reliability.py bomb       # decompression bomb: decoded vs refused
    python bench/bench_reliability.py bad-input                     # every bad image class through a real node
    python bench/bench_reliability.py overload [--rate 90 --seconds 20]
    python bench/bench_reliability.py soak [--frames 10000 --rate 30]
    python bench/bench_reliability.py stop [--runs 5]               # SIGINT/SIGTERM/double SIGINT: exit codes, time

Prints figures, asserts nothing (the pass/fail checks are the tests: test_node_bad_input.py, test_node_shutdown.py,
test_ros_conversions.py). Real processes over real DDS on loopback, in a domain of their own.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import cv2
import numpy as np

from fer_ros.ros import graph

STARTUP_S = 60.0  # the node must answer within this long (imports, models, discovery on a loaded machine)


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def bomb(args: argparse.Namespace) -> None:
    """A PNG of args.side x args.side black RGB pixels: its size, what decoding it costs, what refusing it costs."""
    side = args.side
    png = cv2.imencode(".png", np.zeros((side, side, 3), np.uint8))[1].tobytes()
    path = os.path.join(tempfile.mkdtemp(), "bomb.png")
    with open(path, "wb") as f:
        f.write(png)
    probe = ("import resource, sys, time, numpy as np, cv2\n"
             "from sensor_msgs.msg import CompressedImage\n"
             "from fer_ros.ros.conversions import compressed_to_array\n"
             "data = open(sys.argv[2], 'rb').read(); base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
             "t = time.perf_counter()\n"
             "if sys.argv[1] == 'decode': cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)\n"
             "else:\n"
             "    try: compressed_to_array(CompressedImage(format='png', data=data))\n"
             "    except Exception as e: print(type(e).__name__, e, file=sys.stderr)\n"
             "ms = (time.perf_counter() - t) * 1e3\n"
             "print(f'{ms:.1f} {(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024:.0f}')\n")
    print(f"PNG of {side}x{side} RGB zeros: {len(png) / 1024:.0f} KB on the wire, {side * side * 3 / 2**20:.0f} MB "
          f"decoded")
    for mode in ("decode", "node"):
        done = subprocess.run([sys.executable, "-c", probe, mode, path], capture_output=True, text=True)
        ms, mb = done.stdout.split()
        what = "cv2.imdecode (what the node did before)" if mode == "decode" else "compressed_to_array (the node now)"
        print(f"  {what}: {ms} ms, +{mb} MB peak memory{'; ' + done.stderr.strip() if done.stderr.strip() else ''}")


class Camera:
    """A publisher of the test's own and a subscriber to the node's emotions and diagnostics, spun in a thread."""

    def __init__(self, compressed: bool) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CompressedImage, Image

        from fer_ros.msg import EmotionArray

        rclpy.init()
        self.node = rclpy.create_node("bench_reliability")
        kind, topic = (CompressedImage, "/cam/image/compressed") if compressed else (Image, "/cam/image")
        self.pub = self.node.create_publisher(kind, topic, qos_profile_sensor_data)
        self.emotions = 0
        self.diagnostics: dict[str, str] = {}
        self.node.create_subscription(EmotionArray, "/emotions", self._on_emotions, 100)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", lambda d: self.diagnostics.update(
            {kv.key: kv.value for kv in d.status[0].values}), 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()

    def _on_emotions(self, _msg) -> None:
        self.emotions += 1

    def send(self, msg) -> None:
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(msg)

    def wait_answer(self, msg) -> None:
        end = time.monotonic() + STARTUP_S
        before = self.emotions
        while self.emotions == before and time.monotonic() < end:
            self.send(msg)
            time.sleep(0.2)
        if self.emotions == before:
            raise SystemExit("fer_node never answered")

    def stream(self, msg, rate: float, frames: int, each=None) -> float:
        period, start = 1.0 / rate, time.monotonic()
        for i in range(frames):
            self.send(msg)
            if each is not None:
                each(i)
            time.sleep(max(0.0, start + (i + 1) * period - time.monotonic()))
        return time.monotonic() - start

    def settle(self, seconds: float = 2.5) -> dict[str, str]:
        time.sleep(seconds)  # the last frames and at least one diagnostics period
        return dict(self.diagnostics)

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self._spin.join(timeout=5)  # a spin thread still in rcl at exit aborts the process ("terminate called")
        self.node.destroy_node()
        rclpy.try_shutdown()


def _start_node(compressed: bool = False, **params) -> subprocess.Popen:
    env = graph.ros_env(domain_id=int(os.environ["ROS_DOMAIN_ID"]))  # main() chose this run's domain
    cmd = graph.node_command(graph.default_params_file(), params={"compressed": compressed, **params},
                             remap={"image": "/cam/image", "image/compressed": "/cam/image/compressed"})
    log = tempfile.TemporaryFile(mode="w+")
    proc = graph.start(cmd, env, stdout=log, stderr=subprocess.STDOUT, text=True)
    proc.log = log
    return proc


@contextlib.contextmanager
def _answering_node(msg, compressed: bool = False):
    """A fer_node process and a Camera, once the node has answered ``msg``; stopped (SIGINT) on leaving."""
    proc = _start_node(compressed=compressed)
    cam = Camera(compressed=compressed)
    try:
        cam.wait_answer(msg)
        yield proc, cam
    finally:
        cam.close()
        graph.stop(proc)


def _raw_frame():
    from fer_ros.ros.conversions import array_to_image
    from fer_ros.samples import one_face

    return array_to_image(one_face().rgb, "rgb8")


def _counts(values: dict[str, str]) -> str:
    keys = ["frames_received", "frames_processed", "frames_dropped_stale", "frames_rejected"]
    keys += sorted(k for k in values if k.startswith("rejected_"))
    return ", ".join(f"{k} {values.get(k, '?')}" for k in keys)


def bad_input(args: argparse.Namespace) -> None:
    from sensor_msgs.msg import CompressedImage

    from fer_ros.ros.conversions import array_to_compressed
    from fer_ros.samples import astronaut, one_face

    good = array_to_compressed(one_face().bgr, "jpeg")
    photo = cv2.imencode(".jpg", np.ascontiguousarray(astronaut()[:, :, ::-1]))[1].tobytes()
    lost = bytearray(photo)
    lost[len(lost) // 2:len(lost) // 2 + 2000] = bytes(2000)
    cases = {
        "PNG bomb 5000x5000": CompressedImage(format="png", data=cv2.imencode(
            ".png", np.zeros((5000, 5000), np.uint8))[1].tobytes()),
        "JPEG with a lost block": CompressedImage(format="jpeg", data=bytes(lost)),
        "JPEG cut in half": CompressedImage(format="jpeg", data=photo[:len(photo) // 2]),
        "zeros called jpeg": CompressedImage(format="jpeg", data=bytes(5000)),
        "compressedDepth": CompressedImage(format="16UC1; compressedDepth png", data=good.data),
        "empty": CompressedImage(format="jpeg", data=b""),
    }
    with _answering_node(good, compressed=True) as (proc, cam):
        for name, msg in cases.items():
            for _ in range(args.each):
                cam.send(msg)
                time.sleep(0.1)
        cam.wait_answer(good)
        values = cam.settle()
    code = proc.returncode
    proc.log.seek(0)
    out = proc.log.read()
    print(f"{args.each} of each of {len(cases)} bad classes, then a good frame: {_counts(values)}")
    print(f"node alive until stopped, exit {code}; raw libjpeg lines on the console: "
          f"{sum(1 for line in out.splitlines() if 'Corrupt JPEG' in line and 'dropped frame' not in line)}; "
          f"'dropped frame' log lines: {sum(1 for line in out.splitlines() if 'dropped frame' in line)}")


def overload(args: argparse.Namespace) -> None:
    msg = _raw_frame()
    with _answering_node(msg) as (_, cam):
        start_values = cam.settle(1.5)
        sent = int(args.rate * args.seconds)
        took = cam.stream(msg, args.rate, sent)
        values = cam.settle()
    d = {k: int(values[k]) - int(start_values.get(k, 0)) for k in
         ("frames_received", "frames_processed", "frames_dropped_stale", "frames_rejected")}
    print(f"{sent} frames sent at {sent / took:.1f} Hz for {took:.1f} s: received {d['frames_received']}, processed "
          f"{d['frames_processed']}, dropped stale {d['frames_dropped_stale']}, rejected {d['frames_rejected']}; "
          f"received - processed - stale = {d['frames_received'] - d['frames_processed'] - d['frames_dropped_stale']}"
          f"; latency p95 {values.get('latency_p95_ms')} ms")


def soak(args: argparse.Namespace) -> None:
    msg = _raw_frame()
    samples: list[tuple[int, float]] = []
    with _answering_node(msg) as (proc, cam):
        warm = _rss_mb(proc.pid)
        step = max(1, args.frames // 10)
        took = cam.stream(msg, args.rate, args.frames,
                          each=lambda i: samples.append((i, _rss_mb(proc.pid))) if i % step == 0 else None)
        values = cam.settle()
        end = _rss_mb(proc.pid)
    print(f"{args.frames} frames at {args.frames / took:.1f} Hz ({took:.0f} s): RSS after warm-up {warm:.0f} MB, at the "
          f"end {end:.0f} MB; along the way " + ", ".join(f"{i}: {mb:.0f}" for i, mb in samples))
    print(f"  {_counts(values)}")


def stop(args: argparse.Namespace) -> None:
    from fer_ros.ros.conversions import array_to_image
    from fer_ros.samples import one_face

    msg = array_to_image(np.ascontiguousarray(np.tile(one_face().rgb, (2, 2, 1))), "rgb8")
    ways = {"SIGINT": (signal.SIGINT,), "SIGTERM": (signal.SIGTERM,), "SIGINT twice 20 ms apart":
            (signal.SIGINT, signal.SIGINT), "SIGINT then SIGTERM 20 ms apart": (signal.SIGINT, signal.SIGTERM)}
    cam = Camera(compressed=False)
    try:
        for name, sigs in ways.items():
            codes, times, tracebacks, aborts = [], [], 0, 0
            for _ in range(args.runs):
                proc = _start_node()
                cam.wait_answer(msg)
                streaming = threading.Event()

                def feed() -> None:
                    while not streaming.is_set():
                        cam.send(msg)
                        time.sleep(0.01)
                feeder = threading.Thread(target=feed, daemon=True)
                feeder.start()
                time.sleep(0.5)
                t = time.monotonic()
                for i, sig in enumerate(sigs):
                    if i:
                        time.sleep(0.02)
                    proc.send_signal(sig)
                codes.append(proc.wait(timeout=60))
                times.append(time.monotonic() - t)
                streaming.set()
                feeder.join()
                proc.log.seek(0)
                out = proc.log.read()
                tracebacks += "Traceback" in out
                aborts += "terminate called" in out  # C++ std::terminate: a graph closed under a running thread
            print(f"{name} while 1280x960 frames stream, {args.runs} runs: exit codes {sorted(set(codes))}, "
                  f"tracebacks {tracebacks}, 'terminate called' {aborts}, time to exit max {max(times):.2f} s")
    finally:
        cam.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("bomb")
    p.add_argument("--side", type=int, default=16000)
    p = sub.add_parser("bad-input")
    p.add_argument("--each", type=int, default=5)
    p = sub.add_parser("overload")
    p.add_argument("--rate", type=float, default=90.0)
    p.add_argument("--seconds", type=float, default=20.0)
    p = sub.add_parser("soak")
    p.add_argument("--frames", type=int, default=10000)
    p.add_argument("--rate", type=float, default=30.0)
    p = sub.add_parser("stop")
    p.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = graph.ros_env()  # localhost only, a random domain: this process and the nodes it starts share it
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY", "ROS_DOMAIN_ID")})
    {"bomb": bomb, "bad-input": bad_input, "overload": overload, "soak": soak, "stop": stop}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
