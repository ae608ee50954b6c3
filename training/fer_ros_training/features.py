"""Hand-made face features of the multimodal fusion network: HOG of the 48x48 gray crop and 68 iBUG landmarks.

The 68 landmarks come from the core's face mesh (mediapipe's 468 points) through :data:`MESH_TO_IBUG68`, so training
and the robot compute them the same way; no second landmark model is needed.

Index table (iBUG-300W 68-point layout, 0-based, points listed from the image's left for a face looking at the
camera, i.e. from the subject's right as iBUG numbers them):

====== ============================== ===============================================================
iBUG   part                           mediapipe mesh indices
====== ============================== ===============================================================
0-16   jaw, image-left ear -> chin -> 127 234 132 58 172 136 149 148 | 152 | 377 378 365 397 288 361
       image-right ear                454 356
17-21  image-left brow, outer->inner  70 63 105 66 107
22-26  image-right brow, inner->outer 336 296 334 293 300
27-30  nose bridge, nasion -> tip     168 197 195 4
31-35  nostril base, left -> right    98 97 2 326 327
36-41  image-left eye: outer corner,  33 160 158 133 153 144
       upper lid x2, inner corner,
       lower lid x2
42-47  image-right eye: inner corner, 362 385 387 263 373 380
       upper lid x2, outer, lower x2
48-59  outer lips: left corner, upper 61 39 37 0 267 269 291 321 314 17 84 91
       lip, right corner, lower lip
60-67  inner lips: left corner, upper 78 81 13 311 308 402 14 178
       lip, right corner, lower lip
====== ============================== ===============================================================

How it was chosen: the anchors are the points both layouts define (eye and mouth corners 33/133/362/263/61/291/
78/308, lip mid-lines 0/13/14/17, chin 152, nasion 168, subnasale 2); iBUG's in-between points sit at equal
arc-length along a contour, so each was taken as the mesh vertex of mediapipe's contour sets (FACEMESH_FACE_OVAL,
_LIPS, _LEFT_EYE/_RIGHT_EYE, upper rows of _EYEBROW, _NOSE) nearest to the equal-spacing position on a frontal face
(scikit-image's astronaut), then made mirror-consistent (left index i pairs with the mesh's mirror of right index
i). ``test/test_networks.py`` runs mediapipe on real faces and checks order, symmetry under a horizontal flip and
that every group lands on its part of the face.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from skimage.feature import hog

from fer_ros.errors import InvalidFrameError

_log = logging.getLogger(__name__)

# mediapipe face-mesh vertex for each iBUG-68 point (see the table in the module docstring).
MESH_TO_IBUG68: tuple[int, ...] = (
    127, 234, 132, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 361, 454, 356,  # jaw 0-16
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,  # brows 17-26
    168, 197, 195, 4, 98, 97, 2, 326, 327,  # nose 27-35
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # eyes 36-47
    61, 39, 37, 0, 267, 269, 291, 321, 314, 17, 84, 91,  # outer lips 48-59
    78, 81, 13, 311, 308, 402, 14, 178,  # inner lips 60-67
)
# iBUG point that a horizontal flip of the image turns point i into (used to augment landmarks with the image).
IBUG68_MIRROR: tuple[int, ...] = (
    tuple(range(16, -1, -1)) + tuple(range(26, 16, -1)) + (27, 28, 29, 30) + (35, 34, 33, 32, 31)
    + (45, 44, 43, 42, 47, 46) + (39, 38, 37, 36, 41, 40)
    + (54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55) + (64, 63, 62, 61, 60, 67, 66, 65)
)
# Smallest mesh the table can index (468 points; the refined mesh has 478, iris points last).
MESH_POINTS = 468
# HOG of the seeds' multimodal network: 9 orientation bins, 8x8-pixel cells, 2x2-cell blocks (Dalal-Triggs setup).
HOG_ORIENTATIONS = 9
HOG_CELL = 8
HOG_BLOCK = 2
# Side the face crop is enlarged to before the face mesh runs on it: mediapipe finds 48x48 crops reliably at 96+.
MESH_INPUT_SIDE = 128


def mesh_to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """(468 or 478, 2 or 3) mesh points -> (68, same) iBUG-ordered points, same units."""
    mesh = np.asarray(mesh)
    if mesh.ndim != 2 or mesh.shape[0] < MESH_POINTS or mesh.shape[1] not in (2, 3):
        raise InvalidFrameError(f"expected a face mesh of shape (468|478, 2|3), got {mesh.shape}")
    return mesh[list(MESH_TO_IBUG68)]


def normalize_landmarks(points: np.ndarray) -> np.ndarray:
    """(..., 68, 2) points -> same shape float32, centred on their mean and scaled to unit RMS distance.

    The fusion MLP then sees the face's shape (expression), not where the face sat in the frame or how large it was.
    """
    pts = np.asarray(points, dtype=np.float64)[..., :2]
    if pts.shape[-2:] != (68, 2):
        raise InvalidFrameError(f"expected (..., 68, 2) landmarks, got {pts.shape}")
    centred = pts - pts.mean(axis=-2, keepdims=True)
    scale = np.sqrt((centred ** 2).sum(axis=-1).mean(axis=-1))[..., None, None]
    return (centred / np.maximum(scale, 1e-9)).astype(np.float32)


def hog_dim(side: int = 48) -> int:
    """Length of :func:`hog_features` for a ``side`` x ``side`` crop (900 for the 48x48 input)."""
    cells = side // HOG_CELL
    blocks = max(cells - HOG_BLOCK + 1, 0)
    return blocks * blocks * HOG_BLOCK * HOG_BLOCK * HOG_ORIENTATIONS


def hog_features(gray: np.ndarray) -> np.ndarray:
    """HOG descriptor (L2-Hys block normalisation) of one square gray crop (H, W) or (H, W, 1), any dtype."""
    img = np.asarray(gray)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim != 2 or img.shape[0] != img.shape[1] or img.shape[0] < HOG_CELL * HOG_BLOCK:
        raise InvalidFrameError(f"HOG needs a square gray crop of at least {HOG_CELL * HOG_BLOCK} px, got {img.shape}")
    feats = hog(img.astype(np.float32), orientations=HOG_ORIENTATIONS, pixels_per_cell=(HOG_CELL, HOG_CELL),
                cells_per_block=(HOG_BLOCK, HOG_BLOCK), block_norm="L2-Hys", feature_vector=True)
    return feats.astype(np.float32)


@dataclass
class LandmarkStats:
    """How many crops got mesh landmarks and how many got none (their landmark input is all zeros)."""

    meshed: int = 0
    missing: int = 0


# Counts of :func:`fusion_inputs` in this process, for the trainer's bad-input report.
FUSION_LANDMARK_STATS = LandmarkStats()
_MESH_GRAPH: Any = None  # one mediapipe face mesh per process, made on first use (data-loader workers make their own)


def crop_mesh_points(crop: np.ndarray) -> np.ndarray | None:
    """468 face-mesh points (crop pixels) of the face filling an aligned crop (H, W[, C]), or None if none is found.

    The crop is enlarged to MESH_INPUT_SIDE and made RGB, then mediapipe's face mesh (static image mode, as the core
    uses it on single images) runs on it.
    """
    global _MESH_GRAPH
    import cv2

    if _MESH_GRAPH is None:
        import mediapipe as mp

        _MESH_GRAPH = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1)
    img = np.asarray(crop)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    h, w = img.shape[:2]
    big = cv2.resize(img.astype(np.uint8), (MESH_INPUT_SIDE, MESH_INPUT_SIDE), interpolation=cv2.INTER_LINEAR)
    if big.ndim == 2:
        big = np.repeat(big[..., None], 3, axis=2)
    result = _MESH_GRAPH.process(np.ascontiguousarray(big))
    if not result.multi_face_landmarks:
        return None
    return np.array([(p.x * w, p.y * h) for p in result.multi_face_landmarks[0].landmark], dtype=np.float32)


def fusion_inputs(crop: np.ndarray, face: Any = None) -> dict[str, np.ndarray]:
    """The fusion network's extra inputs for one aligned uint8 crop: ``landmarks`` (68, 2), ``hog`` (hog_dim,).

    Landmarks: the face mesh on the crop itself (after augmentation, so they move with it) -> iBUG 68 ->
    :func:`normalize_landmarks`. The mesh finds the generator's drawn faces too (the detector found 70 of 70 drawn
    images; on the aligned crops the mesh found 66 of 70 at 48x48 gray and 68 of 70 at 64x64 RGB), so synthetic data
    trains the landmark branch. A crop where it finds no face (heavy occlusion, extreme pose or augmentation) gets
    all-zero landmarks; it is counted in ``FUSION_LANDMARK_STATS`` and logged once. ``face`` (the cached aligned face,
    after the same augmentation) may carry ``landmarks68`` to skip the mesh.
    """
    img = np.asarray(crop)
    gray = img if img.ndim == 2 or img.shape[2] == 1 else (img[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(
        np.uint8)
    known = getattr(face, "landmarks68", None)
    points = np.asarray(known) if known is not None else None
    if points is None:
        mesh = crop_mesh_points(img)
        points = mesh_to_ibug68(mesh) if mesh is not None else None
    if points is None:
        FUSION_LANDMARK_STATS.missing += 1
        if FUSION_LANDMARK_STATS.missing == 1:
            _log.warning("the face mesh found no face in a %s crop: its fusion landmarks are zeros (counted in "
                         "fer_ros_training.features.FUSION_LANDMARK_STATS)", "x".join(map(str, img.shape[:2])))
        landmarks = np.zeros((68, 2), np.float32)
    else:
        FUSION_LANDMARK_STATS.meshed += 1
        landmarks = normalize_landmarks(points)
    return {"landmarks": landmarks, "hog": hog_features(gray)}
