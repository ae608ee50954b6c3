"""Frame sources for the annotation tool: a rosbag2 image topic or a video file, read by frame index.

A person stepping through a recording goes forward, back, jumps and comes back again, so a source gives random access
by index (``read(i)``) with a small cache of decoded frames. Every frame has a stamp in seconds: the image header
stamp for bags (sensor time, what the label files of docs/formats.md use), ``index / fps`` for videos.

A frame that cannot be decoded is returned as a ``Frame`` with ``image is None`` and the reason in ``error``, so the
window can show the problem and the person can step on; unreadable frames are counted in ``unreadable``. A source
that cannot be opened at all (missing path, a topic that is not an image) raises ``SourceError`` saying what to do.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_ros.errors import ConfigError

BAG_SUFFIXES = (".db3", ".mcap")  # a single rosbag2 storage file may be given instead of the bag directory
CACHE_FRAMES = 48  # decoded frames kept: a back-and-forth around one expression (~1.5 s at 30 Hz) never re-decodes
DEFAULT_VIDEO_FPS = 30.0  # used when a video file does not state its frame rate (reported as a problem)


class SourceError(ConfigError):
    """A recording cannot be opened as frames: missing, unreadable, no image topic, or the topic is not an image."""


@dataclass
class Frame:
    """One frame of a source: BGR uint8 image (None when unreadable, with the reason in ``error``)."""

    index: int
    stamp: float  # seconds
    image: np.ndarray | None
    error: str = ""


class FrameSource(ABC):
    """Random access to the frames of one recording. Subclasses fill ``stamps`` and implement ``_decode``."""

    def __init__(self, path: Path, description: str) -> None:
        self.path = path
        self.description = description  # what the window's title and reports show
        self.stamps: np.ndarray = np.zeros(0, dtype=np.float64)  # seconds, one per frame
        self.problems: list[str] = []  # found while opening (e.g. messages whose stamp could not be read)
        self.unreadable: set[int] = set()  # indices whose decoding failed so far
        self._cache: OrderedDict[int, Frame] = OrderedDict()

    def __len__(self) -> int:
        return int(self.stamps.shape[0])

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def frame_period(self) -> float:
        """Median time between frames in seconds (1/30 s when the source has fewer than two frames)."""
        if len(self) < 2:
            return 1.0 / DEFAULT_VIDEO_FPS
        steps = np.diff(self.stamps)
        steps = steps[steps > 0]
        return float(np.median(steps)) if steps.size else 1.0 / DEFAULT_VIDEO_FPS

    def index_of_stamp(self, stamp: float, tolerance: float | None = None) -> int | None:
        """Index of the frame nearest ``stamp``, or None if none lies within ``tolerance`` (default half a period)."""
        if len(self) == 0 or not math.isfinite(stamp):
            return None
        tol = 0.5 * self.frame_period if tolerance is None else tolerance
        best = int(np.argmin(np.abs(self.stamps - stamp)))
        return best if abs(float(self.stamps[best]) - stamp) <= tol + 1e-9 else None

    def read(self, index: int) -> Frame:
        """The frame at ``index`` (cached); an undecodable frame comes back with ``image=None`` and ``error``."""
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} outside 0..{len(self) - 1} of {self.description}")
        frame = self._cache.get(index)
        if frame is not None:
            self._cache.move_to_end(index)
            return frame
        stamp = float(self.stamps[index])
        try:
            image = self._decode(index)
            frame = Frame(index, stamp, _as_bgr(image))
        except Exception as exc:  # any decoder failure is this frame's problem, shown and counted, never a crash
            self.unreadable.add(index)
            frame = Frame(index, stamp, None, f"{type(exc).__name__}: {exc}".strip())
        self._cache[index] = frame
        if len(self._cache) > CACHE_FRAMES:
            self._cache.popitem(last=False)
        return frame

    @abstractmethod
    def _decode(self, index: int) -> np.ndarray:
        """Decode frame ``index`` to a BGR (or gray) uint8 image; raise on failure."""

    def close(self) -> None:
        self._cache.clear()


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 BGR from what a decoder gave (gray, BGRA, 16-bit depth scaled to 8 bits)."""
    if image is None or image.size == 0:
        raise ValueError("decoder returned an empty image")
    if image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image)


