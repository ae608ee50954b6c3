"""Open rosbag2 recordings and write new ones with `rosbags` (pure Python; rosbag2 itself is not needed).

Reading: a rosbag2 directory (``metadata.yaml`` + sqlite3 ``.db3`` or ``.mcap`` files) or a single ``.db3``/``.mcap``
file. Every problem that makes a bag unusable (not a bag, topic missing, topic of a type that is not an image) raises
:class:`BagError` with a listing of what the bag does contain, so the user can fix the command line at once.

Writing: rosbag2 format 8 (what Humble's ``ros2 bag play`` reads) or 9 (Jazzy and newer), sqlite3 or MCAP storage,
always with ``offered_qos_profiles`` so playback does not have to guess the QoS.

Types: the ROS 2 Jazzy type store of rosbags, plus this package's own ``msg/*.msg`` (``fer_ros/msg/Emotion`` and
``fer_ros/msg/EmotionArray``) parsed with ``get_types_from_msg``; types a bag defines itself (a custom label topic) are
registered from the bag's own definitions.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

from rosbags.interfaces import (
    Connection,
    MessageDefinitionFormat,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.base import TypesysError

from fer_ros.errors import ConfigError, FerRosError

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)
EMOTION_ARRAY_TYPE = "fer_ros/msg/EmotionArray"
PACKAGE_MSG_NAMES = ("Emotion", "EmotionArray")  # msg/*.msg of this package, registered in every type store
FORMAT_VERSIONS = (8, 9)  # 8: Humble's ros2 bag play reads only this; 9: Jazzy and newer
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
MAX_LISTED_ENTRIES = 20  # directory entries shown when a path is not a bag (enough to recognise it, not a flood)

# QoS the node's `emotions` publisher offers (rclpy default: reliable, keep last 10, volatile); recorded in the
# metadata so `ros2 bag play` offers the same.
_UNSPECIFIED = QosTime(sec=0, nsec=0)
EMOTIONS_QOS = Qos(
    history=QosHistory.KEEP_LAST,
    depth=10,
    reliability=QosReliability.RELIABLE,
    durability=QosDurability.VOLATILE,
    deadline=_UNSPECIFIED,
    lifespan=_UNSPECIFIED,
    liveliness=QosLiveliness.AUTOMATIC,
    liveliness_lease_duration=_UNSPECIFIED,
    avoid_ros_namespace_conventions=False,
)


class BagError(FerRosError):
    """A bag cannot be used as asked: not a bag, missing topic, wrong type. The message lists what it contains."""


REASON_BAG_UNREADABLE = "bag_unreadable"  # the storage is damaged: no message after this point could be read
REASON_MISSING = "missing_from_storage"  # the storage ended with fewer messages than its metadata counts


@dataclass
class ReadCheck:
    """Messages read from a bag's storage against the count its metadata records for the same topic."""

    expected: int
    read: int = 0
    error: str | None = None  # why reading stopped early (apsw.CorruptError, rosbags ReaderError...)

    @property
    def missing(self) -> int:
        """Messages the metadata counts that were not read (negative: more read than counted)."""
        return self.expected - self.read

    @property
    def complete(self) -> bool:
        return self.error is None and self.missing == 0

    @property
    def reason(self) -> str:
        return REASON_BAG_UNREADABLE if self.error else REASON_MISSING

    def as_dict(self) -> dict[str, Any]:
        return {"expected": self.expected, "read": self.read, "missing": self.missing, "error": self.error,
                "complete": self.complete}


@dataclass(frozen=True)
class TopicSummary:
    """One topic of a bag: its name, message type and number of messages."""

    name: str
    msgtype: str
    count: int


@dataclass(frozen=True)
class BagMessage:
    """One stored message: its connection, bag receive time (ns since epoch) and CDR bytes."""

    connection: Connection
    timestamp_ns: int
    raw: bytes


def find_msg_dir() -> Path:
    """Folder holding this package's ``Emotion.msg``/``EmotionArray.msg``: source tree or any ament prefix."""
    candidates = []
    if os.environ.get("FER_ROS_MSG_DIR"):
        candidates.append(Path(os.environ["FER_ROS_MSG_DIR"]))
    candidates.append(Path(__file__).resolve().parents[2] / "msg")  # source tree: <repo>/fer_ros/bag -> <repo>/msg
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / "fer_ros" / "msg")
    for folder in candidates:
        if all((folder / f"{name}.msg").is_file() for name in PACKAGE_MSG_NAMES):
            return folder
    raise ConfigError("cannot find fer_ros's msg/Emotion.msg and msg/EmotionArray.msg; looked in "
                      + ", ".join(str(c) for c in candidates)
                      + ". Source the workspace (env.sh / install/setup.sh) or set FER_ROS_MSG_DIR.")


