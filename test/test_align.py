"""Alignment (fer_ros.faces.align) on real frames: the similarity transform levels the eyes, crops what the card
asks for, and the batched path equals the per-face functions training calls."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fer_ros import samples
from fer_ros.datatypes import Detection
from fer_ros.errors import InvalidFrameError
from fer_ros.faces.align import align_batch, align_crops, crop_face, eye_angle, face_transform, normalize, \
    to_model_color, transform_points
from fer_ros.model_card import card_from_dict


def make_card(color: str, size: int, scale: float = 1.0, rotate: bool = True, mean=None, std=None):
    ch = 1 if color == "gray" else 3
    return card_from_dict({
        "id": f"test_{color}_{size}", "files": {"model": "model.onnx"}, "labels": ["a", "b", "c"],
        "input": {"height": size, "width": size, "color": color, "mean": mean or [0.5] * ch, "std": std or [0.5] * ch},
        "crop": {"scale": scale, "rotate": rotate}})


def truth_detection(face: samples.SampleFace, with_landmarks: bool = True) -> Detection:
    return Detection(box=face.box.copy(), score=1.0, landmarks=face.landmarks.copy() if with_landmarks else None)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised correlation of two images (1 = identical up to brightness and contrast)."""
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def centroid(img: np.ndarray) -> np.ndarray:
    """Brightness-weighted centre (x, y) of an image, in continuous coordinates."""
    c = img.astype(np.float64)
    ys, xs = np.indices(c.shape)
    return np.array([(xs * c).sum(), (ys * c).sum()]) / c.sum() + 0.5


def test_transform_maps_the_box_onto_the_crop():
    m = face_transform((100, 50, 200, 150), None, 64, 64, scale=1.0, rotate=True)
    corners = transform_points(m, np.array([[100, 50], [200, 150], [150, 100]]))
    np.testing.assert_allclose(corners, [[0, 0], [64, 64], [32, 32]], atol=1e-9)
    # a taller box: square of side max(w, h) * scale centred on the box
    m = face_transform((100, 50, 160, 150), None, 100, 100, scale=1.25, rotate=False)
    np.testing.assert_allclose(transform_points(m, np.array([[130, 100], [130 - 62.5, 100 - 62.5]])),
                               [[50, 50], [0, 0]], atol=1e-9)


@pytest.mark.parametrize("angle", [-30.0, 12.0, 25.0])
def test_rotation_levels_the_eyes(angle):
    sample = samples.one_face(face_width=140, angle_deg=angle)
    face = sample.faces[0]
    m = face_transform(face.box, face.landmarks, 112, 112, 1.2, rotate=True)
    lm = transform_points(m, face.landmarks)
    assert abs(lm[0, 1] - lm[1, 1]) < 1e-6 and lm[0, 0] < lm[1, 0]
    assert lm[2, 1] > lm[0, 1] and lm[3, 1] > lm[2, 1]  # nose below the eyes, mouth below the nose
    unrotated = transform_points(face_transform(face.box, face.landmarks, 112, 112, 1.2, rotate=False), face.landmarks)
    dx, dy = unrotated[1] - unrotated[0]
    assert abs(dy) > 0.1 * abs(dx)  # without rotation the tilt (at least 9 degrees here) stays


def test_aligned_crop_of_a_tilted_face_looks_like_the_upright_one():
    upright = samples.one_face(face_width=140)
    tilted = samples.one_face(face_width=140, angle_deg=25)
    ref = crop_face(upright.rgb, upright.faces[0].box, upright.faces[0].landmarks, 96, 96, 1.0)
    # use the upright face's box size so both crops cover the same area of the face
    f = tilted.faces[0]
    c = (f.box[:2] + f.box[2:]) / 2
    box = np.concatenate([c - 70, c + 70])
    got = crop_face(tilted.rgb, box, f.landmarks, 96, 96, 1.0, rotate=True)
    raw = crop_face(tilted.rgb, box, f.landmarks, 96, 96, 1.0, rotate=False)
    inner = (slice(16, 80), slice(16, 80))  # the face itself, not the corners where backgrounds differ
    assert similarity(got[inner], ref[inner]) > 0.9
    assert similarity(got[inner], ref[inner]) > similarity(raw[inner], ref[inner]) + 0.1


