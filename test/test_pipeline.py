"""EmotionPipeline end to end on real frames: mediapipe, the default model in onnxruntime, the real tracker.

Frames are the public-domain astronaut composed into 640x480 scenes (``fer_ros.samples``): one face, five faces,
flipped, rotated, occluded, as BGR, RGB and gray; plus broken frames that must be refused without harming the next.
"""
from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from fer_ros import samples
from fer_ros.errors import ConfigError, FrameError, InvalidFrameError, ModelCardError, ModelOutputError
from fer_ros.model_card import FER2013_LABELS
from fer_ros.node_parameters import PARAMETERS
from fer_ros.pipeline import FLAT_KEYS, EmotionPipeline, PipelineConfig

HAPPY = "happy"


class CountingBackend:
    """Wraps the pipeline's real backend and records the batch size of every call."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def predict(self, batch):
        self.calls.append(len(batch))
        return self.real.predict(batch)


@pytest.fixture(scope="module")
def pipeline():
    p = EmotionPipeline()
    yield p
    p.close()


@pytest.fixture
def fresh(pipeline):
    pipeline.reset()
    return pipeline


# --- construction -------------------------------------------------------------------------------------------------
def test_no_argument_construction_uses_the_defaults(pipeline):
    assert pipeline.model_id == "mini_xception_fer2013"
    assert pipeline.labels == FER2013_LABELS
    assert pipeline.backend_name == "onnxruntime[CPUExecutionProvider]"
    assert pipeline.detector_name.startswith("retinaface[mnet0.25] every 0.1 s (inline)") and "face-mesh" in pipeline.detector_name
    assert pipeline.window == 1


def test_missing_model_stops_construction():
    with pytest.raises(ModelCardError, match="no model 'does_not_exist'"):
        EmotionPipeline(PipelineConfig(model="does_not_exist"))


# --- one face ------------------------------------------------------------------------------------------------------
def test_one_face(fresh):
    sample = samples.one_face()
    result = fresh.process(sample.rgb, 12.5, "rgb")
    assert result.stamp == 12.5 and result.image_size == (480, 640) and result.labels == FER2013_LABELS
    assert len(result.faces) == 1
    face = result.faces[0]
    truth = sample.faces[0]
    assert np.abs(face.box - truth.box).max() < 0.15 * (truth.box[2] - truth.box[0])
    assert face.landmarks.shape == (5, 2)
    assert np.abs(face.landmarks - truth.landmarks).max() < 10
    assert face.label == HAPPY and face.confidence > 0.5
    assert math.isclose(float(face.probabilities.sum()), 1.0, abs_tol=1e-4)
    assert face.confidence == pytest.approx(float(face.probabilities.max()))
    assert face.frames_used == 1 and math.isnan(face.valence)
    t = result.timings
    assert t.detect_ms > 0 and t.align_ms > 0 and t.infer_ms > 0
    parts = t.detect_ms + t.landmarks_ms + t.track_ms + t.align_ms + t.infer_ms + t.temporal_ms
    assert parts <= t.total_ms + 1e-6


def test_no_face(fresh):
    result = fresh.process(samples.no_face().rgb, 0.0)
    assert result.faces == [] and result.timings.infer_ms == 0.0


@pytest.mark.parametrize("variant", ["bgr", "gray", "flip", "rotate_in_plane", "mouth_occluded"])
def test_variants_still_find_the_face(fresh, variant):
    base = samples.one_face(face_width=130)
    if variant == "bgr":
        frame, color = base.bgr, "bgr"
    elif variant == "gray":
        frame, color = np.ascontiguousarray(base.rgb.mean(axis=2).astype(np.uint8)), "gray"
    elif variant == "flip":
        frame, color = samples.flip_frame(base).rgb, "rgb"
    elif variant == "rotate_in_plane":
        frame, color = samples.one_face(face_width=130, angle_deg=25).rgb, "rgb"
    else:
        frame, color = samples.occlude(base, 0, "mouth").rgb, "rgb"
    result = fresh.process(frame, 1.0, color)
    assert len(result.faces) == 1
    if variant != "mouth_occluded":  # the smile is what says happy
        assert result.faces[0].label == HAPPY


def test_bgr_and_rgb_give_the_same_answer(fresh):
    sample = samples.one_face()
    a = fresh.process(sample.rgb, 0.0, "rgb").faces[0]
    fresh.reset()
    b = fresh.process(sample.bgr, 0.0, "bgr").faces[0]
    # the face mesh (tracking mode) carries state across calls, so landmarks move by a fraction of a pixel
    assert a.label == b.label
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=2e-3)


# --- several faces: ids, one batched call ------------------------------------------------------------------------
def test_five_faces_in_one_batched_call(fresh):
    counting = CountingBackend(fresh.temporal.backend)
    fresh.temporal.backend = counting
    try:
        sample = samples.many_faces(5)
        for i in range(3):
            result = fresh.process(sample.rgb, i / 30)
    finally:
        fresh.temporal.backend = counting.real
    assert counting.calls == [5, 5, 5]
    assert len(result.faces) == 5
    assert sorted(f.face_id for f in result.faces) == [1, 2, 3, 4, 5]
    assert sum(f.label == HAPPY for f in result.faces) >= 4


def test_ids_follow_moving_faces(fresh):
    ids_by_side = {}
    for t in range(8):
        frame = samples.compose([samples.Placement(150 + 8 * t, 240, 110), samples.Placement(480 - 8 * t, 240, 110,
                                                                                            mirror=True)])
        result = fresh.process(frame.rgb, t / 30)
        assert len(result.faces) == 2
        for f in result.faces:
            side = "left" if (f.box[0] + f.box[2]) / 2 < 320 else "right"
            ids_by_side.setdefault(side, set()).add(f.face_id)
    assert ids_by_side == {"left": {1}, "right": {2}} or ids_by_side == {"left": {2}, "right": {1}}


def test_min_hits_delays_reporting():
    cfg = PipelineConfig.from_flat({"tracking.min_hits": 3, "detector.use_mesh": False})
    with EmotionPipeline(cfg) as p:
        counts = [len(p.process(samples.one_face().rgb, t / 30).faces) for t in range(4)]
    assert counts == [0, 0, 1, 1]


# --- bad input ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("frame, color, message", [
    (np.zeros((0, 0, 3), np.uint8), "rgb", "empty"),
    (np.zeros((480, 640, 3), np.float32), "rgb", "dtype"),
    (np.zeros((480, 640, 4), np.uint8), "rgb", "HxWx3"),
    (np.zeros((480, 640, 3), np.uint8), "yuv", "colour"),
    (np.zeros((480, 640), np.uint8), "bgr", "HxWx3"),
    ("not an image", "rgb", "numpy array"),
])
def test_bad_frames_are_refused_and_the_next_frame_works(fresh, frame, color, message):
    before = fresh.stats.failed
    with pytest.raises(InvalidFrameError, match=message):
        fresh.process(frame, 0.0, color)
    assert fresh.stats.failed == before + 1
    assert len(fresh.process(samples.one_face().rgb, 1.0).faces) == 1


def test_bad_stamp_is_refused(fresh):
    with pytest.raises(InvalidFrameError, match="stamp"):
        fresh.process(samples.one_face().rgb, float("nan"))


def test_nan_model_output_drops_only_that_frame(fresh):
    real = fresh.temporal.backend

    class PoisonOnce(CountingBackend):
        def predict(self, batch):
            out = self.real.predict(batch)
            if not self.calls:
                self.calls.append(1)
                out = out.copy()
                out[0, 0] = np.nan
                self.real._finish(out, out.shape[1], "model", logits=False)  # the backend's own check
            return out

    fresh.temporal.backend = PoisonOnce(real)
    try:
        with pytest.raises(ModelOutputError, match="NaN/inf"):
            fresh.process(samples.one_face().rgb, 0.0)
        assert len(fresh.process(samples.one_face().rgb, 0.1).faces) == 1
    finally:
        fresh.temporal.backend = real
    assert issubclass(ModelOutputError, FrameError)


# --- configuration -------------------------------------------------------------------------------------------------
def test_from_flat_reads_every_node_parameter():
    flat = {p.name: p.default for p in PARAMETERS if p.pipeline}
    assert set(flat) == set(FLAT_KEYS)
    cfg = PipelineConfig.from_flat(flat)
    assert cfg.to_flat() == flat


def test_from_flat_maps_names():
    cfg = PipelineConfig.from_flat({"detector.model": "full", "detector.min_face_size": 40.0, "tracking.max_misses": 2,
                                    "tracking.iou_threshold": 0.3, "smoothing": 0.5, "fan_window": 0,
                                    "detector.use_mesh": False, "backend": "onnxruntime"})
    assert cfg.detector.model == "full" and cfg.detector.min_face_size == 40 and not cfg.detector.use_mesh
    assert cfg.tracker.max_misses == 2 and cfg.tracker.iou_threshold == 0.3
    assert cfg.smoothing == 0.5 and cfg.backend == "onnxruntime"


@pytest.mark.parametrize("flat, message", [
    ({"detector.colour": "x"}, "unknown pipeline parameter 'detector.colour'; known: model, backend"),
    ({"backend": "openvino"}, "'backend' = 'openvino' is not one of auto, tensorrt, onnxruntime, torch"),
    ({"detector.model": "long"}, "'detector.model' = 'long' is not one of short, full"),
    ({"detector.backend": "dlib"}, "is not one of auto, retinaface, mediapipe, opencv"),
    ({"detector.max_faces": "8"}, "'detector.max_faces' = '8' must be a int"),
    ({"detector.use_mesh": 1}, "'detector.use_mesh' = 1 must be a bool"),
    ({"smoothing": 1.5}, "'smoothing' = 1.5 must be between 0"),
    ({"tracking.min_hits": 0}, "min_hits"),
])
def test_from_flat_refuses_bad_values(flat, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PipelineConfig.from_flat(flat)


def test_smoothing_at_run_time(fresh):
    from fer_ros.datatypes import Detection
    from fer_ros.faces.align import align_batch

    fresh.set_smoothing(0.8)
    try:
        frames = [samples.one_face(face_width=100 + 30 * i, angle_deg=10 * i).rgb for i in range(2)]
        results = [fresh.process(f, i / 30).faces[0] for i, f in enumerate(frames)]
        raw = [fresh.backend.predict(align_batch(f, "rgb", [Detection(r.box, 1.0, r.landmarks)], fresh.card))[0]
               for f, r in zip(frames, results)]  # what the model said for exactly those faces
        np.testing.assert_allclose(results[0].probabilities, raw[0], atol=1e-6)
        np.testing.assert_allclose(results[1].probabilities, 0.8 * raw[0] + 0.2 * raw[1], atol=1e-6)
        assert results[1].frames_used == 1
        with pytest.raises(ConfigError):
            fresh.set_smoothing(1.0)
    finally:
        fresh.set_smoothing(0.0)
    assert fresh.config.smoothing == 0.0 and fresh.temporal.smoother.state == {}


def test_run_image_command(capsys):
    from fer_ros import run_image

    parser = argparse.ArgumentParser()
    run_image.add_arguments(parser)  # the command's own options and defaults, not a hand-made copy of them
    assert run_image.run(parser.parse_args(["--sample"])) == 0
    out = capsys.readouterr().out
    assert "sample:astronaut: 1 face(s)" in out and "happy" in out


def test_reset_pipeline_gives_what_a_fresh_one_gives():
    """reset() also restarts the face mesh's tracking state (the bag evaluator relies on it between recordings)."""
    from fer_ros.samples import ClipConfig, camera_clip

    frames = [f.rgb for _, f in camera_clip(ClipConfig(frames=8, faces=2, seed=3))]
    with EmotionPipeline() as used:
        for i, frame in enumerate(frames):
            used.process(frame, i / 30)
        used.reset()
        again = [used.process(frame, i / 30) for i, frame in enumerate(frames)]
    with EmotionPipeline() as fresh:
        first = [fresh.process(frame, i / 30) for i, frame in enumerate(frames)]
    for a, b in zip(again, first):
        assert [f.face_id for f in a.faces] == [f.face_id for f in b.faces]
        for fa, fb in zip(a.faces, b.faces):
            np.testing.assert_allclose(fa.landmarks, fb.landmarks, atol=1e-4)
            np.testing.assert_allclose(fa.probabilities, fb.probabilities, atol=1e-5)
