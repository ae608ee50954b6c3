"""Face tracking: a stable ``track_id`` per face across frames, so per-face state (smoothing, FAN buffers) and the
``face_id`` in messages follow the person, not the detection's position in a list.

Each track remembers its last box and a velocity (pixels per second, from the frame stamps, smoothed). Every update
predicts where each track's face should be now, scores every (track, detection) pair by how far the detection is from
the prediction (centre distance in face widths, plus one minus the box overlap, plus the log of the size ratio), keeps
only pairs within the gates (``iou_threshold`` or ``max_center_distance``), and solves the assignment optimally
(Hungarian, ``scipy.optimize.linear_sum_assignment``). Using the predicted position is what keeps two people who cross
from swapping ids: at the crossing their boxes overlap, but they move in opposite directions. When an assignment was
nearly a tie (the runner-up track was within ``ambiguity_margin`` of the chosen one) the pair of ids is listed in
``FaceTracker.ambiguous`` and counted, so a possible swap is never silent.

A new track is tentative until it has ``min_hits`` hits (a tentative track that misses a frame is dropped as a false
detection); a confirmed track survives up to ``max_misses`` frames without a detection, coasting on its velocity, and
is dropped on the next miss. Ids are 1, 2, 3, ... in order of creation (``reset()`` starts again at 1), or start at a
random offset with ``deterministic_ids=False`` so ids from a restarted node do not collide with earlier ones.
``FaceTracker.removed`` lists the ids dropped by the last update: temporal buffers die with their track.

Stamps that go backwards are told apart by how far: a small step back (up to ``max_stamp_step_back`` seconds: clock
jitter, a second publisher on the topic a few frames behind) is a late frame: it is associated like any other (its
predictions do not move backwards, velocities are not updated from it) and counted in ``TrackerStats.late_frames``,
so ids and per-track state survive; a larger jump back (a bag played again, a clock reset) resets the tracker and is
counted in ``TrackerStats.time_resets``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from fer_ros.datatypes import Detection, TrackedFace
from fer_ros.errors import ConfigError
from fer_ros.faces.detector import box_iou

NOT_ALLOWED = 1e6  # cost of a pair outside the gates: never chosen over "no match"
MAX_RANDOM_ID_BASE = 2**30  # random id offsets stay well inside int32 (message field)
MAX_COAST_SECONDS = 1.0  # a missed track's predicted motion stops after this long: velocity guesses decay into noise


@dataclass
class TrackerConfig:
    """Association gates and track life rules; the first four are the node's parameters."""

    min_hits: int = 1  # detections before a track is reported (confirmed)
    max_misses: int = 5  # frames a confirmed track may go undetected before it is dropped
    iou_threshold: float = 0.2  # a pair overlapping at least this much is allowed ...
    max_center_distance: float = 1.0  # ... or one whose centres are at most this many face widths apart
    deterministic_ids: bool = True  # ids 1, 2, 3...; False: start at a random offset
    velocity_smoothing: float = 0.6  # weight of the newest velocity measurement (1 = no smoothing)
    ambiguity_margin: float = 0.15  # cost difference under which an assignment counts as a near-tie
    max_stamp_step_back: float = 1.0  # seconds: an earlier stamp within this is a late frame, beyond it a reset

    def validate(self) -> TrackerConfig:
        """Raise ``ConfigError`` naming the bad field; return self for chaining."""
        if self.min_hits < 1:
            raise ConfigError(f"tracker min_hits {self.min_hits} must be >= 1")
        if self.max_misses < 0:
            raise ConfigError(f"tracker max_misses {self.max_misses} must be >= 0")
        if not 0.0 <= self.iou_threshold <= 1.0:
            raise ConfigError(f"tracker iou_threshold {self.iou_threshold} must be within 0..1")
        if self.max_center_distance < 0:
            raise ConfigError(f"tracker max_center_distance {self.max_center_distance} must be >= 0 (face widths)")
        if not 0.0 < self.velocity_smoothing <= 1.0:
            raise ConfigError(f"tracker velocity_smoothing {self.velocity_smoothing} must be within (0, 1]")
        if self.ambiguity_margin < 0:
            raise ConfigError(f"tracker ambiguity_margin {self.ambiguity_margin} must be >= 0")
        return self


@dataclass
class TrackerStats:
    """Running counts for diagnostics."""

    updates: int = 0
    created: int = 0
    removed: int = 0
    ambiguous: int = 0  # near-tie assignments (possible id swaps), see FaceTracker.ambiguous
    time_resets: int = 0  # stamps that jumped back by more than max_stamp_step_back (tracks reset)
    late_frames: int = 0  # stamps a little earlier than the newest one seen (processed, tracks kept)


@dataclass
class _Track:
    track_id: int
    box: np.ndarray  # last observed (4,) float64
    stamp: float  # when it was last observed
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # pixels / second of the box centre
    hits: int = 1
    misses: int = 0
    confirmed: bool = False

    def predicted(self, stamp: float) -> np.ndarray:
        dt = min(max(stamp - self.stamp, 0.0), MAX_COAST_SECONDS)
        shift = self.velocity * dt
        return self.box + np.array([shift[0], shift[1], shift[0], shift[1]])


def _centers(boxes: np.ndarray) -> np.ndarray:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


