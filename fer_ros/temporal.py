"""What happens across frames, per tracked face: EMA smoothing for single-frame models, ring buffers for FAN.

Single-frame models (card window 1): ``EmaSmoother`` keeps one probability vector per track,
``p_t = factor * p_{t-1} + (1 - factor) * q_t`` (``factor`` 0 = off); a new track starts from its first estimate.

Frame Attention Networks (card window K > 1): the embedder runs once per face per frame and ``FanBuffers`` keeps the
last K embeddings of each track in a ring buffer; the aggregator then sees (N, T, D) embeddings, oldest first, with a
mask (T = the longest history among this frame's faces, at most K). A stream therefore costs one backbone pass per
frame, never K. State dies with the track: ``drop(ids)`` is called with the tracker's ``removed`` ids.

``TemporalStage`` puts the two behind one call for the pipeline.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Hashable

import numpy as np

from fer_ros.errors import ConfigError
from fer_ros.inference.base import InferenceBackend

MAX_SMOOTHING = 0.99  # a factor of 1 would freeze the first estimate forever


class EmaSmoother:
    """Per-track exponential moving average of probability vectors."""

    def __init__(self, factor: float) -> None:
        if not 0.0 <= factor <= MAX_SMOOTHING:
            raise ConfigError(f"smoothing must be between 0 (off) and {MAX_SMOOTHING}, got {factor}")
        self.factor = float(factor)
        self.state: dict[int, np.ndarray] = {}

    def update(self, track_ids: list[int], probabilities: np.ndarray) -> np.ndarray:
        """Smoothed (N, L) probabilities for this frame's tracks (rows still sum to 1)."""
        if self.factor == 0.0:
            return probabilities
        out = np.empty_like(probabilities)
        for i, tid in enumerate(track_ids):
            prev = self.state.get(tid)
            cur = probabilities[i] if prev is None else self.factor * prev + (1.0 - self.factor) * probabilities[i]
            self.state[tid] = out[i] = cur
        return out

    def drop(self, track_ids: list[int]) -> None:
        for tid in track_ids:
            self.state.pop(tid, None)

    def reset(self) -> None:
        self.state.clear()


@dataclass
class _Ring:
    data: np.ndarray  # (K, D)
    count: int = 0  # embeddings pushed so far (the buffer holds min(count, K))

    def push(self, embedding: np.ndarray) -> None:
        self.data[self.count % len(self.data)] = embedding
        self.count += 1

    def ordered(self) -> np.ndarray:
        """The held embeddings, oldest first."""
        k = len(self.data)
        if self.count <= k:
            return self.data[:self.count]
        head = self.count % k
        return np.concatenate([self.data[head:], self.data[:head]])


class FanBuffers:
    """One ring buffer of the last ``window`` frame embeddings per track."""

    def __init__(self, window: int, embedding_dim: int | None = None) -> None:
        if window < 1:
            raise ConfigError(f"fan_window must be >= 1, got {window}")
        self.window = int(window)
        self.embedding_dim = embedding_dim
        self.rings: dict[int, _Ring] = {}

    def push(self, track_ids: list[int], embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Store this frame's (N, D) embeddings; returns (N, T, D) windows, (N, T) mask and (N,) frames used."""
        n, d = embeddings.shape
        for tid, emb in zip(track_ids, embeddings):
            ring = self.rings.get(tid)
            if ring is None:
                ring = self.rings[tid] = _Ring(np.zeros((self.window, d), np.float32))
            ring.push(emb)
        used = np.array([min(self.rings[t].count, self.window) for t in track_ids], dtype=np.int64)
        t = int(used.max()) if n else 1
        windows = np.zeros((n, t, d), np.float32)
        mask = np.zeros((n, t), dtype=bool)
        for i, tid in enumerate(track_ids):
            held = self.rings[tid].ordered()
            windows[i, :len(held)] = held
            mask[i, :len(held)] = True
        return windows, mask, used

    def drop(self, track_ids: list[int]) -> None:
        for tid in track_ids:
            self.rings.pop(tid, None)

    def reset(self) -> None:
        self.rings.clear()


@dataclass
class TemporalOutput:
    probabilities: np.ndarray  # (N, L)
    frames_used: np.ndarray  # (N,) int
    infer_ms: float  # time in backend calls
    temporal_ms: float  # time in buffers and smoothing


class TemporalStage:
    """Runs the backend for this frame's faces and applies the model's temporal logic per track."""

    def __init__(self, backend: InferenceBackend, smoothing: float = 0.0, fan_window: int = 0) -> None:
        card = backend.card
        self.backend = backend
        self.smoother = EmaSmoother(smoothing)
        self.buffers: FanBuffers | None = None
        if card.is_temporal:
            window = fan_window or card.window
            if window > card.window:
                raise ConfigError(f"fan_window {window} exceeds the window of model {card.id} ({card.window}); "
                                  f"use 0 (the card's) or at most {card.window}")
            self.buffers = FanBuffers(window, card.embedding_dim or None)
        elif fan_window not in (0, 1):
            raise ConfigError(f"fan_window {fan_window} set, but model {card.id} is single-frame: set it to 0")

    @property
    def window(self) -> int:
        return self.buffers.window if self.buffers else 1

    def set_smoothing(self, factor: float) -> None:
        """Change the EMA factor (validated); existing per-track state is kept, or dropped when smoothing goes off."""
        self.smoother.factor = EmaSmoother(factor).factor
        if factor == 0.0:
            self.smoother.reset()

    def run(self, track_ids: list[Hashable], batch: np.ndarray) -> TemporalOutput:
        """(N, C, H, W) aligned faces of tracks ``track_ids`` (ints, or REP-155 string ids) -> probabilities after
        temporal processing."""
        t0 = time.perf_counter()
        bookkeeping = 0.0
        if self.buffers is None:
            probs = self.backend.predict(batch)
            used = np.ones(len(track_ids), dtype=np.int64)
        else:
            emb = self.backend.embed(batch)
            t1 = time.perf_counter()
            windows, mask, used = self.buffers.push(track_ids, emb)
            bookkeeping += time.perf_counter() - t1
            probs = self.backend.aggregate(windows, mask)
        t2 = time.perf_counter()
        probs = self.smoother.update(track_ids, probs)
        bookkeeping += time.perf_counter() - t2
        total = time.perf_counter() - t0
        return TemporalOutput(probs, used, (total - bookkeeping) * 1e3, bookkeeping * 1e3)

    def drop(self, track_ids: list[int]) -> None:
        """Forget removed tracks (call with ``FaceTracker.removed``)."""
        self.smoother.drop(track_ids)
        if self.buffers is not None:
            self.buffers.drop(track_ids)

    def reset(self) -> None:
        self.smoother.reset()
        if self.buffers is not None:
            self.buffers.reset()
