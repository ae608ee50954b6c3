"""Live replay: publish a bag's image topic into a running ROS 2 graph and record what fer_node answers.

What ``ros2 bag play`` + ``ros2 bag record`` would do, for machines without rosbag2: rosbags reads the bag, an rclpy
publisher sends each message's serialized bytes unchanged (``Publisher.publish(bytes)``) at the recorded pace scaled
by ``rate`` (or in lockstep: each frame waits for its answer and is sent again if none comes, since a large image
on a best-effort subscription can be lost on the way), and a raw subscription writes every ``EmotionArray``
the node publishes into ``OUT/emotions`` (rosbag2 format 8 or 9). That bag is then read back with rosbags (so the
CDR of rclpy and rosbags must agree) and scored with the same report as the offline evaluation.

Accounting: each image message is unreadable (classified exactly as offline; messages whose CDR does not even
deserialize are not published, since they would break any subscriber), processed (an EmotionArray with its stamp came
back) or dropped with reason ``no_output`` (the node skipped it: its newest-frame slot, ``max_rate``, a refused frame,
or transport loss).
"""
from __future__ import annotations

import importlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_ros.bag.bag_io import EMOTION_ARRAY_TYPE, BagError, add_topic, open_bag, open_writer
from fer_ros.bag.decode import REASON_CORRUPT, UnreadableMessage, deserialize_and_decode
from fer_ros.bag.evaluate import OUTPUT_BAG_NAME, EvalRun, load_labels
from fer_ros.bag.params import read_node_params
from fer_ros.bag.records import FrameRecord, MessageLedger, record_from_emotion_array
from fer_ros.progress import Progress

DROP_NO_OUTPUT = "no_output"  # published, but no EmotionArray with its stamp came back
DISCOVERY_SETTLE_S = 0.5  # after both ends are matched, DDS needs a moment before the first sample is delivered
RECORDER_DEPTH = 1000  # the recorder's queue: never the place where answers are lost
PUBLISHER_DEPTH = 10  # as ros2 bag play's default
DDS_PROFILE = Path(__file__).with_name("fastdds_replay.xml")  # large shared-memory segment for whole images
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")  # Fast DDS 2.x, 3.x


def use_replay_dds_profile() -> str | None:
    """Point Fast DDS at :data:`DDS_PROFILE` unless the user chose a profile; returns the profile in use.

    Must run before this process creates its first ROS node (Fast DDS reads the file once).
    """
    chosen = next((os.environ[v] for v in PROFILE_VARIABLES if os.environ.get(v)), None)
    if chosen:
        return chosen
    for variable in PROFILE_VARIABLES:
        os.environ[variable] = str(DDS_PROFILE)
    return str(DDS_PROFILE)


@dataclass
class ReplayOptions:
    """The ``fer-ros replay`` arguments."""

    bag: Path
    topic: str
    out_dir: Path
    publish_topic: str | None = None  # default: the bag's topic name
    emotions_topic: str = "/emotions"
    rate: float = 1.0  # 1 = recorded speed, 2 = twice as fast
    lockstep: bool = False  # publish the next frame only when the previous one was answered (or timed out)
    frame_timeout_s: float = 1.0  # lockstep: how long to wait for one answer before sending the frame again
    retries: int = 3  # lockstep: resends of an unanswered frame (a large image on best effort can get lost)
    wait_s: float = 60.0  # how long to wait for the node to subscribe (start-up: imports, model load, discovery)
    linger_s: float = 3.0  # after the last frame: how long to wait for late answers
    labels_file: Path | None = None
    label_topic: str | None = None
    params_file: Path | None = None  # the node's parameters file (recorded in the report)
    format_version: int = 9
    storage: str = "sqlite3"
    progress: bool = True  # a progress line on stderr while frames are published (only when stderr is a terminal)


@dataclass
class _Sent:
    index: int
    stamp_ns: int | None  # None when the header itself is unreadable
    reason: str | None  # unreadable reason, None when readable
    detail: str = ""
    published_ns: int | None = None  # wall time of the (last) publish (None: not published)
    attempts: int = 0  # lockstep resends a frame the node did not answer (lost in transport on its way in)


