"""Offline evaluation: a bag's image topic through fer_node's own pipeline and parameters, no ROS runtime needed.

For every message of the topic, in bag order: deserialize (rosbags), convert to a frame exactly as the node does
(``fer_ros.bag.decode``), run ``EmotionPipeline.process(frame, header stamp, colour)``, and write the resulting
``EmotionArray`` (stamped with the image's header, at the image's bag time) into ``OUT/emotions``. Every message ends
as processed, dropped (the pipeline refused the frame, or ``max_rate`` skipped it) or unreadable (corrupt,
unsupported encoding, truncated); one bad message never stops the run.

Smoothing: the pipeline runs with smoothing off and the pipeline's own per-track smoother is applied afterwards
(:class:`TrackSmoother`), so one pass yields both the labels the node would publish and the unsmoothed labels; the
flicker of both goes into the report.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fer_ros.bag.bag_io import EMOTION_ARRAY_TYPE, ReadCheck, add_topic, open_bag, open_writer
from fer_ros.bag.decode import UnreadableMessage, deserialize_and_decode
from fer_ros.bag.emotion_codec import EmotionArrayCodec, record_from_result
from fer_ros.bag.labels import LabelSet, labels_from_messages, read_label_csv
from fer_ros.bag.params import read_node_params
from fer_ros.bag.records import FrameRecord, MessageLedger
from fer_ros.datatypes import FaceResult, FrameResult
from fer_ros.errors import FrameError
from fer_ros.node_parameters import pipeline_params
from fer_ros.progress import Progress
from fer_ros.temporal import EmaSmoother

OUTPUT_BAG_NAME = "emotions"  # DIR/emotions: the output bag's folder inside the report directory
OUTPUT_TOPIC = "/emotions"  # the node's output topic, resolved in the root namespace
DROP_RATE_LIMITED = "rate_limited"  # max_rate > 0 skipped the frame (emulated on header stamps)
DROP_FAILURE = "failure"  # an unexpected exception on one frame (the node counts it the same way)


@dataclass
class EvalOptions:
    """What to evaluate and where to write it (the ``fer-ros eval-bag`` arguments)."""

    bag: Path
    topic: str
    out_dir: Path
    labels_file: Path | None = None
    label_topic: str | None = None
    params_file: Path | None = None
    format_version: int = 9
    storage: str = "sqlite3"
    output_topic: str = OUTPUT_TOPIC
    progress: bool = True  # a progress line on stderr while frames are scored (only when stderr is a terminal)
    progress_label: str = "eval-bag"  # what the line starts with (replay's offline comparison says so)


@dataclass
class EvalRun:
    """Everything a report is built from."""

    ledger: MessageLedger
    frames: list[FrameRecord]
    frame_stamps: list[float]  # header stamps of every readable message (processed or dropped), in bag order
    frame_records: list[FrameRecord | None]  # parallel to frame_stamps: the record, or None when dropped
    model_id: str
    labels: tuple[str, ...]
    backend: str
    detector: str
    params: dict[str, Any]
    smoothing: float
    raw_labels_known: bool
    label_set: LabelSet | None
    output_bag: Path | None
    # wall time: setup (bag open, models loaded), loop (all messages), and within the loop read, decode, pipeline, write
    seconds: dict[str, float] = field(default_factory=dict)
    unknown_params: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # mode-specific details (live: answers matching nothing...)


class TrackSmoother:
    """The pipeline's own smoothing (``fer_ros.temporal.EmaSmoother``) applied after the fact to a FrameResult
    computed with smoothing off: labels, confidences and probabilities then equal what the pipeline with smoothing
    on returns (same arithmetic on the same float32 vectors), while the raw labels stay known."""

    def __init__(self, factor: float) -> None:
        self.smoother = EmaSmoother(factor)

    def __call__(self, result: FrameResult) -> FrameResult:
        labelled = [f for f in result.faces if f.labelled]  # faces under min_face_size carry no probabilities
        if not labelled:
            return result
        raw = np.stack([np.asarray(f.probabilities, dtype=np.float32) for f in labelled])
        smoothed = dict(zip([f.face_id for f in labelled], self.smoother.update([f.face_id for f in labelled], raw)))
        faces: list[FaceResult] = []
        for face in result.faces:
            p = smoothed.get(face.face_id)
            if p is None:
                faces.append(face)
                continue
            top = int(np.argmax(p))
            faces.append(replace(face, probabilities=p.astype(np.float32, copy=True), label=result.labels[top],
                                 confidence=float(p[top])))
        return replace(result, faces=faces)


def load_labels(options: EvalOptions, source: Any, labels: tuple[str, ...]) -> LabelSet | None:
    """Labels from the CSV file or the bag topic named in the options (None when neither)."""
    if options.labels_file is not None:
        return read_label_csv(options.labels_file, labels)
    if options.label_topic:
        conns = source.connections(options.label_topic)
        msgs = [(m.timestamp_ns, source.deserialize(m)) for m in source.messages(conns)]
        return labels_from_messages(msgs, conns[0].msgtype, options.label_topic, labels)
    return None


def create_pipeline(params: dict[str, Any], smoothing_override: float | None = None) -> Any:
    """The node's EmotionPipeline from its parameters (optionally with smoothing replaced)."""
    from fer_ros.pipeline import EmotionPipeline, PipelineConfig

    flat = pipeline_params(params)
    if smoothing_override is not None:
        flat["smoothing"] = smoothing_override
    # Offline, frames come as fast as the machine reads them, not at camera time: a whole-frame pass in its own thread
    # would land on whichever frame happens to be current. Inline, the result depends on the bag alone (same bag,
    # same output), and the schedule (one whole-frame pass per detector.full_frame_period of stamp time) is the same.
    flat["detector.parallel"] = False
    return EmotionPipeline(PipelineConfig.from_flat(flat))


