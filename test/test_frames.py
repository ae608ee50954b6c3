"""Frame validation and colour conversion at the core's entrance (fer_ros.frames), on the real astronaut frame."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_ros import samples
from fer_ros.errors import FrameError, InvalidFrameError
from fer_ros.frames import read_only, to_gray, to_rgb, validate_frame


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return samples.one_face().rgb


def test_valid_frames_pass_without_copy(rgb):
    assert validate_frame(rgb, "rgb") is rgb
    assert validate_frame(rgb, "BGR") is rgb  # colour names are case-insensitive
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert validate_frame(gray, "gray") is gray
    squeezed = validate_frame(gray[:, :, None], "gray")
    assert squeezed.shape == gray.shape and np.shares_memory(squeezed, gray)


@pytest.mark.parametrize("frame, color, words", [
    ([[1, 2], [3, 4]], "rgb", "numpy array"),
    (np.zeros((0, 0, 3), np.uint8), "rgb", "empty"),
    (np.zeros((480, 0, 3), np.uint8), "rgb", "empty"),
    (np.zeros((480, 640, 3), np.float32), "rgb", "uint8"),
    (np.zeros((480, 640, 3), np.uint16), "bgr", "uint8"),
    (np.zeros((480, 640, 4), np.uint8), "rgb", "HxWx3"),
    (np.zeros((480, 640), np.uint8), "bgr", "color='gray'"),
    (np.zeros((480, 640, 3), np.uint8), "gray", "HxW"),
    (np.zeros((4, 4, 3), np.uint8), "rgb", "outside"),
    (np.zeros((480, 640, 3), np.uint8), "yuv", "not one of"),
])
def test_bad_frames_raise_a_frame_error_that_says_what_is_wrong(frame, color, words):
    with pytest.raises(InvalidFrameError, match=words) as info:
        validate_frame(frame, color)
    assert isinstance(info.value, FrameError)  # the pipeline drops the frame and goes on


def test_to_rgb_from_each_colour(rgb):
    assert to_rgb(rgb, "rgb") is rgb  # already contiguous RGB: no copy
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    np.testing.assert_array_equal(to_rgb(bgr, "bgr"), rgb)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    back = to_rgb(gray, "gray")
    assert back.shape == rgb.shape and (back[..., 0] == gray).all() and (back[..., 2] == gray).all()
    cropped = rgb[10:200, 20:300]  # a non-contiguous view becomes a contiguous array
    out = to_rgb(cropped, "rgb")
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, cropped)


def test_to_gray_matches_opencv(rgb):
    expected = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(to_gray(rgb, "rgb"), expected)
    np.testing.assert_array_equal(to_gray(np.ascontiguousarray(rgb[:, :, ::-1]), "bgr"), expected)
    with pytest.raises(InvalidFrameError):
        to_gray(rgb.astype(np.float64), "rgb")


def test_read_only_view_leaves_the_callers_array_writeable(rgb):
    frame = rgb.copy()
    view = read_only(frame)
    assert not view.flags.writeable and view.flags.c_contiguous
    assert np.shares_memory(view, frame)
    assert frame.flags.writeable
    with pytest.raises(ValueError):
        view[0, 0, 0] = 1


@pytest.mark.parametrize("turns", [0, 1, 2, 3, "flip"])
def test_sample_ground_truth_follows_rotations_and_flips(turns):
    """The test frames' truth must be exact: the pixel under each landmark is the same before and after."""
    base = samples.compose([samples.Placement(200.3, 180.6, 120, angle_deg=10), samples.Placement(470.2, 300.7, 90)])
    moved = samples.flip_frame(base) if turns == "flip" else samples.rotate_frame(base, turns)
    if turns in (1, 3):
        assert moved.rgb.shape == (640, 480, 3)
    # mirroring swaps which eye (mouth corner) is on the image's left: compare each point with its own image
    order = [1, 0, 2, 4, 3] if turns == "flip" else [0, 1, 2, 3, 4]
    for before, after in zip(base.faces, moved.faces):
        for p, q in zip(before.landmarks, after.landmarks[order]):
            x, y = np.floor(p).astype(int)
            u, v = np.floor(q).astype(int)
            np.testing.assert_array_equal(base.rgb[y, x], moved.rgb[v, u])
        side = lambda b: sorted([b[2] - b[0], b[3] - b[1]])  # noqa: E731
        np.testing.assert_allclose(side(after.box), side(before.box), atol=1e-3)
    if turns == "flip":  # fer_ros order: the image-left eye first, also in a mirrored frame
        assert all(f.landmarks[0, 0] < f.landmarks[1, 0] for f in moved.faces)


def test_sample_frames_are_real_and_deterministic():
    a, b = samples.many_faces(5), samples.many_faces(5)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    assert a.rgb.shape == (480, 640, 3) and a.rgb.dtype == np.uint8 and len(a.faces) == 5
    assert not np.array_equal(a.rgb, samples.no_face().rgb)
    clip = list(samples.camera_clip(samples.ClipConfig(frames=4, faces=2, seed=7)))
    assert [round(t, 4) for t, _ in clip] == [0.0, 0.0333, 0.0667, 0.1]
    assert not np.array_equal(clip[0][1].rgb, clip[-1][1].rgb)  # the faces move
    hidden = samples.occlude(a, index=2, part="eyes")
    assert (hidden.rgb != a.rgb).any(axis=2).sum() > 500 and hidden.faces is a.faces
