"""Faces pasted on random gray backgrounds: the FERAtt augmentation, with the face mask from the core's landmarks.

FERAtt trains its attention module to find the face by showing it the same face on many backgrounds and asking the
reconstruction to return the face alone. Here a face mask is drawn from the landmarks the core already gives every
face, every pixel outside it is replaced by a random gray background, and every pixel inside it is kept exactly.

The mask comes from one of two landmark layouts:
- the core's five points (``fer_ros.datatypes``: eyes, nose tip, mouth corners): an ellipse in the face's own frame
  (x along the eye line, y towards the mouth). With d_eye the distance between the eyes and d_em the distance from
  the mid-eye point to the mouth centre, the centre lies ``ELLIPSE_CENTER`` * d_em below the mid-eye point and the
  semi-axes are ``ELLIPSE_HALF_WIDTH`` * d_eye and ``ELLIPSE_HALF_HEIGHT`` * d_em: adult proportions put the chin
  about 1.6 d_em below the eyes, the hairline about 1.0 d_em above them and the cheeks 1.1 d_eye to either side.
  An optional detector box clips the ellipse (enlarged by ``BOX_MARGIN`` first, since detector boxes cut the
  forehead);
- the 68-point iBUG layout (``fer_ros_training.features.mesh_to_ibug68``): the convex hull of the jaw line and of
  the brows lifted by ``FOREHEAD_LIFT`` of their distance to the chin, so the forehead stays in the face.

Backgrounds are gray (R = G = B): a uniform level, plus optional smooth gray texture, so the network cannot use
colour to tell face from background and the face's colour statistics are untouched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from fer_ros.errors import ConfigError
from fer_ros_training.config_keys import section_fields
from fer_ros_training.data.datasets import FaceImageDataset

# Centre of the 5-point face ellipse below the mid-eye point, in eye-to-mouth distances.
ELLIPSE_CENTER = 0.3
# Semi-axis across the face, in inter-ocular distances (cheek to cheek is about 2.2 of them).
ELLIPSE_HALF_WIDTH = 1.1
# Semi-axis along the face, in eye-to-mouth distances (hairline -1.0 to chin +1.6 around the eyes).
ELLIPSE_HALF_HEIGHT = 1.35
# Enlargement of a detector box on each side before it clips the ellipse (fraction of its size): BlazeFace boxes
# end at the chin and the brows, 0.25 keeps both chin and forehead on astronaut().
BOX_MARGIN = 0.25
# 68-point layout: brows are lifted away from the chin by this fraction of their distance to it (the forehead).
FOREHEAD_LIFT = 0.3
# Indices of the iBUG-68 jaw line and brows (the outline of the face).
IBUG_JAW, IBUG_BROWS = tuple(range(0, 17)), tuple(range(17, 27))
IBUG_CHIN = 8
# Smallest eye distance (pixels) a face mask is drawn for: below it the landmarks are degenerate.
MIN_EYE_DISTANCE = 1.0


@dataclass(frozen=True)
class BackgroundConfig:
    """Random gray backgrounds (YAML ``background:``)."""

    probability: float = 1.0  # chance that a sample gets a new background
    gray: tuple[float, float] = (0.0, 255.0)  # range of the background's mean gray level
    texture: float = 40.0  # std of the smooth gray texture added on top (0 = flat backgrounds)
    texture_cells: int = 6  # the texture is random noise on a cells x cells grid, resized smoothly

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> BackgroundConfig:
        data = section_fields(cls, data, "background")
        if "gray" in data:
            data["gray"] = tuple(float(v) for v in data["gray"])
        cfg = cls(**data)
        lo, hi = cfg.gray
        if not (0 <= lo <= hi <= 255) or not 0 <= cfg.probability <= 1 or cfg.texture < 0 or cfg.texture_cells < 1:
            raise ConfigError(f"background needs 0 <= gray[0] <= gray[1] <= 255, probability in 0..1, texture >= 0 "
                              f"and texture_cells >= 1, got {cfg}")
        return cfg


@dataclass
class BackgroundSample:
    """One augmented face: the new image, the same face on a zero background (the FERAtt target) and the mask."""

    image: np.ndarray  # HxWxC uint8: face pixels of the input, gray elsewhere
    clean: np.ndarray  # HxWxC uint8: face pixels of the input, 0 elsewhere
    mask: np.ndarray  # HxW bool: True on the face


def _ellipse_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks, np.float64)
    left_eye, right_eye, mouth = pts[0], pts[1], (pts[3] + pts[4]) / 2
    eye_axis = right_eye - left_eye
    d_eye = float(np.hypot(*eye_axis))
    if d_eye < MIN_EYE_DISTANCE:
        raise ConfigError(f"landmarks put the eyes {d_eye:.2f} px apart: cannot draw a face mask from them")
    u = eye_axis / d_eye
    v = np.array([-u[1], u[0]])  # perpendicular, pointing down the face (image y grows downwards)
    mid_eye = (left_eye + right_eye) / 2
    d_em = float(np.dot(mouth - mid_eye, v))
    if d_em <= 0:  # mouth above the eyes: a face upside down in its landmarks' order; use the distance anyway
        v, d_em = -v, -d_em
    d_em = max(d_em, 0.5 * d_eye)  # a profile-like squash would give a sliver; keep a plausible face
    center = mid_eye + ELLIPSE_CENTER * d_em * v
    angle = float(np.degrees(np.arctan2(u[1], u[0])))
    mask = np.zeros(shape, np.uint8)
    size = (2 * ELLIPSE_HALF_WIDTH * d_eye, 2 * ELLIPSE_HALF_HEIGHT * d_em)  # full axes of the rotated rectangle
    cv2.ellipse(mask, ((float(center[0]), float(center[1])), size, angle), 255, -1)
    return mask > 0


def _hull_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks, np.float64)
    chin = pts[IBUG_CHIN]
    brows = pts[list(IBUG_BROWS)]
    forehead = brows + FOREHEAD_LIFT * (brows - chin)
    outline = np.concatenate([pts[list(IBUG_JAW)], brows, forehead])
    hull = cv2.convexHull(np.round(outline).astype(np.int32))
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, hull, 255)
    return mask > 0


def face_mask(shape: tuple[int, int], landmarks: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
    """Boolean (H, W) mask of the face from 5 or 68 landmarks (x, y pixels), optionally clipped by a detector box."""
    pts = np.asarray(landmarks)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] not in (5, 68) or not np.all(np.isfinite(pts)):
        raise ConfigError(f"face_mask needs (5, 2) or (68, 2) finite landmarks, got shape {pts.shape}")
    mask = _ellipse_mask(shape, pts) if pts.shape[0] == 5 else _hull_mask(shape, pts)
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        mx, my = BOX_MARGIN * (x1 - x0), BOX_MARGIN * (y1 - y0)
        ys, xs = np.ogrid[:shape[0], :shape[1]]
        mask &= (xs >= x0 - mx) & (xs <= x1 + mx) & (ys >= y0 - my) & (ys <= y1 + my)
    return mask


def random_gray_background(shape: tuple[int, ...], rng: np.random.Generator,
                           cfg: BackgroundConfig = BackgroundConfig()) -> np.ndarray:
    """A gray (all channels equal) uint8 background of ``shape`` (H, W) or (H, W, C)."""
    h, w = shape[:2]
    level = rng.uniform(*cfg.gray)
    gray = np.full((h, w), level, np.float32)
    if cfg.texture > 0:
        cells = rng.normal(0.0, cfg.texture, (cfg.texture_cells, cfg.texture_cells)).astype(np.float32)
        gray += cv2.resize(cells, (w, h), interpolation=cv2.INTER_CUBIC)
    gray = np.clip(np.round(gray), 0, 255).astype(np.uint8)
    if len(shape) == 2:
        return gray
    return np.repeat(gray[:, :, None], shape[2], axis=2)


def replace_background(image: np.ndarray, mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``image`` where ``mask`` is True, ``background`` elsewhere (no blending: face pixels are kept exactly)."""
    if image.shape != background.shape or mask.shape != image.shape[:2]:
        raise ConfigError(f"image {image.shape}, background {background.shape} and mask {mask.shape} disagree")
    m = mask[:, :, None] if image.ndim == 3 else mask
    return np.where(m, image, background)