def test_mirrored_face_gives_the_mirrored_crop():
    a = samples.one_face(face_width=130)
    b = samples.one_face(face_width=130, mirror=True)
    ca = crop_face(a.rgb, a.faces[0].box, a.faces[0].landmarks, 80, 80)
    cb = crop_face(b.rgb, b.faces[0].box, b.faces[0].landmarks, 80, 80)
    assert similarity(ca[10:70, 10:70], cb[:, ::-1][10:70, 10:70]) > 0.95


def test_missing_landmarks_mean_no_rotation():
    sample = samples.one_face(angle_deg=20)
    f = sample.faces[0]
    assert eye_angle(None) == 0.0 and eye_angle(np.full((5, 2), np.nan)) == 0.0
    np.testing.assert_array_equal(crop_face(sample.rgb, f.box, None, 64, 64),
                                  crop_face(sample.rgb, f.box, f.landmarks, 64, 64, rotate=False))


def test_large_face_is_antialiased_and_keeps_its_geometry():
    # a 1-pixel checkerboard shrunk 8x must come out flat grey, not as a moire pattern
    board = (np.indices((480, 640)).sum(axis=0) % 2 * 255).astype(np.uint8)
    crop = crop_face(board, (100, 100, 612, 412), None, 64, 64)
    assert abs(float(crop.mean()) - 127.5) < 3 and crop.std() < 3
    # a bright square's centre lands where transform_points says, through the antialiasing path
    img = np.zeros((480, 640), np.uint8)
    img[200:240, 300:340] = 255  # centre (320, 220) in continuous coordinates
    box = (100, 60, 500, 460)
    expected = transform_points(face_transform(box, None, 50, 50, 1.0), np.array([[320.0, 220.0]]))[0]
    np.testing.assert_allclose(centroid(crop_face(img, box, None, 50, 50)), expected, atol=0.25)
    # and the same holds on the plain bilinear path (mild downscale)
    box = (250, 170, 390, 270)
    expected = transform_points(face_transform(box, None, 100, 100, 1.0), np.array([[320.0, 220.0]]))[0]
    np.testing.assert_allclose(centroid(crop_face(img, box, None, 100, 100)), expected, atol=0.1)


def test_face_at_the_frame_edge_gives_a_full_crop_without_black():
    sample = samples.one_face(face_width=120, cx=30, cy=40)
    f = sample.faces[0]
    assert f.box[0] < 0 and f.box[1] < 0
    frame = np.maximum(sample.rgb, 1)  # no black pixel in the frame itself
    crop = crop_face(frame, f.box, f.landmarks, 64, 64, scale=1.4)
    assert crop.shape == (64, 64, 3)
    assert crop.min() >= 1  # edge pixels repeated, no black fill
    # without rotation or antialiasing (scale 1: 120 px -> 64 px) the crop's corner, off the frame beyond (0, 0),
    # repeats the frame's corner pixel exactly
    plain = crop_face(frame, f.box, f.landmarks, 64, 64, scale=1.0, rotate=False)
    np.testing.assert_array_equal(plain[0, 0], frame[0, 0])


def test_to_model_color_converts_a_whole_batch_like_opencv_per_crop():
    s = samples.many_faces(3)
    crops = np.stack([crop_face(s.rgb, f.box, f.landmarks, 48, 48) for f in s.faces])
    gray = to_model_color(crops, "rgb", "gray")
    assert gray.shape == (3, 48, 48, 1)
    for i in range(3):
        np.testing.assert_array_equal(gray[i, :, :, 0], cv2.cvtColor(crops[i], cv2.COLOR_RGB2GRAY))
    np.testing.assert_array_equal(to_model_color(crops, "rgb", "bgr"), crops[..., ::-1])
    assert to_model_color(crops, "rgb", "rgb") is crops
    back = to_model_color(gray, "gray", "rgb")
    assert back.shape == (3, 48, 48, 3) and (back[..., 1] == gray[..., 0]).all()
    single = to_model_color(crops[0], "rgb", "gray")
    assert single.shape == (48, 48, 1)


