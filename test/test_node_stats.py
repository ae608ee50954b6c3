"""The node's health report: levels and thresholds of what /diagnostics says (ROS-free logic)."""
from __future__ import annotations

from fer_ros.ros.stats import ERROR, OK, WARN, NodeStats

THRESHOLDS = dict(latency_warn_ms=50.0, latency_error_ms=200.0, min_rate_hz=5.0)


def stats_with(latencies_ms, received=None, rejected=0) -> NodeStats:
    stats = NodeStats()
    stats.received = received if received is not None else len(latencies_ms)
    for lat in latencies_ms:
        stats.record(lat, 1)
    # pretend the frames came at 30 Hz
    t0 = stats.processed_times[-1] - (len(latencies_ms) - 1) / 30 if latencies_ms else 0
    stats.processed_times.clear()
    stats.processed_times.extend(t0 + i / 30 for i in range(len(latencies_ms)))
    if rejected:
        stats.rejected["corrupt"] += rejected
    return stats


def test_levels_follow_the_thresholds():
    level, message, values = stats_with([8.0] * 60).report(0, **THRESHOLDS)
    assert (level, message) == (OK, "ok") and float(values["rate_hz"]) > 25
    level, message, _ = stats_with([80.0] * 60).report(0, **THRESHOLDS)
    assert level == WARN and "latency p95 80.0 ms > 50" in message
    level, message, _ = stats_with([300.0] * 60).report(0, **THRESHOLDS)
    assert level == ERROR and "latency" in message
    level, message, values = stats_with([8.0] * 60, rejected=3).report(4, **THRESHOLDS)
    assert level == WARN and "3 frames rejected" in message
    assert values["frames_dropped_stale"] == "4" and values["rejected_corrupt"] == "3"


def test_no_images_and_nothing_processed():
    level, message, _ = NodeStats().report(0, **THRESHOLDS)
    assert level == WARN and message == "no images received"
    stats = NodeStats()
    stats.received = 10
    level, message, _ = stats.report(0, **THRESHOLDS)
    assert level == ERROR and "none processed" in message


def test_each_report_judges_only_its_own_period():
    stats = stats_with([8.0] * 30, rejected=2)
    assert stats.report(0, **THRESHOLDS)[0] == WARN
    stats.received += 30
    for _ in range(30):
        stats.record(8.0, 1)
    assert stats.report(0, **THRESHOLDS)[0] == OK  # the old rejections were reported already
