"""Counters and latency window of the node, turned into a diagnostic status. ROS-free apart from the final message."""
from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

LATENCY_WINDOW = 300  # processed frames kept for the latency percentiles (10 s at 30 Hz)

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels
LOG_THROTTLE_S = 10.0  # a recurring problem (per frame or crop) is logged at most this often, with its running count


def warn_throttled(logger, last_log: dict[str, float], kind: str, text: str) -> None:
    """``logger.warn(text)`` unless a warning of this ``kind`` was logged less than LOG_THROTTLE_S ago."""
    now = time.monotonic()
    if now - last_log.get(kind, -LOG_THROTTLE_S) >= LOG_THROTTLE_S:
        last_log[kind] = now
        logger.warn(text)


def diagnostic_array(name: str, level: int, message: str, hardware_id: str, values: dict[str, str], stamp):
    """The node's one-status diagnostic_msgs/DiagnosticArray (imported here: the rest of this module is ROS-free)."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    array = DiagnosticArray(status=[DiagnosticStatus(level=bytes([level]), name=name, message=message,
                                                     hardware_id=hardware_id,
                                                     values=[KeyValue(key=k, value=v) for k, v in values.items()])])
    array.header.stamp = stamp
    return array


@dataclass
class NodeStats:
    received: int = 0
    processed: int = 0
    rate_limited: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> frames refused (encoding, corrupt, failure)
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    faces: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    processed_times: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    # snapshot at the previous report, to judge the last period only
    _last_received: int = 0
    _last_processed: int = 0
    _last_rejected: int = 0

    def record(self, latency_ms: float, num_faces: int) -> None:
        self.processed += 1
        self.latencies_ms.append(latency_ms)
        self.faces.append(num_faces)
        self.processed_times.append(time.monotonic())

    def rate_hz(self) -> float:
        t = self.processed_times
        if len(t) < 2 or t[-1] - t[0] <= 0:
            return 0.0
        if time.monotonic() - t[-1] > 2.0:  # stalled: the window would overstate the rate
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0])

    def report(self, dropped_stale: int, latency_warn_ms: float, latency_error_ms: float,
               min_rate_hz: float) -> tuple[int, str, dict[str, str]]:
        """(level, message, key/values) for the last period, and start a new period."""
        lat = np.asarray(self.latencies_ms, dtype=np.float64)
        p50, p95 = (float(np.percentile(lat, 50)), float(np.percentile(lat, 95))) if lat.size else (0.0, 0.0)
        rate = self.rate_hz()
        new_received = self.received - self._last_received
        new_processed = self.processed - self._last_processed
        rejected_total = sum(self.rejected.values())
        new_rejected = rejected_total - self._last_rejected
        self._last_received, self._last_processed, self._last_rejected = (self.received, self.processed,
                                                                          rejected_total)
        level, problems = OK, []
        if new_received == 0:
            level, problems = WARN, ["no images received"]
        elif new_processed == 0:
            level, problems = ERROR, [f"{new_received} images received, none processed"]
        else:
            if p95 > latency_error_ms:
                level = ERROR
                problems.append(f"latency p95 {p95:.1f} ms > {latency_error_ms:g}")
            elif p95 > latency_warn_ms:
                level = max(level, WARN)
                problems.append(f"latency p95 {p95:.1f} ms > {latency_warn_ms:g}")
            if rate < min_rate_hz:
                level = max(level, WARN)
                problems.append(f"rate {rate:.1f} Hz < {min_rate_hz:g}")
            if new_rejected:
                level = max(level, WARN)
                problems.append(f"{new_rejected} frames rejected")
        values = {
            "rate_hz": f"{rate:.2f}",
            "latency_p50_ms": f"{p50:.2f}",
            "latency_p95_ms": f"{p95:.2f}",
            "frames_received": str(self.received),
            "frames_processed": str(self.processed),
            "frames_dropped_stale": str(dropped_stale),
            "frames_rate_limited": str(self.rate_limited),
            "frames_rejected": str(rejected_total),
            "faces_last": str(self.faces[-1] if self.faces else 0),
            "faces_mean": f"{(sum(self.faces) / len(self.faces)) if self.faces else 0.0:.2f}",
        }
        values.update({f"rejected_{k}": str(v) for k, v in sorted(self.rejected.items())})
        return level, "; ".join(problems) or "ok", values


@dataclass
class CompanionStats:
    """Counts of the ROS4HRI companion role (fer_ros.ros.hri_companion); ``report`` judges the last period."""

    crops: int = 0  # crops received for listed faces
    published: int = 0  # expressions published
    batches: int = 0  # backend calls
    problems: Counter = field(default_factory=Counter)  # kind (bad_crop, bad_id, failure) -> count
    batch_ms: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))  # one backend batch each
    _last: tuple[int, int, int] = (0, 0, 0)  # crops, published, problems at the previous report

    def report(self, listed: int, image_topic: str) -> tuple[int, str, dict[str, str]]:
        """(level, message, key/values) with ``listed`` faces on the detector's list now; starts a new period."""
        total_problems = sum(self.problems.values())
        crops, published, problems = (now - last for now, last in zip(
            (self.crops, self.published, total_problems), self._last))
        self._last = (self.crops, self.published, total_problems)
        level, notes = OK, []
        if listed and not crops:
            level, notes = WARN, [f"{listed} faces listed, no crop received on /humans/faces/<id>/{image_topic}"]
        elif crops and not published:
            level, notes = ERROR, [f"{crops} crops received, no expression published"]
        if problems:
            level = max(level, WARN)
            notes.append(f"{problems} problems ({', '.join(sorted(self.problems))}; see the log)")
        ms = np.asarray(self.batch_ms, dtype=np.float64)
        values = {"faces_listed": str(listed), "crops_received": str(self.crops),
                  "expressions_published": str(self.published), "batches": str(self.batches),
                  "batch_p50_ms": f"{np.percentile(ms, 50) if ms.size else 0.0:.2f}",
                  "batch_p95_ms": f"{np.percentile(ms, 95) if ms.size else 0.0:.2f}"}
        values.update({f"problems_{k}": str(v) for k, v in sorted(self.problems.items())})
        return level, "; ".join(notes) or ("ok" if listed else "ok, no faces listed"), values
