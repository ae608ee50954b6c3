"""Gray-background augmentation on real faces: the mask from the core's landmarks (mediapipe on the astronaut), face
pixels kept bit for bit, gray everywhere else; the 68-point hull; the FERAtt training sample through augmentation."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from aligned_synthetic import aligned_synthetic_faces
from fer_ros.errors import ConfigError
from fer_ros.faces.detector import DetectorConfig, create_detector
from fer_ros.model_card import InputSpec
from fer_ros_training.augment_background import (BackgroundConfig, BackgroundFaceDataset, face_mask, paste_on_gray,
                                                 random_gray_background)
from fer_ros_training.data.transforms import AugmentConfig, eval_preset, train_preset


@pytest.fixture(scope="module")
def astronaut_face():
    rgb = data.astronaut()
    detector = create_detector(DetectorConfig(backend="mediapipe"))
    try:
        found = detector.detect(rgb)
    finally:
        detector.close()
    assert len(found) == 1 and found[0].landmarks is not None
    return rgb, found[0]


def test_face_pixels_kept_exactly_background_gray(astronaut_face):
    rgb, det = astronaut_face
    sample = paste_on_gray(rgb, det.landmarks, np.random.default_rng(0), box=det.box)
    m = sample.mask
    assert sample.image.dtype == np.uint8 and sample.image.shape == rgb.shape
    assert np.array_equal(sample.image[m], rgb[m])  # the face, bit for bit
    assert np.array_equal(sample.clean[m], rgb[m]) and not sample.clean[~m].any()
    out = sample.image[~m].astype(int)
    assert (out[:, 0] == out[:, 1]).all() and (out[:, 1] == out[:, 2]).all()  # gray: R = G = B
    assert (sample.image[~m] != rgb[~m]).any(axis=1).mean() > 0.9  # and really replaced
    # the mask covers the five landmarks and the face's middle, not the image corners or the suit below the chin
    for x, y in det.landmarks:
        assert m[int(round(y)), int(round(x))]
    x0, y0, x1, y1 = det.box
    assert not m[0, 0] and not m[-1, -1] and not m[int(y1 + 0.5 * (y1 - y0)), int((x0 + x1) / 2)]
    inside_box = m[int(y0):int(y1), int(x0):int(x1)].mean()
    assert inside_box > 0.6  # most of the detector box is face
    assert 0.5 < m.sum() / ((x1 - x0) * (y1 - y0)) < 1.6  # and the mask is about the box's size


def test_backgrounds_vary_and_respect_the_config(astronaut_face):
    rgb, det = astronaut_face
    a = paste_on_gray(rgb, det.landmarks, np.random.default_rng(1))
    b = paste_on_gray(rgb, det.landmarks, np.random.default_rng(2))
    assert not np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    flat = random_gray_background((40, 50, 3), np.random.default_rng(3), BackgroundConfig(gray=(90, 90), texture=0))
    assert (flat == 90).all()
    kept = paste_on_gray(rgb, det.landmarks, np.random.default_rng(4), BackgroundConfig(probability=0.0))
    assert np.array_equal(kept.image, rgb)
    with pytest.raises(ConfigError, match="unknown keys"):
        BackgroundConfig.from_dict({"colour": 1})
    with pytest.raises(ConfigError, match="gray"):
        BackgroundConfig.from_dict({"gray": [200, 100]})
    with pytest.raises(ConfigError, match=r"\(5, 2\) or \(68, 2\)"):
        face_mask((10, 10), np.zeros((4, 2)))
    with pytest.raises(ConfigError, match="eyes"):
        face_mask((10, 10), np.zeros((5, 2)))


def test_68_point_hull_keeps_forehead_and_jaw(astronaut_face):
    from fer_ros_training.features import mesh_to_ibug68
    from test_networks import face_mesh

    rgb, det = astronaut_face
    pts = mesh_to_ibug68(face_mesh(rgb))
    hull = face_mask(rgb.shape[:2], pts)
    ellipse = face_mask(rgb.shape[:2], det.landmarks)
    for x, y in pts[[0, 8, 16, 19, 24, 30, 48, 54]]:  # jaw ends, chin, brows, nose tip, mouth corners
        assert hull[min(int(round(y)), 511), min(int(round(x)), 511)] or hull[int(y) - 1, int(x)]
    brow_y = pts[17:27, 1].min()
    assert hull[int(brow_y) - 5, int(pts[27, 0])]  # above the brows: forehead kept
    overlap = (hull & ellipse).sum() / (hull | ellipse).sum()
    assert overlap > 0.6  # the two layouts agree on where the face is
    sample = paste_on_gray(rgb, pts, np.random.default_rng(5))
    assert np.array_equal(sample.image[hull], rgb[hull])


def test_training_sample_mask_follows_the_augmentation():
    faces, labels = aligned_synthetic_faces(6, side=64, seed=2)
    spec = InputSpec(64, 64, "rgb", (0.5,) * 3, (0.5,) * 3)
    # geometry only, so "face pixels kept" can be checked on the augmented crop too
    geometric = AugmentConfig(hflip=1.0, rotation=20, translate=0.1, brightness=0, contrast=0)
    ds = BackgroundFaceDataset(faces, labels, train_preset(spec, geometric), train=True, seed=1)
    plain = BackgroundFaceDataset(faces, labels, train_preset(spec, geometric), BackgroundConfig(probability=0.0),
                                  train=True, seed=1)
    for i in range(len(ds)):
        s, p = ds[i], plain[i]
        mask = s["face_mask"].numpy()
        assert 0.2 < mask.mean() < 0.95
        # with and without the new background the face pixels after augmentation are the same (away from the
        # mask's edge and the crop's border, where interpolation mixes face and background)
        core = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT,
                         borderValue=0) > 0
        assert np.allclose(s["input"].numpy()[:, core], p["input"].numpy()[:, core], atol=1e-6)
        assert not np.allclose(s["input"].numpy()[:, ~mask], p["input"].numpy()[:, ~mask])
        assert np.array_equal(s["clean"].numpy()[:, mask], s["input"].numpy()[:, mask])
        assert not s["clean"].numpy()[:, ~mask].any()
    ev = BackgroundFaceDataset(faces, labels, eval_preset(spec), train=False)
    assert "clean" not in ev[0] and np.array_equal(ev[0]["input"].numpy(), eval_preset(spec)(faces[0].crop[None])[0])
