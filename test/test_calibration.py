"""INT8 calibration data up to the TensorRT call: the user's real images through the core's alignment and the card's
normalisation, full batches of the profile's size, skipped images counted, and a cache that is never reused for other
data or another TensorRT.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from skimage import data, io

from fer_ros.errors import BackendUnavailableError, ConfigError
from fer_ros.faces.align import crop_face, normalize, to_model_color
from fer_ros_training.export import calibration as calib
from fer_ros_training.export.card_fields import card_template
from fer_ros_training.export.face_samples import faces_from_folder

CARD = card_template("calib_test", "rmn_tiny", 64, 64, "rgb", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def crops_root(tmp_path_factory):
    """ROOT/<label>/*.png of real face crops (LFW, public data shipped with scikit-image), plus one broken file."""
    root = tmp_path_factory.mktemp("crops")
    faces = data.lfw_subset()[:40]
    for i, face in enumerate(faces):
        label = ("happy", "sad", "Neutral", "contempt")[i % 4]
        (root / label).mkdir(exist_ok=True)
        io.imsave(root / label / f"{i:03d}.png", (face * 255).astype(np.uint8), check_contrast=False)
    (root / "happy" / "broken.png").write_bytes(b"not a png")
    return root


def test_crop_images_become_normalised_batches(crops_root):
    faces = faces_from_folder(crops_root, CARD, mode="crops")
    assert faces.inputs.shape == (40, 3, 64, 64) and faces.inputs.dtype == np.float32
    assert faces.skipped["unreadable (ValueError)"] + faces.skipped["unreadable (OSError)"] == 1
    # labels matched by name, case-insensitively; a folder that is no card label stays unlabelled and is counted
    idx = {name: i for i, name in enumerate(CARD.labels)}
    assert set(faces.labels.tolist()) == {idx["happy"], idx["sad"], idx["neutral"], -1}
    assert faces.skipped["label not in card (kept, unlabelled)"] == 10
    # exactly the core's preprocessing: whole image as the face box, card colour, card mean/std
    first = io.imread(crops_root / faces.sources[0])
    rgb = np.repeat(first[:, :, None], 3, axis=2)
    crop = crop_face(rgb, np.array([0, 0, rgb.shape[1], rgb.shape[0]], np.float32), None, 64, 64,
                     CARD.crop.scale, CARD.crop.rotate)
    want = normalize(to_model_color(crop, "rgb", "rgb")[None], CARD.input)
    np.testing.assert_allclose(faces.inputs[0], want[0], atol=1e-6)


def test_batches_are_full_and_padded_from_the_start(crops_root):
    batches = calib.calibration_batches(CARD, crops_root, batch_size=16, mode="crops", min_faces=32)
    assert batches.batches.shape == (3, 16, 3, 64, 64) and batches.faces == 40 and batches.padded == 8
    np.testing.assert_array_equal(batches.batches[2, 8:], batches.batches[0, :8])
    feeds = list(batches)
    assert len(feeds) == 3 and list(feeds[0]) == ["input"] and feeds[0]["input"].shape == (16, 3, 64, 64)
    assert "unreadable" in batches.report


def test_too_few_faces_or_no_images_are_refused(crops_root, tmp_path):
    with pytest.raises(ConfigError, match="only 40 usable faces"):
        calib.calibration_batches(CARD, crops_root, batch_size=8, mode="crops", min_faces=64)
    with pytest.raises(ConfigError, match="no images"):
        calib.calibration_batches(CARD, tmp_path, batch_size=8, mode="crops")
    with pytest.raises(ConfigError, match="NaN"):
        calib.make_batches(np.full((4, 3, 8, 8), np.nan, np.float32), 2)


def test_full_frames_are_detected_like_the_node_does(tmp_path):
    """Frames with a face (the astronaut pasted into a scene) and without one (the scene alone)."""
    from fer_ros import samples

    (tmp_path / "happy").mkdir()
    for i, width in enumerate((110, 150)):
        io.imsave(tmp_path / "happy" / f"f{i}.png", samples.one_face(face_width=width).rgb, check_contrast=False)
    io.imsave(tmp_path / "happy" / "empty.png", samples.no_face().rgb, check_contrast=False)
    faces = faces_from_folder(tmp_path, CARD, mode="detect")
    assert len(faces) == 2 and faces.skipped["no face found"] == 1
    assert faces.inputs.shape == (2, 3, 64, 64) and np.isfinite(faces.inputs).all()


def test_cache_is_reused_only_for_the_same_data_and_tensorrt(crops_root, tmp_path):
    batches = calib.calibration_batches(CARD, crops_root, batch_size=8, mode="crops")
    cache = calib.cache_path_for(tmp_path / "model.onnx", "8.6.1")
    assert cache.name == "model.int8.trt8.6.1.calib"
    reused, reason = calib.prepare_cache(cache, batches, "8.6.1", str(crops_root))
    assert not reused and reason == "no cache yet"
    cache.write_bytes(b"TRT-8601-EntropyCalibration2\ninput: 3c0d4a2b\n")  # what TensorRT 8.6.1 writes
    assert calib.cache_is_current(cache, batches, "8.6.1") == (True, "same data and TensorRT")
    assert not calib.cache_is_current(cache, batches, "10.3.0")[0]
    other = calib.make_batches(batches.batches.reshape(-1, 3, 64, 64)[::-1], 8)
    ok, reason = calib.prepare_cache(cache, other, "8.6.1", "other")
    assert not ok and "other calibration images" in reason and not cache.exists()


def test_tensorrt_cache_tags():
    assert calib.trt_cache_tag("8.6.1") == "8601"
    assert calib.trt_cache_tag("10.3.0.30") == "100300"
    assert calib.trt_cache_tag("8.5.10") == "8510"


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_calibrator_needs_tensorrt(crops_root, tmp_path):
    batches = calib.calibration_batches(CARD, crops_root, batch_size=8, mode="crops")
    with pytest.raises(BackendUnavailableError, match="TensorRT is not installed"):
        calib.make_calibrator(batches, tmp_path / "x.calib")