def test_normalize_follows_the_card():
    card = make_card("rgb", 32, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    crops = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    x = normalize(crops, card.input)
    assert x.shape == (2, 3, 32, 32) and x.dtype == np.float32 and x.flags.c_contiguous
    expected = (crops.transpose(0, 3, 1, 2) / 255.0 - np.array(card.input.mean)[None, :, None, None]) / \
        np.array(card.input.std)[None, :, None, None]
    np.testing.assert_allclose(x, expected, atol=1e-5)
    with pytest.raises(ValueError, match="crops"):
        normalize(crops[..., :1], card.input)


@pytest.mark.parametrize("card_color, size", [("gray", 64), ("rgb", 224), ("bgr", 112)])
def test_align_batch_equals_the_per_face_functions_training_uses(card_color, size):
    card = make_card(card_color, size, scale=1.25)
    sample = samples.compose([samples.Placement(130, 140, 110, angle_deg=15), samples.Placement(330, 260, 180),
                              samples.Placement(520, 150, 90, mirror=True)])
    dets = [truth_detection(f) for f in sample.faces]
    batch = align_batch(sample.rgb, "rgb", dets, card)
    assert batch.shape == (3, card.input.channels, size, size) and batch.dtype == np.float32
    assert -1.0 <= batch.min() and batch.max() <= 1.0
    singles = [to_model_color(crop_face(sample.rgb, d.box, d.landmarks, size, size, 1.25, True), "rgb", card_color)
               for d in dets]
    np.testing.assert_array_equal(batch, normalize(np.stack(singles), card.input))
    # the same frame given as BGR or gray-converted-to-the-card's-colour gives the same batch
    np.testing.assert_array_equal(align_batch(sample.bgr, "bgr", dets, card), batch)
    crops = align_crops(sample.rgb, "rgb", dets, card)  # the uint8 crops behind the batch (debug images, data sets)
    assert crops.shape == (3, size, size, card.input.channels) and crops.dtype == np.uint8
    np.testing.assert_array_equal(normalize(crops, card.input), batch)


def test_align_batch_from_a_gray_frame_and_with_no_faces():
    card = make_card("gray", 64)
    sample = samples.one_face()
    gray = cv2.cvtColor(sample.rgb, cv2.COLOR_RGB2GRAY)
    dets = [truth_detection(sample.faces[0])]
    from_gray = align_batch(gray, "gray", dets, card)
    from_rgb = align_batch(sample.rgb, "rgb", dets, card)
    assert from_gray.shape == (1, 1, 64, 64)
    assert np.abs(from_gray - from_rgb).max() <= 2 / 255 / 0.5  # warp then convert vs convert then warp: rounding
    empty = align_batch(sample.rgb, "rgb", [], card)
    assert empty.shape == (0, 1, 64, 64) and empty.dtype == np.float32
    rgb_card = make_card("rgb", 64)
    assert align_batch(gray, "gray", dets, rgb_card).shape == (1, 3, 64, 64)


def test_align_rejects_a_frame_of_the_wrong_kind():
    card = make_card("gray", 64)
    det = Detection(box=np.array([0, 0, 50, 50], np.float32), score=1.0)
    with pytest.raises(InvalidFrameError, match="uint8"):
        align_batch(np.zeros((100, 100, 3), np.float32), "rgb", [det], card)
    with pytest.raises(InvalidFrameError):
        align_batch(np.zeros((100, 100), np.uint8), "rgb", [det], card)
    with pytest.raises(InvalidFrameError, match="not one of"):
        align_batch(np.zeros((100, 100, 3), np.uint8), "hsv", [det], card)


def test_eye_angle_matches_the_placement():
    for angle in (-40.0, 0.0, 33.0):
        face = samples.one_face(angle_deg=angle).faces[0]
        # the portrait's own eye line is tilted 2.8 degrees; the placement rotates it counter-clockwise
        assert math.degrees(eye_angle(face.landmarks)) == pytest.approx(2.8 - angle, abs=0.2)
