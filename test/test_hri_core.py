"""The ROS-free half of ROS4HRI support on real faces: REP-155 values, the pipeline's aligned crops, and the
companion classifier (batched across faces, state keyed by and forgotten with the REP-155 id)."""
from __future__ import annotations

import math

import cv2
import matplotlib
import numpy as np
import pytest

from fer_ros.companion import CompanionClassifier, crop_to_input
from fer_ros.datatypes import Detection
from fer_ros.faces.align import align_crops, crop_face, normalize
from fer_ros.hri_faces import (HRI_EXPRESSIONS, HRI_LANDMARK_SLOTS, FaceIds, box_crop, expression_fields,
                               normalized_landmarks, normalized_roi)
from fer_ros.inference import create_backend
from fer_ros.pipeline import EmotionPipeline, PipelineConfig
from fer_ros.registry import resolve_model
from fer_ros.ros.stats import ERROR, OK, WARN, CompanionStats
from fer_ros.samples import ASTRONAUT_FACE_BOX, ASTRONAUT_LANDMARKS, astronaut, one_face


@pytest.fixture(scope="module")
def card():
    return resolve_model("mini_xception_fer2013")


@pytest.fixture(scope="module")
def crops() -> dict[str, tuple[np.ndarray, str]]:
    """Real faces as a REP-155 detector's crops: the astronaut aligned (RGB), tight (RGB), Grace Hopper (BGR)."""
    astro = crop_face(astronaut(), ASTRONAUT_FACE_BOX, np.array(ASTRONAUT_LANDMARKS), 128, 128, 1.2, True)
    tight = np.ascontiguousarray(box_crop(astronaut(), np.array(ASTRONAUT_FACE_BOX)))
    hopper = cv2.imread(f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg")
    return {"astro": (astro, "rgb"), "tight": (tight, "rgb"),
            "hopper": (np.ascontiguousarray(hopper[140:340, 165:370]), "bgr")}


def test_roi_is_normalised_and_clipped():
    xmin, ymin, xmax, ymax, c = normalized_roi(np.array([-20.0, 100.0, 120.0, 520.0]), (480, 640), 0.9)
    assert (xmin, ymin, xmax, c) == (0.0, 100 / 480, 120 / 640, pytest.approx(0.9))
    assert ymax == 1.0  # past the bottom edge
    assert normalized_roi(np.array([0, 0, 10, 10.0]), (480, 640), math.nan)[4] == 0.0


def test_five_landmarks_take_their_facial_landmarks_slots():
    pts = np.array(ASTRONAUT_LANDMARKS, np.float32)
    out = normalized_landmarks(pts, (512, 512), 0.8)
    assert out.shape == (70, 3)
    for k, slot in enumerate(HRI_LANDMARK_SLOTS):
        assert out[slot, 0] == pytest.approx(pts[k, 0] / 512) and out[slot, 1] == pytest.approx(pts[k, 1] / 512)
        assert out[slot, 2] == pytest.approx(0.8)
    others = [k for k in range(70) if k not in HRI_LANDMARK_SLOTS]
    assert not out[others].any()
    assert normalized_landmarks(np.full((5, 2), np.nan), (512, 512), 0.8) is None


def test_ids_are_stable_per_track_and_distinct_between_tracks():
    ids = FaceIds("kqzd")
    assert ids(3) == ids(3) == "kqzd3" and ids(3) != ids(4)
    assert len(FaceIds().token) == 4 and FaceIds().token.isalpha()


def test_box_crop_is_clipped_to_the_frame():
    frame = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    crop = box_crop(frame, np.array([25.5, -3.0, 40.0, 5.2]))
    assert crop.shape == (6, 5, 3) and np.array_equal(crop, frame[0:6, 25:30])
    assert box_crop(frame, np.array([31.0, 2.0, 40.0, 5.0])) is None


def test_expression_constants():
    assert HRI_EXPRESSIONS["fear"] == "scared" and HRI_EXPRESSIONS["surprise"] == "surprised"
    assert expression_fields("disgust", 0.7) == {"expression": "disgusted", "confidence": pytest.approx(0.7),
                                                 "valence": 0.0, "arousal": 0.0}
    assert expression_fields("happy", 0.9, 0.5, -0.25)["valence"] == 0.5


def test_pipeline_keeps_the_crop_the_model_saw_only_when_asked(card):
    frame = one_face().rgb
    with EmotionPipeline(PipelineConfig(keep_aligned=True)) as pipe:
        face = pipe.process(frame, 1.0).faces[0]
        assert face.aligned is not None and face.aligned.dtype == np.uint8
        assert face.aligned.shape == (card.input.height, card.input.width, card.input.channels)
        # it is the model's input: classifying it again gives the reported probabilities
        again = pipe.backend.predict(normalize(face.aligned[None], card.input))[0]
        np.testing.assert_allclose(again, face.probabilities, atol=1e-6)
        # and align_crops' output for the reported detection (one geometry for all)
        det = Detection(box=face.box, score=face.detection_score,
                        landmarks=None if face.landmark_source == "none" else face.landmarks)
        np.testing.assert_array_equal(face.aligned, align_crops(frame, "rgb", [det], card)[0])
    with EmotionPipeline(PipelineConfig()) as pipe:
        assert pipe.process(frame, 1.0).faces[0].aligned is None


def test_companion_classifies_listed_faces_in_one_batch(card, crops):
    classifier = CompanionClassifier(create_backend(card, "onnxruntime"))
    classifier.update_tracked(["astro", "hopper"])
    assert classifier.add("astro", *crops["astro"], source="header-a")
    assert not classifier.ready()  # hopper's crop is still missing
    assert classifier.add("hopper", *crops["hopper"], source="header-h")
    assert classifier.ready()
    batch = {r.face_id: r for r in classifier.classify()}
    assert set(batch) == {"astro", "hopper"} and classifier.held == 0
    assert batch["astro"].label == "happy" and batch["astro"].confidence > 0.5  # the astronaut smiles
    assert batch["astro"].source == "header-a" and batch["hopper"].source == "header-h"
    # batching changes nothing: each face alone gives the same probabilities
    for face_id in ("astro", "hopper"):
        np.testing.assert_allclose(batch[face_id].probabilities, crop_probabilities(classifier, crops[face_id]),
                                   atol=1e-6)


def test_companion_reads_tight_crops_and_any_colour(card, crops):
    classifier = CompanionClassifier(create_backend(card, "onnxruntime"))
    classifier.update_tracked(["tight", "gray"])
    gray = cv2.cvtColor(crops["tight"][0], cv2.COLOR_RGB2GRAY)
    classifier.add("tight", *crops["tight"])
    classifier.add("gray", gray, "gray")
    out = {r.face_id: r for r in classifier.classify()}
    assert out["tight"].label == "happy"
    np.testing.assert_allclose(out["tight"].probabilities, out["gray"].probabilities, atol=1e-5)
    with pytest.raises(ValueError):
        classifier.add("tight", np.zeros((0, 5, 3), np.uint8), "rgb")


def test_companion_forgets_a_face_that_leaves_the_list(card, crops):
    classifier = CompanionClassifier(create_backend(card, "onnxruntime"), smoothing=0.9)
    classifier.update_tracked(["x"])
    classifier.add("x", *crops["astro"])
    first = classifier.classify()[0].probabilities
    classifier.add("x", *crops["hopper"])
    smoothed = classifier.classify()[0].probabilities  # mostly the astronaut still: state kept under id "x"
    np.testing.assert_allclose(smoothed, 0.9 * first + 0.1 * crop_probabilities(classifier, crops["hopper"]),
                               atol=1e-5)
    assert classifier.update_tracked(["y"]) == ["x"]
    assert not classifier.add("x", *crops["astro"]), "a crop of a face no longer listed is ignored"
    classifier.update_tracked(["x", "y"])  # the same id again: a new face, no memory of the old one
    classifier.add("x", *crops["hopper"])
    np.testing.assert_allclose(classifier.classify()[0].probabilities,
                               crop_probabilities(classifier, crops["hopper"]), atol=1e-6)


def crop_probabilities(classifier: CompanionClassifier, crop: tuple[np.ndarray, str]) -> np.ndarray:
    card = classifier.card
    return classifier.temporal.backend.predict(normalize(crop_to_input(*crop, card)[None], card.input))[0]


def test_companion_diagnostics_judge_each_period():
    stats = CompanionStats()
    assert stats.report(0, "aligned")[:2] == (OK, "ok, no faces listed")
    level, message, _ = stats.report(2, "aligned")  # the detector lists faces but sends no crops there
    assert level == WARN and "no crop received on /humans/faces/<id>/aligned" in message
    stats.crops += 4
    assert stats.report(2, "aligned")[0] == ERROR  # crops, and nothing came out
    stats.crops, stats.published, stats.batches = 8, 4, 2
    stats.batch_ms.extend([1.0, 3.0])
    level, message, values = stats.report(2, "aligned")
    assert (level, message) == (OK, "ok")
    assert values["expressions_published"] == "4" and values["batch_p50_ms"] == "2.00"
    stats.crops += 2
    stats.published += 2
    stats.problems["bad_id"] += 1
    level, message, values = stats.report(3, "aligned")
    assert level == WARN and "1 problems (bad_id" in message and values["problems_bad_id"] == "1"
