"""Train and eval presets on aligned uint8 face crops, as torchvision's references and timm arrange them.

The seeds augment with horizontal flips, rotations up to +-30 degrees, brightness/contrast changes and translations;
``AugmentConfig`` holds those ranges (YAML ``data.augment``). One random draw is applied to a whole stack of crops,
so the frames of a clip move together. The eval preset is exactly the runtime's preprocessing after alignment:
``fer_ros.faces.align.normalize`` with the model card's input spec, and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np

from fer_ros.errors import ConfigError
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
        data = dict(data or {})
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"data.augment has unknown keys {sorted(unknown)}; known: {sorted(names)}")
        cfg = cls(**{k: float(v) for k, v in data.items()})
        if not 0 <= cfg.hflip <= 1:
            raise ConfigError(f"data.augment.hflip is a probability, got {cfg.hflip}")
        if not 0 <= cfg.rotation <= MAX_ROTATION:
            raise ConfigError(f"data.augment.rotation must be 0..{MAX_ROTATION} degrees, got {cfg.rotation}")
        if min(cfg.translate, cfg.scale, cfg.brightness, cfg.contrast) < 0:
            raise ConfigError("data.augment ranges must be >= 0")
        return cfg


def augment(crops: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """One random flip/rotation/translation/zoom and brightness/contrast change applied to every crop of a stack.

    ``crops`` (N, H, W, C) uint8; returns the same shape and dtype. Borders are filled by reflection so the network
    never learns from black corners the runtime would not show.
    """
    n, h, w, c = crops.shape
    out = crops
    if rng.random() < cfg.hflip:
        out = out[:, :, ::-1]
    angle = rng.uniform(-cfg.rotation, cfg.rotation) if cfg.rotation else 0.0
    zoom = 1.0 + (rng.uniform(-cfg.scale, cfg.scale) if cfg.scale else 0.0)
    tx, ty = (rng.uniform(-cfg.translate, cfg.translate, 2) * (w, h)) if cfg.translate else (0.0, 0.0)
    if angle or zoom != 1.0 or tx or ty:
        m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, zoom)
        m[:, 2] += (tx, ty)
        warped = np.empty_like(crops)
        for i in range(n):
            img = cv2.warpAffine(np.ascontiguousarray(out[i]), m, (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT_101)
            warped[i] = img.reshape(h, w, c)
        out = warped
    gain = 1.0 + (rng.uniform(-cfg.contrast, cfg.contrast) if cfg.contrast else 0.0)
    shift = rng.uniform(-cfg.brightness, cfg.brightness) * 255 if cfg.brightness else 0.0
    if gain != 1.0 or shift:
        f = out.astype(np.float32)
        mean = f.mean(axis=(1, 2, 3), keepdims=True)
        out = np.clip((f - mean) * gain + mean + shift, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


class FaceTransform:
    """uint8 crops (N, H, W, C) -> model input (N, C, H, W) float32; augmented when built with an ``AugmentConfig``."""

    def __init__(self, spec: InputSpec, augment_cfg: AugmentConfig | None = None) -> None:
        self.spec = spec
        self.augment_cfg = augment_cfg

    def augment_crops(self, crops: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """The random part only (identity for the eval preset): uint8 crops in, uint8 crops out."""
        if self.augment_cfg is None:
            return crops
        if rng is None:
            raise ValueError("the train preset needs a random generator (one per sample and epoch)")
        return augment(crops, self.augment_cfg, rng)

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
