"""Test helper: drawn expression faces aligned by the core's code, as the trainer's face cache prepares them."""
from __future__ import annotations

import numpy as np

from fer_ros_training.data.bad_input import BadInputLog
from fer_ros_training.data.face_cache import AlignedFace, CropRecipe, FaceCache
from fer_ros_training.data.synthetic import render_image

# Crop scale around the drawn face box: leaves a margin of scene around the face (what the background replaces).
CROP_SCALE = 1.3


def aligned_synthetic_faces(count: int, side: int = 64, seed: int = 0, color: str = "rgb"
                            ) -> tuple[list[AlignedFace], list[int]]:
    """``count`` aligned faces (uint8 crops + five landmarks in crop pixels) cycling through the seven classes."""
    cache = FaceCache(CropRecipe(side, side, color, CROP_SCALE, True), BadInputLog("skip"), cache_dir=None)
    rng = np.random.default_rng(seed)
    faces, labels = [], []
    for i in range(count):
        drawn = render_image(i % 7, rng)
        faces.append(cache.align_located(drawn.image, drawn.box, drawn.landmarks))
        labels.append(i % 7)
    return faces, labels