@lru_cache(maxsize=1)
def _package_types() -> dict[str, Any]:
    folder = find_msg_dir()
    types: dict[str, Any] = {}
    for name in PACKAGE_MSG_NAMES:
        types.update(get_types_from_msg((folder / f"{name}.msg").read_text(), f"fer_ros/msg/{name}"))
    return types


def make_typestore() -> Any:
    """A fresh rosbags type store: ROS 2 Jazzy's standard types plus fer_ros/msg/Emotion and EmotionArray."""
    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(_package_types())
    return store


def register_bag_types(store: Any, connections: Sequence[Connection]) -> list[str]:
    """Register, from the bag's own definitions, the types of ``connections`` the store lacks; returns those left
    unknown (no definition stored in the bag and not a standard type)."""
    unknown = []
    for conn in connections:
        if conn.msgtype in store.types:
            continue
        try:
            if conn.msgdef.format == MessageDefinitionFormat.MSG and conn.msgdef.data:
                store.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
            elif conn.msgdef.format == MessageDefinitionFormat.IDL and conn.msgdef.data:
                sep = "=" * 80 + "\n"
                blocks = conn.msgdef.data.split(sep)[1:] if conn.msgdef.data.startswith(sep) else [conn.msgdef.data]
                types: dict[str, Any] = {}
                for block in blocks:
                    types.update(get_types_from_idl(block.split("\n", 1)[1] if block.startswith("IDL: ") else block))
                store.register(types)
        except (TypesysError, ValueError, IndexError):
            pass
        if conn.msgtype not in store.types:
            unknown.append(conn.msgtype)
    return unknown


def _describe_path(path: Path) -> str:
    if not path.exists():
        return f"{path} does not exist"
    if path.is_file():
        return f"{path} is a file of {path.stat().st_size} bytes (a bag is a folder with metadata.yaml, " \
               f"or a .db3/.mcap file)"
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    storage = sorted(p for p in path.iterdir() if p.suffix in (".db3", ".mcap"))
    if storage and not (path / "metadata.yaml").is_file():
        return (f"{path} has no metadata.yaml, but a storage file: pass it directly, e.g. fer-ros eval-bag "
                f"{storage[0]} (rosbags reads a .db3 or .mcap file without metadata)")
    shown = ", ".join(entries[:MAX_LISTED_ENTRIES]) + (" ..." if len(entries) > MAX_LISTED_ENTRIES else "")
    return f"{path} contains: {shown or 'nothing'} (a rosbag2 folder has metadata.yaml and .db3 or .mcap files)"


