"""Headless mode: apply a label file to a bag or video without a window (for scripts and batch jobs).

Three things can be asked, in any combination:

- validate: every clip's start, peak and end stamps must hit a frame of the source (within half a frame period),
  be in order (start <= peak <= end) and carry a known label; problems are listed, one line each;
- export clips: frames start..end of every valid clip into the clip-folder layout of docs/formats.md;
- trim: a copy of the recording cut down to the labelled spans (plus a margin): for a bag every topic's messages
  received within the spans (the node's outputs come along), for a video the frames within them.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from fer_ros.annotate.sources import BagFrameSource, FrameSource, VideoFrameSource
from fer_ros.annotate.store import ClipExport, ClipRecord, export_clip, label_delimiter, read_label_file
from fer_ros.bag.labels import interval_frames
from fer_ros.errors import ConfigError

TRIM_VIDEO_CODEC = "MJPG"  # intra-frame codec: every frame of the trimmed video stays individually seekable


@dataclass
class ClipCheck:
    """A clip of the label file resolved to frame indices of the source, with what is wrong with it."""

    record: ClipRecord
    start: int | None
    end: int | None
    peak: int | None
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass
class HeadlessReport:
    """What a headless run found and wrote."""

    label_file: Path
    clips: list[ClipCheck]
    file_problems: list[str]  # rows of the label file that could not be read
    exports: list[ClipExport] = field(default_factory=list)
    trimmed: Path | None = None
    trimmed_items: int = 0  # messages (bag) or frames (video) written to the trimmed copy

    @property
    def problem_count(self) -> int:
        return len(self.file_problems) + sum(len(c.problems) for c in self.clips)

    def lines(self) -> list[str]:
        """A human-readable report, one finding per line."""
        valid = sum(c.valid for c in self.clips)
        out = [f"{self.label_file}: {len(self.clips)} clips, {valid} valid, {self.problem_count} problems"]
        out += [f"  {p}" for p in self.file_problems]
        for c in self.clips:
            out += [f"  {c.record.clip}: {p}" for p in c.problems]
        for e in self.exports:
            extra = f", {len(e.unreadable)} unreadable frames left out" if e.unreadable else ""
            out.append(f"  exported {e.clip}: {e.frames} frames -> {e.directory}{extra}")
        if self.trimmed is not None:
            out.append(f"  trimmed copy: {self.trimmed} ({self.trimmed_items} items)")
        return out


def check_clips(source: FrameSource, records: Sequence[ClipRecord], labels: Sequence[str],
                intervals: bool = False) -> list[ClipCheck]:
    """Resolve every record's stamps to frames of ``source`` and list what is wrong with each clip.

    ``intervals``: the records come from an interval CSV, whose ``start,end`` means what eval-bag reads in it: the
    frames with start <= stamp <= end (a span may begin before the recording). Otherwise (the thesis TSV, written by
    the annotation window) start, peak and end each mark a frame."""
    known = {label.lower() for label in labels}
    checks = []
    for r in records:
        problems = []
        if r.label.lower() not in known:
            problems.append(f"label '{r.label}' is not one of {', '.join(labels)}")
        idx: dict[str, int | None] = {}
        if intervals:  # start..end labels every frame with start <= stamp <= end, as eval-bag reads it (labels.py)
            frames = interval_frames(source.stamps.tolist(), r.start, r.end) if r.end >= r.start else range(0)
            idx = {"start": frames[0] if frames else None, "end": frames[-1] if frames else None, "peak": None}
            if not frames and r.end >= r.start:
                problems.append(f"no frame of {source.description} lies in {r.start:.6f}..{r.end:.6f} s"
                                + (f" (frames {source.stamps[0]:.6f}..{source.stamps[-1]:.6f} s)" if len(source)
                                   else ": the source has no frames"))
        marks = (("peak", r.peak),) if intervals else (("start", r.start), ("end", r.end), ("peak", r.peak))
        for name, stamp in marks:  # a thesis record marks frames: each mark must be one
            if name == "peak" and math.isnan(stamp):
                idx[name] = None
                continue
            idx[name] = source.index_of_stamp(stamp)
            if idx[name] is None:
                problems.append(f"{name} {stamp:.6f} s matches no frame of {source.description} "
                                f"(frames {source.stamps[0]:.6f}..{source.stamps[-1]:.6f} s)" if len(source)
                                else f"{name}: the source has no frames")
        if r.end < r.start:
            problems.append(f"end {r.end:.6f} s is before start {r.start:.6f} s")
        elif not math.isnan(r.peak) and not r.start <= r.peak <= r.end:
            problems.append(f"peak {r.peak:.6f} s is outside start..end")
        checks.append(ClipCheck(r, idx["start"], idx["end"], idx["peak"], problems))
    return checks


def apply_label_file(source: FrameSource, label_file: str | Path, labels: Sequence[str],
                     export_root: str | Path | None = None, trim_out: str | Path | None = None,
                     margin: float = 0.0) -> HeadlessReport:
    """Validate ``label_file`` (thesis TSV or interval CSV) against ``source``; export clips and trim if asked.

    Only valid clips are exported and trimmed to; the invalid ones are in the report with their reasons.
    """
    records, file_problems = read_label_file(Path(label_file))
    intervals = label_delimiter(Path(label_file).read_text(encoding="utf-8-sig")) == ","  # CSV, not the TSV
    report = HeadlessReport(Path(label_file), check_clips(source, records, labels, intervals), file_problems)
    valid = [c for c in report.clips if c.valid]
    if export_root is not None:
        for c in valid:
            assert c.start is not None and c.end is not None
            report.exports.append(export_clip(source, c.record, c.start, c.end, c.peak, Path(export_root)))
    if trim_out is not None:
        spans = [(c.start, c.end) for c in valid if c.start is not None and c.end is not None]
        if not spans:
            raise ConfigError(f"nothing to trim to: {label_file} has no valid clip")
        report.trimmed = Path(trim_out)
        if isinstance(source, BagFrameSource):
            report.trimmed_items = trim_bag(source, spans, report.trimmed, margin)
        elif isinstance(source, VideoFrameSource):
            report.trimmed_items = trim_video(source, spans, report.trimmed, margin)
        else:
            raise ConfigError(f"cannot trim a {type(source).__name__}")
    return report


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def trim_bag(source: BagFrameSource, spans: Sequence[tuple[int, int]], out: Path, margin: float = 0.0,
             version: int = 9, storage: str = "sqlite3") -> int:
    """Copy every topic's messages received within the spans (frame index ranges, +-margin s) to a new bag.

    Spans are turned into bag receive times through the image messages, so the node's outputs and any other topic
    recorded alongside come with the frames they belong to. Returns the number of messages written.
    """
    from fer_ros.bag.bag_io import open_writer

    pad = int(round(margin * 1e9))
    windows = _merge([(int(source.log_times[a]) - pad, int(source.log_times[b]) + pad) for a, b in spans])
    bag = source.bag
    connections = [c for t in bag.topics() for c in bag.connections(t.name)]
    written = 0
    writer = open_writer(out, version=version, storage=storage)
    try:
        out_conn: dict[int, Any] = {}
        for conn in connections:
            out_conn[conn.id] = writer.add_connection(
                conn.topic, conn.msgtype, typestore=bag.store, offered_qos_profiles=bag.offered_qos([conn]))
        for message in bag.messages(connections):
            t = message.timestamp_ns
            if any(lo <= t <= hi for lo, hi in windows):
                writer.write(out_conn[message.connection.id], t, message.raw)
                written += 1
    finally:
        writer.close()
    return written


def trim_video(source: VideoFrameSource, spans: Sequence[tuple[int, int]], out: Path, margin: float = 0.0) -> int:
    """Write the frames within the spans (+-margin s) to ``out`` (MJPG, the source's frame rate).

    Unreadable frames are left out and counted in ``source.unreadable``. Returns the number of frames written.
    """
    pad = int(round(margin * source.fps))
    ranges = _merge([(max(0, a - pad), min(len(source) - 1, b + pad)) for a, b in spans])
    writer = None
    written = 0
    try:
        for lo, hi in ranges:
            for index in range(int(lo), int(hi) + 1):
                frame = source.read(index)
                if frame.image is None:
                    continue
                if writer is None:
                    h, w = frame.image.shape[:2]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*TRIM_VIDEO_CODEC), source.fps, (w, h))
                    if not writer.isOpened():
                        raise ConfigError(f"OpenCV cannot write {out}: use a .avi file name")
                writer.write(frame.image)
                written += 1
    finally:
        if writer is not None:
            writer.release()
    return written
