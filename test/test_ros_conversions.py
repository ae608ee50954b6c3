"""Message <-> numpy conversions and EmotionArray filling, on real sensor_msgs and fer_ros messages."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 venv: source ./env.sh")
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from fer_ros.datatypes import FaceResult, FrameResult  # noqa: E402
from fer_ros.errors import ImageTooLargeError, InvalidFrameError  # noqa: E402
from fer_ros.ros.conversions import (TruncatedImageError, UnsupportedEncodingError,  # noqa: E402
                                     array_to_compressed, array_to_image, compressed_to_array, image_to_array,
                                     result_to_msg)
from fer_ros.samples import one_face  # noqa: E402


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return one_face().rgb


@pytest.mark.parametrize("encoding,color", [("rgb8", "rgb"), ("bgr8", "bgr")])
def test_colour_round_trip(rgb, encoding, color):
    frame, got_color = image_to_array(array_to_image(rgb, encoding))
    assert got_color == color
    np.testing.assert_array_equal(frame, rgb)


def test_mono_round_trip(rgb):
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    frame, color = image_to_array(array_to_image(gray, "mono8"))
    assert color == "gray" and frame.shape == gray.shape
    np.testing.assert_array_equal(frame, gray)


def test_padded_rows_are_viewed_without_copy(rgb):
    h, w, _ = rgb.shape
    padded = np.zeros((h, w * 3 + 64), np.uint8)
    padded[:, : w * 3] = rgb.reshape(h, -1)
    msg = Image(height=h, width=w, encoding="rgb8", step=w * 3 + 64, data=padded.tobytes())
    frame, _ = image_to_array(msg)
    np.testing.assert_array_equal(frame, rgb)
    assert np.shares_memory(frame, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize("encoding", ["16UC1", "mono16", "bayer_rggb8", "yuv422", "32FC1"])
def test_unsupported_encodings_are_refused_with_the_fix(encoding):
    msg = Image(height=4, width=4, encoding=encoding, step=8, data=bytes(32))
    with pytest.raises(UnsupportedEncodingError, match="rgb8"):
        image_to_array(msg)


def test_truncated_and_empty_images(rgb):
    msg = array_to_image(rgb, "rgb8")
    msg.data = msg.data[: len(msg.data) // 2]
    with pytest.raises(InvalidFrameError, match="truncated"):
        image_to_array(msg)
    with pytest.raises(InvalidFrameError, match="empty"):
        image_to_array(Image(height=0, width=0, encoding="rgb8", step=0))


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_round_trip(rgb, fmt):
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    frame, color = compressed_to_array(array_to_compressed(bgr, fmt))
    assert color == "bgr" and frame.shape == bgr.shape
    diff = np.abs(frame.astype(int) - bgr.astype(int)).mean()
    assert diff < (0.01 if fmt == "png" else 4.0)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_truncated_compressed_image_is_refused(rgb, fmt):
    msg = array_to_compressed(rgb[:, :, ::-1], fmt)
    msg.data = msg.data[: int(len(msg.data) * 0.7)]
    with pytest.raises(TruncatedImageError, match="truncated"):
        compressed_to_array(msg)


def test_compressed_depth_is_not_a_colour_image():
    with pytest.raises(UnsupportedEncodingError):
        compressed_to_array(CompressedImage(format="16UC1; compressedDepth png", data=b"\x89PNG\r\n\x1a\n"))


def test_corrupt_compressed_image_is_a_frame_error(rgb):
    msg = array_to_compressed(rgb[:, :, ::-1], "jpeg")
    msg.data = bytes(len(msg.data))  # right size, wrong bytes
    with pytest.raises(InvalidFrameError, match="corrupt"):
        compressed_to_array(msg)
    with pytest.raises(UnsupportedEncodingError):
        compressed_to_array(CompressedImage(format="tiff", data=b"x"))


def _compressed(data: bytes, fmt: str = "jpeg") -> CompressedImage:
    return CompressedImage(format=fmt, data=data)


def _encode(image: np.ndarray, ext: str, params: tuple = ()) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_decompression_bomb_is_refused_from_its_header(ext):
    # 5000x5000 gray: 25 Mpx of zeros compress to a few KB; decoded they would be above the 16.8 Mpx default
    data = _encode(np.zeros((5000, 5000), np.uint8), ext)
    assert len(data) < 1_000_000
    with pytest.raises(ImageTooLargeError, match="5000x5000.*max_image_pixels") as info:
        compressed_to_array(_compressed(data, ext[1:]))
    assert info.value.reason == "too_large"
    frame, _ = compressed_to_array(_compressed(data, ext[1:]), max_pixels=5000 * 5000)  # within a raised budget
    assert frame.shape == (5000, 5000, 3)
    with pytest.raises(ImageTooLargeError):  # raw images have the same budget
        image_to_array(Image(height=5000, width=5000, encoding="mono8", step=5000, data=bytes(5000 * 5000)))


def test_header_sizes_of_real_files():
    from io import BytesIO

    from PIL import Image as PILImage

    from fer_ros.image_header import jpeg_size, png_size

    astronaut = samples_astronaut()
    h, w = astronaut.shape[:2]
    assert jpeg_size(_encode(astronaut, ".jpg")) == (w, h) and png_size(_encode(astronaut, ".png")) == (w, h)
    for options in ({"progressive": True}, {"exif": PILImage.Exif()}, {"quality": 40, "optimize": True}):
        buf = BytesIO()
        PILImage.fromarray(astronaut[:300, :200]).save(buf, "JPEG", **options)
        assert jpeg_size(buf.getvalue()) == (200, 300), options
    with pytest.raises(InvalidFrameError, match="frame header"):
        jpeg_size(b"\xff\xd8\xff\xd9")


def samples_astronaut() -> np.ndarray:
    from fer_ros.samples import astronaut

    return np.ascontiguousarray(astronaut()[:, :, ::-1])  # BGR, as cv2 encodes


@pytest.mark.parametrize("damage", ["garbage", "zeros"])
def test_corrupt_jpeg_data_is_refused_silently(capfd, damage):
    data = bytearray(_encode(samples_astronaut(), ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 90)))
    mid = len(data) // 2
    if damage == "garbage":  # a transmission error; a flipped bit that still decodes validly cannot be seen
        data[mid:mid + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    else:
        data[mid:mid + 2000] = bytes(2000)
    assert cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_COLOR) is not None  # OpenCV takes it
    capfd.readouterr()
    with pytest.raises(InvalidFrameError, match="corrupt") as info:
        compressed_to_array(_compressed(bytes(data)))
    assert info.value.reason == "corrupt"
    assert "JPEG" not in capfd.readouterr().err  # libjpeg's warning is in the message, not on stderr


def test_result_to_msg_fills_every_field():
    from std_msgs.msg import Header

    labels = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    probs = np.array([0.05, 0.0, 0.05, 0.7, 0.1, 0.05, 0.05], np.float32)
    face = FaceResult(face_id=3, box=np.array([-5.0, 10.2, 100.7, 480.0 + 9], np.float32),
                      landmarks=np.arange(10, dtype=np.float32).reshape(5, 2), detection_score=0.9, label="happy",
                      confidence=0.7, probabilities=probs, frames_used=1)
    result = FrameResult(stamp=12.5, image_size=(480, 640), model_id="m", labels=labels, faces=[face])
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = 12, 500_000_000
    msg = result_to_msg(result, header, 7.5)
    assert msg.header.frame_id == "cam" and msg.header.stamp.sec == 12 and msg.header.stamp.nanosec == 500_000_000
    assert list(msg.labels) == list(labels) and msg.model_id == "m"
    assert msg.processing_latency_ms == pytest.approx(7.5)
    (e,) = msg.emotions
    assert e.face_id == 3 and e.label == "happy" and e.frames_used == 1
    assert (e.roi.x_offset, e.roi.y_offset, e.roi.width, e.roi.height) == (0, 10, 101, 470)  # clipped to image
    assert [(p.x, p.y) for p in e.landmarks] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    np.testing.assert_allclose(e.probabilities, probs, atol=1e-7)
    assert e.confidence == pytest.approx(0.7) and e.detection_confidence == pytest.approx(0.9)
    assert math.isnan(e.valence) and math.isnan(e.arousal)
    empty = result_to_msg(FrameResult(stamp=0, image_size=(480, 640), model_id="m", labels=labels), header, 1.0)
    assert len(empty.emotions) == 0 and list(empty.labels) == list(labels)
