"""Expressions for faces another detector found: the ROS-free core of fer_node's ROS4HRI companion role.

Beside hri_face_detect (or any REP-155 face detector) fer_ros detects nothing itself. The detector lists its faces
(string ids) and publishes one face crop per face and frame; ``CompanionClassifier`` turns those crops into
expressions with the same backend and temporal stage as the pipeline (EMA or FAN ring buffers, keyed by the REP-155
id instead of a track id), without a detector.

Batching: crops arrive one message per face. Each is held (the newest per face) until every listed face has one
(``ready``), then all are classified in one backend call (``classify``); the caller also classifies what is held
whenever a new list arrives, so a face whose crop is late or missing delays the others by one list at most.

The crop is taken as the whole face: it is resized to the model's input (area averaging when shrinking), converted to
the model's colour and normalised. The card's crop enlargement and eye-levelling are not applied: the detector has
already chosen and aligned the region.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from fer_ros.faces.align import crop_face, normalize, to_model_color
from fer_ros.frames import check_color
from fer_ros.inference.base import InferenceBackend
from fer_ros.model_card import ModelCard
from fer_ros.temporal import TemporalStage


@dataclass
class CompanionResult:
    """The expression of one listed face, for the crop that ``source`` came with."""

    face_id: str
    source: Any  # what the caller passed with the crop (the node: the image header, to stamp the output)
    label: str
    confidence: float
    probabilities: np.ndarray  # (num_labels,) float32 in the card's label order
    frames_used: int = 1
    valence: float = math.nan
    arousal: float = math.nan


def crop_to_input(crop: np.ndarray, color: str, card: ModelCard) -> np.ndarray:
    """One face crop (HxWx3 rgb/bgr or HxW gray uint8) as the model's (H, W, C) uint8 input, before normalisation."""
    img = np.asarray(crop)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or min(img.shape[:2]) == 0:
        raise ValueError(f"a face crop must be a non-empty uint8 image, got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    spec = card.input
    resized = crop_face(img, (0.0, 0.0, float(w), float(h)), None, spec.height, spec.width, scale=1.0, rotate=False)
    out = to_model_color(resized, check_color(color), spec.color)
    return out if out.ndim == 3 else out[..., None]


class CompanionClassifier:
    """Listed faces and their newest crops in, one batched classification out; state forgotten with the face."""

    def __init__(self, backend: InferenceBackend, smoothing: float = 0.0, fan_window: int = 0) -> None:
        self.card = backend.card
        self.temporal = TemporalStage(backend, smoothing, fan_window)
        self.tracked: list[str] = []  # the detector's last list, in its order
        self._listed: set[str] = set()
        self._held: dict[str, tuple[np.ndarray, Any]] = {}  # face id -> (model-ready crop, source)

    def update_tracked(self, ids: Iterable[str]) -> list[str]:
        """Take the detector's new list of faces; returns the ids that left it (their state is forgotten)."""
        new = list(dict.fromkeys(ids))
        listed = set(new)
        gone = [i for i in self.tracked if i not in listed]
        self.tracked, self._listed = new, listed
        for face_id in gone:
            self._held.pop(face_id, None)
        self.temporal.drop(gone)
        return gone

    def add(self, face_id: str, crop: np.ndarray, color: str, source: Any = None) -> bool:
        """Hold the newest crop of a listed face; a crop of a face not (or no longer) listed is ignored (False)."""
        if face_id not in self._listed:
            return False
        self._held[face_id] = (crop_to_input(crop, color, self.card), source)
        return True

    @property
    def held(self) -> int:
        return len(self._held)

    def ready(self) -> bool:
        """True when every listed face has a crop waiting."""
        return bool(self._held) and all(i in self._held for i in self.tracked)

    def classify(self) -> list[CompanionResult]:
        """Every held crop in one backend call; the crops are then released."""
        if not self._held:
            return []
        ids = list(self._held)
        crops = np.stack([self._held[i][0] for i in ids])
        sources = [self._held[i][1] for i in ids]
        self._held.clear()
        out = self.temporal.run(ids, normalize(crops, self.card.input))
        top = out.probabilities.argmax(axis=1)
        return [CompanionResult(face_id=face_id, source=source, label=self.card.labels[int(k)],
                                confidence=float(p[k]), probabilities=p.astype(np.float32, copy=True),
                                frames_used=int(used))
                for face_id, source, p, k, used in zip(ids, sources, out.probabilities, top, out.frames_used)]

    def close(self) -> None:
        self.temporal.backend.close()