def paste_on_gray(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                  cfg: BackgroundConfig = BackgroundConfig(), box: np.ndarray | None = None) -> BackgroundSample:
    """The face of ``image`` (HxW or HxWxC uint8) on a random gray background (with ``cfg.probability``)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ConfigError(f"paste_on_gray needs an HxW or HxWxC uint8 image, got {image.dtype} {image.shape}")
    mask = face_mask(image.shape[:2], landmarks, box)
    clean = replace_background(image, mask, np.zeros_like(image))
    if rng.random() >= cfg.probability:
        return BackgroundSample(image.copy(), clean, mask)
    out = replace_background(image, mask, random_gray_background(image.shape, rng, cfg))
    return BackgroundSample(out, clean, mask)


# --- training: the FERAtt sample --------------------------------------------------------------------------------------
# Sub-stream of a sample's random generator used for its background (independent of the geometric augmentation).
BACKGROUND_STREAM = 7


def _warped_mask(mask_stack: np.ndarray) -> np.ndarray:
    """Boolean mask back from a 0/255 mask image that went through the augmentation (warp + brightness/contrast).

    The photometric change is increasing (gain > 0), so the midpoint of the image's own extremes separates face from
    background whatever the gain and shift were.
    """
    m = mask_stack.astype(np.float32).mean(axis=-1)
    lo, hi = float(m.min()), float(m.max())
    if hi - lo < 1.0:  # the whole crop is face (or nothing is): keep it as it is
        return np.full(m.shape, hi >= 128.0)
    return m > (lo + hi) / 2


class BackgroundFaceDataset(FaceImageDataset):
    """``FaceImageDataset`` whose training samples carry the FERAtt target.

    Training samples: ``input`` = the face on a random gray background, then the usual augmentation; ``clean`` = the
    normalised augmented face with background 0 (the reconstruction target); ``face_mask`` (H, W) bool. The mask
    goes through the same augmentation draw as the image (one draw per stack), so it stays on the face after flips,
    rotations and shifts. Faces without landmarks keep their background and get an all-True mask (counted in
    ``faces_without_landmarks``). Evaluation samples (``train=False``) are the plain preset's: the robot sees real
    backgrounds.
    """

    def __init__(self, faces: list, labels: list[int], transform, background: BackgroundConfig = BackgroundConfig(),
                 train: bool = False, seed: int = 0) -> None:
        super().__init__(faces, labels, transform, train=train, seed=seed)
        self.background = background
        self.faces_without_landmarks = sum(1 for f in faces if f.landmarks is None)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        if not self.train:
            return sample
        face = self.faces[index]
        crop = face.crop
        if face.landmarks is None:
            mask, image = np.ones(crop.shape[:2], bool), crop
        else:
            rng = np.random.default_rng([self.seed, self.epoch, int(index), BACKGROUND_STREAM])
            pasted = paste_on_gray(crop, face.landmarks, rng, self.background)
            mask, image = pasted.mask, pasted.image
        mask_img = np.repeat((mask * np.uint8(255))[:, :, None], crop.shape[2], axis=2)
        stack = self.transform.augment_crops(np.stack([image, mask_img]), self.rng(index))
        x = self.transform.normalize(stack[:1])[0]
        warped = _warped_mask(stack[1])
        sample["input"] = torch.from_numpy(x)
        sample["clean"] = torch.from_numpy(x * warped[None].astype(np.float32))
        sample["face_mask"] = torch.from_numpy(warped)
        return sample
