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