def run_offline(options: EvalOptions) -> EvalRun:
    """Process the bag with a fresh pipeline built from the node's parameters; writes ``OUT/emotions`` and returns
    the run for the report. (A fresh pipeline each time: mediapipe's face-mesh tracking state survives
    ``EmotionPipeline.reset()``, so a reused one would not reproduce the node exactly.)"""
    params, unknown = read_node_params(options.params_file)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    with open_bag(options.bag) as source:
        image_conns = source.image_connections(options.topic)
        with create_pipeline(params, smoothing_override=0.0) as pipeline:
            return _run(options, source, image_conns, pipeline, params, unknown, t_start)


def _run(options: EvalOptions, source: Any, image_conns: list, pipeline: Any, params: dict[str, Any],
         unknown: list[str], t_start: float) -> EvalRun:
    labels = tuple(pipeline.labels)
    label_set = load_labels(options, source, labels)
    smoothing = float(params["smoothing"])
    smoother = TrackSmoother(smoothing) if smoothing > 0 else None
    max_rate = float(params.get("max_rate", 0.0))
    codec = EmotionArrayCodec(source.store)
    out_bag = options.out_dir / OUTPUT_BAG_NAME
    ledger = MessageLedger()
    frames: list[FrameRecord] = []
    stamps: list[float] = []
    per_readable: list[FrameRecord | None] = []
    spent = {"read": 0.0, "decode": 0.0, "pipeline": 0.0, "write": 0.0}
    last_processed: float | None = None
    read = ReadCheck(source.count(image_conns))
    writer = open_writer(out_bag, options.format_version, options.storage)
    bar = Progress(options.progress_label, read.expected, enabled=options.progress)
    try:
        out_conn = add_topic(writer, options.output_topic, EMOTION_ARRAY_TYPE, source.store)
        t_read = t_loop = time.perf_counter()
        spent["setup"] = t_loop - t_start
        for index, message in enumerate(source.checked_messages(image_conns, read)):
            bar.update()
            t0 = time.perf_counter()
            spent["read"] += t0 - t_read
            try:
                decoded = deserialize_and_decode(source.store, message.raw, message.connection.msgtype,
                                                 int(params["max_image_pixels"]))
            except UnreadableMessage as exc:
                ledger.add_unreadable(exc.reason, index, None, exc.detail)
                t_read = time.perf_counter()
                spent["decode"] += t_read - t0
                continue
            t1 = time.perf_counter()
            spent["decode"] += t1 - t0
            stamp = decoded.stamp
            stamps.append(stamp)
            if max_rate > 0 and last_processed is not None and stamp - last_processed < 1.0 / max_rate:
                ledger.add_dropped(DROP_RATE_LIMITED, index, stamp, f"max_rate {max_rate} Hz")
                per_readable.append(None)
                t_read = time.perf_counter()
                continue
            try:
                result = pipeline.process(decoded.image, stamp, decoded.color)
            except FrameError as exc:
                ledger.add_dropped(exc.reason, index, stamp, str(exc))
                per_readable.append(None)
                t_read = time.perf_counter()
                spent["pipeline"] += t_read - t1
                continue
            except Exception as exc:  # never stop on one frame; the node counts these as "failure" too
                ledger.add_dropped(DROP_FAILURE, index, stamp, f"{type(exc).__name__}: {exc}")
                per_readable.append(None)
                t_read = time.perf_counter()
                spent["pipeline"] += t_read - t1
                continue
            t2 = time.perf_counter()
            spent["pipeline"] += t2 - t1
            last_processed = stamp
            raw_labels = [f.label for f in result.faces]
            if smoother is not None:
                result = smoother(result)
            latency_ms = (t2 - t0) * 1000.0
            msg = codec.build(result, decoded.stamp_sec, decoded.stamp_nanosec, decoded.frame_id, latency_ms)
            writer.write(out_conn, message.timestamp_ns, codec.serialize(msg))
            stage_ms = dict(result.timings.as_dict())
            stage_ms["decode_ms"] = (t1 - t0) * 1000.0
            record = record_from_result(result, decoded.stamp_ns, latency_ms, stage_ms, raw_labels)
            frames.append(record)
            per_readable.append(record)
            ledger.add_processed()
            t_read = time.perf_counter()
            spent["write"] += t_read - t2
        if read.missing > 0:  # the rest of a damaged storage, or messages the metadata counts and it lacks
            ledger.add_unreadable(read.reason, read.read, None, read.error or "not in the storage", read.missing)
    except BaseException:
        bar.close()
        writer.close()
        shutil.rmtree(out_bag, ignore_errors=True)  # a partial output bag would block the rerun
        raise
    bar.close()
    writer.close()
    spent["loop"] = time.perf_counter() - t_loop
    return EvalRun(
        ledger=ledger, frames=frames, frame_stamps=stamps, frame_records=per_readable,
        model_id=str(pipeline.model_id), labels=labels, backend=str(getattr(pipeline, "backend_name", "?")),
        detector=str(getattr(pipeline, "detector_name", "?")), params=params, smoothing=smoothing,
        raw_labels_known=True, label_set=label_set, output_bag=options.out_dir / OUTPUT_BAG_NAME,
        seconds=spent, unknown_params=unknown, extra={"bag_read": read.as_dict()},
    )