class BagSource:
    """An open input bag. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path | str, store: Any | None = None) -> None:
        self.path = Path(path)
        self.store = store if store is not None else make_typestore()
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except (ReaderError, FileNotFoundError, OSError, KeyError, ValueError) as exc:
            raise BagError(f"cannot open {self.path} as a rosbag2 recording ({exc}); "
                           f"{_describe_path(self.path)}") from exc
        except Exception as exc:  # the storage plugins raise sqlite3/mcap errors of their own on damaged files
            raise BagError(f"cannot read {self.path} as a rosbag2 recording ({type(exc).__name__}: {exc}); "
                           f"{_describe_path(self.path)}") from exc

    def __enter__(self) -> BagSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._reader.is_open:
            self._reader.close()

    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    def topics(self) -> list[TopicSummary]:
        """Every topic of the bag, sorted by name."""
        return [TopicSummary(name, info.msgtype or "(several types)", int(info.msgcount))
                for name, info in sorted(self._reader.topics.items())]

    def describe(self) -> str:
        """One line per topic, for error messages and reports."""
        lines = [f"  {t.name}  [{t.msgtype}]  {t.count} messages" for t in self.topics()]
        return f"{self.path} has {len(lines)} topic(s):\n" + ("\n".join(lines) if lines else "  (none)")

    def connections(self, topic: str, allowed_types: Sequence[str] | None = None) -> list[Connection]:
        """The connections of ``topic``; BagError (listing the topics) if it is missing or of another type.

        A leading slash is optional: ``camera/image`` finds ``/camera/image``.
        """
        wanted = {topic, "/" + topic.lstrip("/")}
        conns = [c for c in self._reader.connections if c.topic in wanted]
        if not conns:
            raise BagError(f"topic '{topic}' is not in the bag. {self.describe()}")
        if allowed_types is not None:
            wrong = sorted({c.msgtype for c in conns if c.msgtype not in allowed_types})
            if wrong:
                raise BagError(f"topic '{topic}' has type {', '.join(wrong)}, expected one of "
                               f"{', '.join(allowed_types)}. {self.describe()}")
        unknown = register_bag_types(self.store, conns)
        if unknown:
            raise BagError(f"topic '{topic}' has type {', '.join(sorted(set(unknown)))}, which is neither a standard "
                           f"ROS 2 type nor defined in the bag, so it cannot be decoded. {self.describe()}")
        return conns

    def image_connections(self, topic: str) -> list[Connection]:
        """Connections of an image topic (sensor_msgs/msg/Image or CompressedImage)."""
        return self.connections(topic, IMAGE_TYPES)

    def count(self, connections: Sequence[Connection]) -> int:
        """Number of messages the metadata records for these connections."""
        return sum(int(c.msgcount) for c in connections)

    def messages(self, connections: Sequence[Connection]) -> Iterator[BagMessage]:
        """The messages of ``connections`` in bag time order (never an empty filter: that would mean all)."""
        if not connections:
            return
        for conn, timestamp, raw in self._reader.messages(connections=connections):
            yield BagMessage(conn, int(timestamp), bytes(raw))

    def checked_messages(self, connections: Sequence[Connection], check: ReadCheck) -> Iterator[BagMessage]:
        """:meth:`messages`, counted into ``check``; a storage error (a corrupt sqlite page, a damaged MCAP record)
        ends the iteration and is recorded in ``check.error`` instead of raising, so what was read can be scored."""
        messages = self.messages(connections)
        while True:
            try:
                message = next(messages)
            except StopIteration:
                return
            except Exception as exc:  # apsw.CorruptError, rosbags ReaderError, struct.error, ... from the storage
                module = type(exc).__module__.split(".")[0]
                check.error = f"{module}.{type(exc).__name__}: {exc} (after message {check.read})"
                return
            check.read += 1
            yield message

    def deserialize(self, message: BagMessage) -> Any:
        """CDR bytes -> rosbags message object (raises on corrupt data; callers classify that)."""
        return self.store.deserialize_cdr(message.raw, message.connection.msgtype)

    def offered_qos(self, connections: Sequence[Connection]) -> list[Qos]:
        """The QoS profiles the recording publishers offered (empty when the bag did not record them)."""
        profiles: list[Qos] = []
        for conn in connections:
            profiles.extend(getattr(conn.ext, "offered_qos_profiles", []) or [])
        return profiles


def open_bag(path: Path | str, store: Any | None = None) -> BagSource:
    """Open a rosbag2 folder or a .db3/.mcap file for reading."""
    return BagSource(path, store)


def check_format(version: int, storage: str) -> None:
    """ConfigError naming the accepted values when an output format is not one rosbags can write."""
    if int(version) not in FORMAT_VERSIONS:
        raise ConfigError(f"bag format version {version} is not supported: use 8 (Humble's ros2 bag play) or 9")
    if storage not in STORAGES:
        raise ConfigError(f"bag storage '{storage}' is not supported: use one of {', '.join(STORAGES)}")


def add_output_format_arguments(parser: Any, what: str) -> None:
    """``--format-version`` and ``--storage`` of a command that writes a bag (``what`` names that bag)."""
    parser.add_argument("--format-version", type=int, default=9, choices=FORMAT_VERSIONS,
                        help=f"rosbag2 format of {what}: 8 for Humble's ros2 bag play, 9 for Jazzy+")
    parser.add_argument("--storage", default="sqlite3", choices=sorted(STORAGES), help=f"storage of {what}")


def open_writer(path: Path | str, version: int = 9, storage: str = "sqlite3") -> Writer:
    """Create and open a new bag folder; BagError if ``path`` exists (rosbags never overwrites)."""
    check_format(version, storage)
    path = Path(path)
    if path.exists():
        raise BagError(f"output bag {path} exists already; choose another output folder or delete it")
    writer = Writer(path, version=int(version), storage_plugin=STORAGES[storage])  # type: ignore[arg-type]
    try:
        writer.open()
    except WriterError as exc:
        raise BagError(f"cannot create output bag {path}: {exc}") from exc
    return writer


def add_topic(writer: Writer, topic: str, msgtype: str, store: Any,
              qos: Sequence[Qos] = (EMOTIONS_QOS,)) -> Connection:
    """Register a topic in a bag being written, with its type definition, RIHS01 hash and offered QoS."""
    return writer.add_connection(topic, msgtype, typestore=store, offered_qos_profiles=list(qos))
