"""torch datasets over aligned faces: still images, K-segment clips, and the fusion network's three inputs.

Each sample is a dict: ``input`` (what the network's forward takes: a tensor, a ``(clips, mask)`` pair or a dict of
named tensors), ``label`` (int) and ``landmarks`` (5, 2) in [0, 1] crop coordinates with ``has_landmarks`` (for the
optional landmark-regression head and the occlusion test). The landmarks go through the same augmentation draw as
the image (a flip also swaps left and right points), so they stay on the face the network sees. Randomness comes from a generator seeded by (seed, epoch,
index), so a sample is the same whatever the worker count, and a resumed run sees exactly the data an uninterrupted
one would have seen.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from fer_ros_training.data.clips import DEFAULT_SEGMENTS, segment_indices
from fer_ros_training.data.face_cache import AlignedFace
from fer_ros_training.data.transforms import AugmentDraw, FaceTransform

NUM_FACE_POINTS = 5  # landmarks kept with every aligned face (fer_ros.datatypes order)


def _landmark_target(face: AlignedFace, draw: AugmentDraw) -> tuple[torch.Tensor, bool]:
    """The face's five landmarks where ``draw`` puts them, in [0, 1] crop coordinates (zeros and False if unknown)."""
    h, w = face.crop.shape[:2]
    if face.landmarks is None:
        return torch.zeros(NUM_FACE_POINTS, 2), False
    return torch.from_numpy(draw.apply_points(face.landmarks) / np.array([w, h], np.float32)).float(), True


def augmented_face(face: AlignedFace, crop: np.ndarray, draw: AugmentDraw) -> AlignedFace:
    """``face`` as ``draw`` made it: the augmented ``crop`` with its landmarks (and any known ``landmarks68``, which
    the fusion inputs read) moved alike."""
    moved = AlignedFace(crop, None if face.landmarks is None else draw.apply_points(face.landmarks), face.located)
    known68 = getattr(face, "landmarks68", None)
    if known68 is not None:
        moved.landmarks68 = draw.apply_points(known68)
    return moved


class _EpochSeeded(Dataset):
    def __init__(self, seed: int, train: bool) -> None:
        self.seed = int(seed)
        self.train = train
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Call before each epoch: the augmentation of every sample depends on (seed, epoch, index)."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator | None:
        return np.random.default_rng([self.seed, self.epoch, int(index)]) if self.train else None


class FaceImageDataset(_EpochSeeded):
    """Still images: ``input`` (C, H, W) float32, or the fusion dict when ``extra_inputs`` is given.

    ``extra_inputs(crop_uint8_after_augmentation, face) -> dict[str, tensor]`` adds named inputs next to ``image``
    (the fusion network's landmarks and HOG, computed from the same augmented crop).
    """

    def __init__(self, faces: list[AlignedFace], labels: list[int], transform: FaceTransform, train: bool = False,
                 seed: int = 0,
                 extra_inputs: Callable[[np.ndarray, AlignedFace], dict[str, torch.Tensor]] | None = None) -> None:
        super().__init__(seed, train)
        if len(faces) != len(labels):
            raise ValueError(f"{len(faces)} faces but {len(labels)} labels")
        self.faces, self.labels, self.transform, self.extra_inputs = faces, list(labels), transform, extra_inputs

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index: int) -> dict[str, Any]:
        face = self.faces[index]
        h, w = face.crop.shape[:2]
        draw = self.transform.draw(self.rng(index), h, w)
        crops = draw.apply(face.crop[None])
        x: Any = torch.from_numpy(self.transform.normalize(crops)[0])
        if self.extra_inputs is not None:
            x = {"image": x}
            x.update(self.extra_inputs(crops[0], augmented_face(face, crops[0], draw)))
        lm, has = _landmark_target(face, draw)
        return {"input": x, "label": self.labels[index], "landmarks": lm, "has_landmarks": has}


class ClipDataset(_EpochSeeded):
    """Clips: ``input`` = (frames (K, C, H, W) float32, mask (K,) bool), K segments sampled per clip."""

    def __init__(self, clips: list[list[AlignedFace]], labels: list[int], transform: FaceTransform,
                 segments: int = DEFAULT_SEGMENTS, train: bool = False, seed: int = 0) -> None:
        super().__init__(seed, train)
        if len(clips) != len(labels):
            raise ValueError(f"{len(clips)} clips but {len(labels)} labels")
        if any(len(c) == 0 for c in clips):
            raise ValueError("every clip needs at least one aligned face (the loader reports and leaves out others)")
        self.clips, self.labels, self.transform, self.segments = clips, list(labels), transform, int(segments)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        faces = self.clips[index]
        rng = self.rng(index)
        idx, mask = segment_indices(len(faces), self.segments, rng)
        crops = np.stack([faces[i].crop for i in idx])
        draw = self.transform.draw(rng, crops.shape[1], crops.shape[2])
        frames = torch.from_numpy(self.transform.normalize(draw.apply(crops)))
        lm, has = _landmark_target(faces[int(idx[len(idx) // 2])], draw)
        return {"input": (frames, torch.from_numpy(mask)), "label": self.labels[index], "landmarks": lm,
                "has_landmarks": has}