@dataclass
class _Answers:
    """EmotionArrays received, by image stamp, kept until the replay ends and then written to the bag."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    received_ns: dict[int, int] = field(default_factory=dict)  # image stamp -> receive wall time
    raw: list[tuple[int, bytes]] = field(default_factory=list)  # (receive wall time ns, CDR) in arrival order
    duplicates: int = 0
    undecodable: int = 0
    changed: threading.Condition | None = None


def _message_class(msgtype: str) -> Any:
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


class LiveReplay:
    """One replay of one bag topic (construct, then :meth:`run`)."""

    def __init__(self, options: ReplayOptions) -> None:
        if options.rate <= 0:
            raise BagError(f"rate {options.rate} must be > 0 (1 = recorded speed); use --lockstep to go as fast "
                           f"as the node answers")
        self.options = options
        self.dds_profile: str | None = None  # the Fast DDS profile of this process (None: rclpy was running)

    def run(self) -> EvalRun:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        o = self.options
        if o.labels_file is not None and not Path(o.labels_file).is_file():
            raise BagError(f"label file {o.labels_file} does not exist")
        o.out_dir.mkdir(parents=True, exist_ok=True)
        params, unknown = read_node_params(o.params_file) if o.params_file else ({}, [])
        own_context = not rclpy.ok()
        if own_context:
            self.dds_profile = use_replay_dds_profile()
            rclpy.init()
        node = executor = writer = None
        try:
            with open_bag(o.bag) as source:
                conns = source.image_connections(o.topic)
                msgtypes = {c.msgtype for c in conns}
                if len(msgtypes) != 1:
                    raise BagError(f"topic {o.topic} mixes types {sorted(msgtypes)}; replay publishes one type")
                msgtype = msgtypes.pop()
                node = rclpy.create_node(f"fer_replay_{int(time.time() * 1000) % 1_000_000}")
                reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=PUBLISHER_DEPTH,
                                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
                publisher = node.create_publisher(_message_class(msgtype), o.publish_topic or conns[0].topic,
                                                  reliable)
                writer = open_writer(o.out_dir / OUTPUT_BAG_NAME, o.format_version, o.storage)
                out_conn = add_topic(writer, o.emotions_topic, EMOTION_ARRAY_TYPE, source.store)
                answers = _Answers()
                answers.changed = threading.Condition(answers.lock)
                codec_store = source.store

                def on_answer(raw: bytes) -> None:
                    now = time.time_ns()
                    try:
                        msg = codec_store.deserialize_cdr(raw, EMOTION_ARRAY_TYPE)
                        stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
                    except Exception:  # recorded as is; counted so a CDR mismatch is visible in the report
                        stamp = None
                    with answers.changed:
                        answers.raw.append((now, bytes(raw)))  # written by the main thread (sqlite3 is per thread)
                        if stamp is None:
                            answers.undecodable += 1
                        elif stamp in answers.received_ns:
                            answers.duplicates += 1
                        else:
                            answers.received_ns[stamp] = now
                        answers.changed.notify_all()

                recorder_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=RECORDER_DEPTH,
                                          reliability=ReliabilityPolicy.RELIABLE,
                                          durability=DurabilityPolicy.VOLATILE)
                node.create_subscription(_message_class(EMOTION_ARRAY_TYPE), o.emotions_topic, on_answer,
                                         recorder_qos, raw=True)
                executor = SingleThreadedExecutor()
                executor.add_node(node)
                spinner = threading.Thread(target=executor.spin, name="fer_replay_spin", daemon=True)
                spinner.start()

                t_setup = time.perf_counter()
                self._wait_for_node(node, publisher)
                setup_s = time.perf_counter() - t_setup
                t_loop = time.perf_counter()
                sent = self._publish_all(source, conns, publisher, answers)
                self._linger(sent, answers)
                loop_s = time.perf_counter() - t_loop
                executor.shutdown()
                executor = None
                for received_ns, raw in answers.raw:
                    writer.write(out_conn, received_ns, raw)
                writer.close()
                writer = None
                return self._score(sent, answers, params, unknown, {"setup": setup_s, "loop": loop_s})
        finally:
            if executor is not None:
                executor.shutdown()
            if writer is not None:
                writer.close()
            if node is not None:
                node.destroy_node()
            if own_context and rclpy.ok():
                rclpy.shutdown()

    # --- steps ----------------------------------------------------------------------------------------------------
    def _wait_for_node(self, node: Any, publisher: Any) -> None:
        """Until the node subscribes to the image topic and publishes the emotions topic (or BagError)."""
        o = self.options
        end = time.monotonic() + o.wait_s
        while time.monotonic() < end:
            if publisher.get_subscription_count() > 0 and node.count_publishers(o.emotions_topic) > 0:
                time.sleep(DISCOVERY_SETTLE_S)
                return
            time.sleep(0.05)
        raise BagError(f"after {o.wait_s:.0f} s nobody subscribes to {publisher.topic_name} and publishes "
                       f"{o.emotions_topic} (subscribers: {publisher.get_subscription_count()}, publishers: "
                       f"{node.count_publishers(o.emotions_topic)}): start fer_node with image remapped to "
                       f"{publisher.topic_name} in ROS_DOMAIN_ID the same as here, or pass --start-node")

    def _publish_all(self, source: Any, conns: list, publisher: Any, answers: _Answers) -> list[_Sent]:
        o = self.options
        sent: list[_Sent] = []
        first_bag_ns = None
        t0 = time.monotonic()
        with Progress("replay", source.count(conns), enabled=o.progress) as bar:
            for index, message in enumerate(source.messages(conns)):
                bar.update()
                try:
                    decoded = deserialize_and_decode(source.store, message.raw, message.connection.msgtype)
                    item = _Sent(index, decoded.stamp_ns, None)
                except UnreadableMessage as exc:
                    item = _Sent(index, _stamp_or_none(source, message), exc.reason, exc.detail)
                sent.append(item)
                if item.reason == REASON_CORRUPT and item.stamp_ns is None:
                    continue  # bytes that do not deserialize would break every subscriber: counted, not published
                if not o.lockstep:
                    first_bag_ns = message.timestamp_ns if first_bag_ns is None else first_bag_ns
                    delay = t0 + (message.timestamp_ns - first_bag_ns) * 1e-9 / o.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                for attempt in range(1 + (o.retries if o.lockstep and item.reason is None else 0)):
                    item.published_ns = time.time_ns()
                    publisher.publish(message.raw)
                    item.attempts = attempt + 1
                    if not o.lockstep or item.reason is not None:
                        break
                    with answers.changed:
                        if answers.changed.wait_for(lambda: item.stamp_ns in answers.received_ns, o.frame_timeout_s):
                            break
        return sent

    def _linger(self, sent: list[_Sent], answers: _Answers) -> None:
        """Wait for late answers: until every readable frame is answered or nothing came for linger_s."""
        expected = {s.stamp_ns for s in sent if s.reason is None and s.published_ns is not None}
        with answers.changed:
            while not expected <= set(answers.received_ns):
                before = len(answers.received_ns)
                answers.changed.wait(self.options.linger_s)
                if len(answers.received_ns) == before:
                    return

    def _score(self, sent: list[_Sent], answers: _Answers, params: dict, unknown: list[str],
               seconds: dict[str, float]) -> EvalRun:
        """Read the recorded answers back with rosbags and account for every image message."""
        o = self.options
        with open_bag(o.out_dir / OUTPUT_BAG_NAME) as recorded:
            records: dict[int, FrameRecord] = {}
            model_id, labels = "?", ()
            for message in recorded.messages(recorded.connections(o.emotions_topic)):
                msg = recorded.deserialize(message)
                record = record_from_emotion_array(msg)
                model_id, labels = str(msg.model_id), tuple(str(x) for x in msg.labels)
                records.setdefault(record.stamp_ns, record)
        with open_bag(o.bag) as source:  # label topics need the node's label order, known only now
            label_set = load_labels(_as_eval_options(o), source, labels)
        published = {s.stamp_ns: s.published_ns for s in sent if s.published_ns is not None}
        ledger = MessageLedger()
        frames: list[FrameRecord] = []
        stamps: list[float] = []
        per_readable: list[FrameRecord | None] = []
        answered_unreadable = 0
        for s in sent:
            if s.reason is not None:
                ledger.add_unreadable(s.reason, s.index, None if s.stamp_ns is None else s.stamp_ns * 1e-9, s.detail)
                answered_unreadable += records.pop(s.stamp_ns, None) is not None
                continue
            stamps.append(s.stamp_ns * 1e-9)
            record = records.pop(s.stamp_ns, None)
            if record is None:
                ledger.add_dropped(DROP_NO_OUTPUT, s.index, s.stamp_ns * 1e-9, "no EmotionArray with this stamp")
                per_readable.append(None)
                continue
            record.stage_ms["round_trip_ms"] = (answers.received_ns[s.stamp_ns] - published[s.stamp_ns]) * 1e-6
            ledger.add_processed()
            frames.append(record)
            per_readable.append(record)
        return EvalRun(
            ledger=ledger, frames=frames, frame_stamps=stamps, frame_records=per_readable, model_id=model_id,
            labels=labels, backend="fer_node (live)", detector="fer_node (live)", params=params,
            smoothing=float(params.get("smoothing", 0.0)), raw_labels_known=False, label_set=label_set,
            output_bag=o.out_dir / OUTPUT_BAG_NAME, seconds=seconds, unknown_params=unknown,
            extra={"answers_for_unreadable_messages": answered_unreadable,
                   "answers_matching_no_message": len(records), "duplicate_answers": answers.duplicates,
                   "undecodable_answers": answers.undecodable, "lockstep": o.lockstep, "rate": o.rate,
                   "resent_messages": sum(max(0, s.attempts - 1) for s in sent),
                   "dds_profile": self.dds_profile})


def _stamp_or_none(source: Any, message: Any) -> int | None:
    try:
        stamp = source.deserialize(message).header.stamp
        return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
    except Exception:  # the CDR itself is broken
        return None


def _as_eval_options(o: ReplayOptions) -> Any:
    from fer_ros.bag.evaluate import EvalOptions

    return EvalOptions(bag=o.bag, topic=o.topic, out_dir=o.out_dir, labels_file=o.labels_file,
                       label_topic=o.label_topic)
