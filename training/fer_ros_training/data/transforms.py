"""Train and eval presets on aligned uint8 face crops, as torchvision's references and timm arrange them.

The seeds augment with horizontal flips, rotations up to +-30 degrees, brightness/contrast changes and translations;
``AugmentConfig`` holds those ranges (YAML ``data.augment``). One random draw is applied to a whole stack of crops,
so the frames of a clip move together; ``AugmentDraw.apply_points`` moves the landmarks with it (flips also swap
left and right points), so a landmark target or a face mask drawn from them stays on the face. The eval preset is exactly the runtime's preprocessing after alignment:
``fer_ros.faces.align.normalize`` with the model card's input spec, and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from fer_ros.errors import ConfigError
from fer_ros_training.config_keys import section_fields
from fer_ros.model_card import InputSpec

MAX_ROTATION = 90.0  # degrees; a larger augmentation angle is a config typo (radians or a full turn)


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the training augmentation (0 disables each)."""

    hflip: float = 0.5  # probability of a horizontal flip
    rotation: float = 30.0  # max |angle|, degrees
    translate: float = 0.1  # max |shift| as a fraction of the crop side
    scale: float = 0.0  # max relative zoom in or out
    brightness: float = 0.2  # max |additive change| as a fraction of 255
    contrast: float = 0.2  # max |relative change| of the contrast around the crop mean

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AugmentConfig:
        data = section_fields(cls, data, "data.augment")
        cfg = cls(**{k: float(v) for k, v in data.items()})
        if not 0 <= cfg.hflip <= 1:
            raise ConfigError(f"data.augment.hflip is a probability, got {cfg.hflip}")
        if not 0 <= cfg.rotation <= MAX_ROTATION:
            raise ConfigError(f"data.augment.rotation must be 0..{MAX_ROTATION} degrees, got {cfg.rotation}")
        if min(cfg.translate, cfg.scale, cfg.brightness, cfg.contrast) < 0:
            raise ConfigError("data.augment ranges must be >= 0")
        return cfg


# Landmark that a horizontal flip of the image turns point i into, for the core's 5-point order (image-left eye,
# image-right eye, nose tip, image-left mouth corner, image-right mouth corner): the "left" point becomes the right.
FIVE_POINT_MIRROR: tuple[int, ...] = (1, 0, 2, 4, 3)


def mirror_order(num_points: int) -> tuple[int, ...]:
    """Index table a horizontal flip applies to a landmark set: 5 points (core order) or 68 (iBUG, features.py)."""
    if num_points == len(FIVE_POINT_MIRROR):
        return FIVE_POINT_MIRROR
    from fer_ros_training.features import IBUG68_MIRROR

    if num_points == len(IBUG68_MIRROR):
        return IBUG68_MIRROR
    raise ConfigError(f"no left/right table for {num_points} landmarks: a flip can reorder 5 (core) or 68 (iBUG)")


