"""The debug image draws what exists: boxes always, finite landmarks only, labels of labelled faces."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fer_ros.datatypes import FaceResult, FrameResult
from fer_ros.samples import one_face
from fer_ros.visualize import draw_results

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _face(landmarks: np.ndarray, box=(200.0, 150.0, 330.0, 300.0), label: str = "happy") -> FaceResult:
    probs = np.full(7, 1 / 7, np.float32)
    return FaceResult(face_id=1, box=np.asarray(box, np.float32), landmarks=landmarks.astype(np.float32),
                      detection_score=0.9, label=label, confidence=float(probs[3]) if label else math.nan,
                      probabilities=probs if label else np.zeros(0, np.float32))


def test_nan_landmarks_draw_the_box_and_the_finite_points_only():
    frame = one_face().bgr
    points = np.array([[240, 200], [290, 200], [np.nan, np.nan], [250, 260], [np.inf, 270]], np.float64)
    faces = [_face(points), _face(np.full((5, 2), np.nan), box=(400.0, 100.0, 500.0, 220.0), label="")]
    drawn = draw_results(frame, FrameResult(stamp=0.0, image_size=frame.shape[:2], model_id="m", labels=LABELS,
                                            faces=faces))
    changed = np.abs(drawn.astype(int) - frame.astype(int)).sum(axis=2) > 0
    assert changed[150, 200:330].any() and changed[300, 200:330].any()  # first box drawn
    assert changed[220, 400] and changed[160, 500]  # second box drawn although it has no landmark at all
    assert tuple(drawn[200, 240]) == (0, 255, 0) and tuple(drawn[260, 250]) == (0, 255, 0)  # finite points
    assert not changed[:40, :40].any()  # far from the faces: untouched


def test_a_real_pipeline_without_landmarks_gives_a_drawable_result():
    from fer_ros.pipeline import EmotionPipeline, PipelineConfig

    sample = one_face()
    config = PipelineConfig.from_flat({"detector.backend": "opencv", "detector.use_mesh": False})
    with EmotionPipeline(config) as pipeline:
        result = pipeline.process(sample.rgb, 1.0, "rgb")
    if not result.faces:
        pytest.fail("the OpenCV detector found no face on the sample frame")
    assert not np.isfinite(result.faces[0].landmarks).all(), "expected a face without landmarks (NaN)"
    drawn = draw_results(sample.bgr, result)
    x0, y0, x1, y1 = (int(round(v)) for v in result.faces[0].box)
    changed = np.abs(drawn.astype(int) - sample.bgr.astype(int)).sum(axis=2) > 0
    assert changed[max(y0, 0), max(x0, 0):x1].any()