class FaceTracker:
    """Assigns stable ids to detections frame after frame; see the module docstring for the rules."""

    def __init__(self, cfg: TrackerConfig | None = None):
        self.cfg = (cfg or TrackerConfig()).validate()
        self.stats = TrackerStats()
        self.removed: list[int] = []
        self.ambiguous: list[tuple[int, int]] = []  # (chosen id, runner-up id) per near-tie in the last update
        self._tracks: list[_Track] = []
        self._last_stamp: float | None = None
        self._next_id = self._first_id()

    def _first_id(self) -> int:
        if self.cfg.deterministic_ids:
            return 1
        return random.SystemRandom().randint(1, MAX_RANDOM_ID_BASE)

    @property
    def track_ids(self) -> list[int]:
        """Ids of the live tracks (confirmed or tentative), oldest first."""
        return [t.track_id for t in self._tracks]

    def reset(self) -> None:
        """Forget every track (their ids go to ``removed``) and restart ids."""
        self.removed = [t.track_id for t in self._tracks]
        self.stats.removed += len(self.removed)
        self.ambiguous = []
        self._tracks = []
        self._last_stamp = None
        self._next_id = self._first_id()

    def _jumps_back(self, stamp: float) -> bool:
        """The stamp is earlier than the newest one by more than max_stamp_step_back: a reset, not a late frame."""
        return self._last_stamp is not None and stamp < self._last_stamp - self.cfg.max_stamp_step_back

    def predictions(self, stamp: float) -> tuple[list[int], np.ndarray]:
        """Ids and predicted boxes (N, 4) at ``stamp`` of every live track: where to look for each face next."""
        if not self._tracks:
            return [], np.zeros((0, 4), np.float32)
        if self._jumps_back(stamp):
            return [], np.zeros((0, 4), np.float32)  # this frame resets the tracker
        return ([t.track_id for t in self._tracks],
                np.stack([t.predicted(stamp) for t in self._tracks]).astype(np.float32))

    def _costs(self, detections: Sequence[Detection], stamp: float) -> np.ndarray:
        """(tracks, detections) association cost, NOT_ALLOWED outside the gates."""
        pred = np.stack([t.predicted(stamp) for t in self._tracks])
        det = np.stack([np.asarray(d.box, dtype=np.float64) for d in detections])
        iou = box_iou(pred, det).astype(np.float64)
        pw = np.maximum(pred[:, 2] - pred[:, 0], 1.0)[:, None]
        dw = np.maximum(det[:, 2] - det[:, 0], 1.0)[None, :]
        dist = np.linalg.norm(_centers(pred)[:, None, :] - _centers(det)[None, :, :], axis=2) / ((pw + dw) / 2)
        cost = dist + (1.0 - iou) + np.abs(np.log(dw / pw))
        allowed = (iou >= self.cfg.iou_threshold) | (dist <= self.cfg.max_center_distance)
        return np.where(allowed, cost, NOT_ALLOWED)

    def _note_ambiguities(self, cost: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
        self.ambiguous = []
        for r, c in zip(rows, cols):
            others = np.delete(cost[:, c], r)
            if not len(others):
                continue
            k = int(np.argmin(others))
            if others[k] < NOT_ALLOWED and others[k] - cost[r, c] < self.cfg.ambiguity_margin:
                runner = k if k < r else k + 1
                self.ambiguous.append((self._tracks[r].track_id, self._tracks[runner].track_id))
        self.stats.ambiguous += len(self.ambiguous)

    def update(self, detections: Sequence[Detection], stamp: float) -> list[TrackedFace]:
        """Associate one frame's detections; returns one ``TrackedFace`` per detection, in the detections' order.

        Report only those with ``confirmed``; ``removed`` then lists the ids this update dropped.
        """
        stamp = float(stamp)
        self.stats.updates += 1
        dropped: list[int] = []
        if self._jumps_back(stamp):
            self.stats.time_resets += 1
            self.reset()
            dropped = list(self.removed)
        if self._last_stamp is not None and stamp < self._last_stamp:
            self.stats.late_frames += 1  # a little behind the newest frame: processed, predictions stay put
        else:
            self._last_stamp = stamp
        matches: dict[int, int] = {}  # detection index -> track index
        self.ambiguous = []
        if self._tracks and detections:
            cost = self._costs(detections, stamp)
            rows, cols = linear_sum_assignment(cost)
            ok = cost[rows, cols] < NOT_ALLOWED
            rows, cols = rows[ok], cols[ok]
            matches = {int(c): int(r) for r, c in zip(rows, cols)}
            self._note_ambiguities(cost, rows, cols)
        matched_tracks = set(matches.values())
        alive: list[_Track] = []
        for i, t in enumerate(self._tracks):
            if i in matched_tracks:
                alive.append(t)
                continue
            t.misses += 1
            if t.confirmed and t.misses <= self.cfg.max_misses:
                alive.append(t)
            else:
                dropped.append(t.track_id)
                self.stats.removed += 1
        out: list[TrackedFace] = []
        alpha = self.cfg.velocity_smoothing
        for j, d in enumerate(detections):
            box = np.asarray(d.box, dtype=np.float64)
            if j in matches:
                t = self._tracks[matches[j]]
                dt = stamp - t.stamp
                if dt > 0:
                    measured = (_centers(box[None])[0] - _centers(t.box[None])[0]) / dt
                    t.velocity = measured if t.hits == 1 else alpha * measured + (1 - alpha) * t.velocity
                t.box, t.stamp = box, max(stamp, t.stamp)
                t.hits += 1
                t.misses = 0
            else:
                t = _Track(track_id=self._next_id, box=box, stamp=stamp)
                self._next_id += 1
                self.stats.created += 1
                alive.append(t)
            t.confirmed = t.confirmed or t.hits >= self.cfg.min_hits
            out.append(TrackedFace(track_id=t.track_id, detection=d, hits=t.hits, confirmed=t.confirmed))
        self._tracks = alive  # creation order = id order
        self.removed = dropped
        return out