@dataclass(frozen=True)
class AugmentDraw:
    """One random draw of the augmentation, applied alike to every crop of a stack and to their landmarks.

    Order: horizontal flip, then the warp ``matrix`` (2x3, OpenCV pixel-centre convention: rotation and zoom about
    the crop centre, then the shift), then ``gain`` (contrast about the crop mean) and ``shift`` (brightness). The
    default draw changes nothing (the eval preset's).
    """

    height: int
    width: int
    flip: bool = False
    matrix: np.ndarray | None = None  # None: no warp
    gain: float = 1.0
    shift: float = 0.0  # added to every pixel, in 0..255 units

    def apply(self, crops: np.ndarray) -> np.ndarray:
        """Crops (N, H, W, C) uint8 -> the same shape and dtype, augmented. Borders are filled by reflection so the
        network never learns from black corners the runtime would not show."""
        n, h, w, c = crops.shape
        if (h, w) != (self.height, self.width):
            raise ValueError(f"this draw is for {self.height}x{self.width} crops, got {h}x{w}")
        out = crops[:, :, ::-1] if self.flip else crops
        if self.matrix is not None:
            warped = np.empty_like(crops)
            for i in range(n):
                img = cv2.warpAffine(np.ascontiguousarray(out[i]), self.matrix, (w, h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT_101)
                warped[i] = img.reshape(h, w, c)
            out = warped
        if self.gain != 1.0 or self.shift:
            f = out.astype(np.float32)
            mean = f.mean(axis=(1, 2, 3), keepdims=True)
            out = np.clip((f - mean) * self.gain + mean + self.shift, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(out)

    def apply_points(self, points: np.ndarray) -> np.ndarray:
        """Landmarks (K, 2) in continuous crop pixels (``fer_ros.faces.align``'s convention) -> where the same draw
        puts them, float32. A flip mirrors x (x -> W - x) and swaps left/right points (``mirror_order``), so index i
        still names the same part of the face in the new image."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self.flip:
            pts = pts[list(mirror_order(len(pts)))]
            pts = np.column_stack([self.width - pts[:, 0], pts[:, 1]])
        if self.matrix is not None:
            from fer_ros.faces.align import transform_points

            pts = transform_points(self.matrix, pts)
        return pts.astype(np.float32)


def draw_augmentation(cfg: AugmentConfig, rng: np.random.Generator, height: int, width: int) -> AugmentDraw:
    """One random flip/rotation/translation/zoom and brightness/contrast change for ``height`` x ``width`` crops."""
    h, w = height, width
    flip = bool(rng.random() < cfg.hflip)
    angle = rng.uniform(-cfg.rotation, cfg.rotation) if cfg.rotation else 0.0
    zoom = 1.0 + (rng.uniform(-cfg.scale, cfg.scale) if cfg.scale else 0.0)
    tx, ty = (rng.uniform(-cfg.translate, cfg.translate, 2) * (w, h)) if cfg.translate else (0.0, 0.0)
    matrix = None
    if angle or zoom != 1.0 or tx or ty:
        matrix = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, zoom)
        matrix[:, 2] += (tx, ty)
    gain = 1.0 + (rng.uniform(-cfg.contrast, cfg.contrast) if cfg.contrast else 0.0)
    shift = rng.uniform(-cfg.brightness, cfg.brightness) * 255 if cfg.brightness else 0.0
    return AugmentDraw(h, w, flip, matrix, float(gain), float(shift))


def augment(crops: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """One random draw (``draw_augmentation``) applied to every crop of a stack (N, H, W, C) uint8."""
    return draw_augmentation(cfg, rng, crops.shape[1], crops.shape[2]).apply(crops)


class FaceTransform:
    """uint8 crops (N, H, W, C) -> model input (N, C, H, W) float32; augmented when built with an ``AugmentConfig``."""

    def __init__(self, spec: InputSpec, augment_cfg: AugmentConfig | None = None) -> None:
        self.spec = spec
        self.augment_cfg = augment_cfg

    def draw(self, rng: np.random.Generator | None, height: int, width: int) -> AugmentDraw:
        """The random part for one stack of ``height`` x ``width`` crops (a draw that changes nothing for the eval
        preset); apply it to the crops and to their landmarks alike."""
        if self.augment_cfg is None:
            return AugmentDraw(height, width)
        if rng is None:
            raise ValueError("the train preset needs a random generator (one per sample and epoch)")
        return draw_augmentation(self.augment_cfg, rng, height, width)

    def augment_crops(self, crops: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """The random part only (identity for the eval preset): uint8 crops in, uint8 crops out."""
        if self.augment_cfg is None:
            return crops
        return self.draw(rng, crops.shape[1], crops.shape[2]).apply(crops)

    def normalize(self, crops: np.ndarray) -> np.ndarray:
        """The runtime's normalisation: (N, H, W, C) uint8 -> (N, C, H, W) float32."""
        from fer_ros.faces.align import normalize

        return normalize(crops, self.spec)

    def __call__(self, crops: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return self.normalize(self.augment_crops(crops, rng))


def train_preset(spec: InputSpec, augment_cfg: AugmentConfig | None = None) -> FaceTransform:
    """Augmentation of the seeds followed by the runtime's normalisation."""
    return FaceTransform(spec, augment_cfg or AugmentConfig())


def eval_preset(spec: InputSpec) -> FaceTransform:
    """The runtime's preprocessing after alignment, unchanged (``fer_ros.faces.align.normalize``)."""
    return FaceTransform(spec, None)