class BagFrameSource(FrameSource):
    """One image topic (Image or CompressedImage) of a rosbag2 recording, sqlite3 or MCAP storage.

    Opening, topic checks, type store and decoding are the bag tools' (``fer_ros.bag``), so the annotator sees
    frames exactly as ``eval-bag`` does. Opening scans the topic once for the header stamps; ``read(i)`` fetches
    message i by its receive time with a second rosbags reader, so only that message is read from storage.
    """

    def __init__(self, path: str | Path, topic: str | None = None) -> None:
        from rosbags.rosbag2 import Reader

        from fer_ros.bag.bag_io import IMAGE_TYPES, open_bag

        self._bag = open_bag(path)
        try:
            if topic is None:
                topic = _only_image_topic(self._bag, IMAGE_TYPES)
            self._connections = self._bag.image_connections(topic)
            self._random_reader = Reader(self._bag.path)
            self._random_reader.open()
        except Exception:
            self._bag.close()
            raise
        super().__init__(self._bag.path, f"{self._bag.path.name}:{self._connections[0].topic}")
        self.topic = self._connections[0].topic
        self.log_times = self._scan()

    def _scan(self) -> np.ndarray:
        """Read every message of the topic once: header stamps (bag time where the header is unreadable)."""
        log_times: list[int] = []
        stamps: list[float] = []
        self._types: list[str] = []
        for message in self._bag.messages(self._connections):
            log_times.append(message.timestamp_ns)
            self._types.append(message.connection.msgtype)
            try:
                stamp = self._bag.deserialize(message).header.stamp
                stamps.append(int(stamp.sec) + int(stamp.nanosec) * 1e-9)
            except Exception as exc:  # damaged CDR: the frame stays (shown as unreadable), placed at its bag time
                stamps.append(message.timestamp_ns * 1e-9)
                self.problems.append(f"message {len(stamps) - 1}: header unreadable ({type(exc).__name__}); "
                                     f"bag time used as its stamp")
        self.stamps = np.asarray(stamps, dtype=np.float64)
        if len(stamps) > 1 and np.any(np.diff(self.stamps) < 0):
            self.problems.append("header stamps go backwards in places: frames are shown in recording order")
        if not stamps:
            self.problems.append(f"topic {self.topic} has no messages")
        return np.asarray(log_times, dtype=np.int64)

    @property
    def bag(self) -> Any:
        """The open ``fer_ros.bag.bag_io.BagSource`` (headless trimming copies every topic through it)."""
        return self._bag

    def raw_message(self, index: int) -> bytes:
        """The serialized message of frame ``index`` (read by its receive time)."""
        log_time = int(self.log_times[index])
        occurrence = int(np.count_nonzero(self.log_times[:index] == log_time))
        found = self._random_reader.messages(connections=self._connections, start=log_time, stop=log_time + 1)
        for n, (_, _, raw) in enumerate(found):
            if n == occurrence:
                return bytes(raw)
        raise LookupError(f"message {index} not found again at bag time {log_time} ns")

    def _decode(self, index: int) -> np.ndarray:
        from fer_ros.bag.decode import deserialize_and_decode

        decoded = deserialize_and_decode(self._bag.store, self.raw_message(index), self._types[index])
        if decoded.color == "rgb":
            return cv2.cvtColor(decoded.image, cv2.COLOR_RGB2BGR)
        return decoded.image

    def close(self) -> None:
        super().close()
        self._random_reader.close()
        self._bag.close()


def _only_image_topic(bag: Any, image_types: Sequence[str]) -> str:
    """The bag's only image topic; SourceError listing the topics when there is none or several."""
    images = [t.name for t in bag.topics() if t.msgtype in image_types]
    if len(images) == 1:
        return images[0]
    if not images:
        raise SourceError(f"no image topic ({' or '.join(image_types)}) to annotate. {bag.describe()}")
    raise SourceError(f"several image topics, choose one with --topic: {', '.join(images)}")


class VideoFrameSource(FrameSource):
    """A video file read with OpenCV; stamps are ``index / fps`` seconds from the start of the file."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise SourceError(f"{path} does not exist: give a rosbag2 directory or a video file")
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise SourceError(f"OpenCV cannot open {path} as a video (unknown container or codec)")
        super().__init__(path, path.name)
        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(fps) or fps <= 0:
            self.problems.append(f"no frame rate in the file: {DEFAULT_VIDEO_FPS:g} fps assumed")
            fps = DEFAULT_VIDEO_FPS
        self.fps = fps
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count <= 0:  # some containers do not say: count by grabbing every frame once
            while self._capture.grab():
                count += 1
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self.stamps = np.arange(count, dtype=np.float64) / fps
        self._next = 0  # index the capture will return on the next read()

    def _decode(self, index: int) -> np.ndarray:
        if index != self._next:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = self._capture.read()
        self._next = index + 1 if ok else -1
        if not ok or image is None:
            raise ValueError(f"OpenCV could not decode frame {index} of {self.path.name}")
        return image

    def close(self) -> None:
        super().close()
        self._capture.release()


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")  # what cv2.imread reads


class ImageFolderSource(FrameSource):
    """The images of a folder (not its subfolders) in name order, as frames ``fps`` apart (for ``fer-ros make-bag``)."""

    def __init__(self, path: str | Path, fps: float = DEFAULT_VIDEO_FPS) -> None:
        path = Path(path)
        if not path.is_dir():
            raise SourceError(f"{path} is not a folder of images")
        self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
        super().__init__(path, path.name)
        self.fps = float(fps)
        self.stamps = np.arange(len(self.files), dtype=np.float64) / self.fps

    def _decode(self, index: int) -> np.ndarray:
        image = cv2.imread(str(self.files[index]), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"OpenCV cannot read {self.files[index].name}")
        return image


def open_source(path: str | Path, topic: str | None = None) -> FrameSource:
    """A bag source for a rosbag2 directory (or its .db3/.mcap file), a video source for any other file."""
    path = Path(path)
    if path.is_dir() or path.suffix in BAG_SUFFIXES:
        return BagFrameSource(path, topic)
    if topic is not None:
        raise SourceError(f"--topic {topic} given but {path} is not a rosbag2 directory")
    return VideoFrameSource(path)
