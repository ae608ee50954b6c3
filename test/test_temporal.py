"""Temporal stage: EMA maths per track, and FAN streaming (one embedder pass per frame) equal to recomputing.

The FAN is a real (tiny, seeded) Frame Attention Network from the training package, exported to ONNX here as two
graphs and run by onnxruntime through the ONNX Runtime backend; the reference recomputes every window in torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_ros.datatypes import Detection
from fer_ros.errors import ConfigError
from fer_ros.faces.align import align_batch
from fer_ros.inference import create_backend
from fer_ros.inference.onnxruntime_backend import OnnxRuntimeBackend
from fer_ros.model_card import load_card
from fer_ros.registry import resolve_model
from fer_ros.temporal import EmaSmoother, FanBuffers, TemporalStage
from fer_ros import samples

torch = pytest.importorskip("torch")

WINDOW = 4  # the tiny FAN's window
FRAMES = 9  # frames streamed per test clip
SIDE = 64


# --- EMA --------------------------------------------------------------------------------------------------------
def test_ema_off_is_identity():
    p = np.random.default_rng(0).dirichlet(np.ones(7), size=3).astype(np.float32)
    assert EmaSmoother(0.0).update([1, 2, 3], p) is p


def test_ema_maths_per_track():
    rng = np.random.default_rng(1)
    ema = EmaSmoother(0.7)
    seq = rng.dirichlet(np.ones(7), size=(5, 2)).astype(np.float32)
    expected = {1: seq[0, 0], 2: None}
    ema.update([1], seq[0, :1])
    for t in range(1, 5):
        out = ema.update([1, 2], seq[t])
        expected[1] = 0.7 * expected[1] + 0.3 * seq[t, 0]
        expected[2] = seq[t, 1] if expected[2] is None else 0.7 * expected[2] + 0.3 * seq[t, 1]
        np.testing.assert_allclose(out[0], expected[1], atol=1e-6)
        np.testing.assert_allclose(out[1], expected[2], atol=1e-6)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    ema.drop([1])
    np.testing.assert_allclose(ema.update([1], seq[0, :1])[0], seq[0, 0])  # a reborn id starts afresh


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.0])
def test_ema_factor_bounds(bad):
    with pytest.raises(ConfigError, match="smoothing"):
        EmaSmoother(bad)


def test_stage_smooths_real_model_outputs():
    backend = create_backend(resolve_model(), "onnxruntime")
    frames = [samples.one_face(face_width=110 + 8 * i, angle_deg=4 * i) for i in range(3)]
    batches = [align_batch(f.rgb, "rgb", [Detection(f.faces[0].box, 1.0, f.faces[0].landmarks)], backend.card)
               for f in frames]
    raw = [backend.predict(b)[0] for b in batches]
    stage = TemporalStage(backend, smoothing=0.6)
    outs = [stage.run([7], b) for b in batches]
    expected = raw[0]
    for t in range(1, 3):
        expected = 0.6 * expected + 0.4 * raw[t]
    np.testing.assert_allclose(outs[-1].probabilities[0], expected, atol=1e-6)
    assert outs[-1].frames_used.tolist() == [1]
    with pytest.raises(ConfigError, match="single-frame"):
        TemporalStage(backend, fan_window=3)


# --- ring buffers ------------------------------------------------------------------------------------------------
def test_ring_buffer_order_mask_and_drop():
    buf = FanBuffers(window=3)
    for t in range(5):
        ids = [1] if t < 2 else [1, 2]
        emb = np.array([[10.0 * tid + t] for tid in ids], np.float32)
        windows, mask, used = buf.push(ids, emb)
    # track 1 saw t = 0..4 -> holds 2, 3, 4 (oldest first); track 2 saw t = 2..4
    np.testing.assert_array_equal(windows[:, :, 0], [[12, 13, 14], [22, 23, 24]])
    assert mask.all() and used.tolist() == [3, 3]
    buf.drop([2])
    windows, mask, used = buf.push([2, 1], np.array([[99.0], [15.0]], np.float32))
    assert used.tolist() == [1, 3]
    np.testing.assert_array_equal(mask, [[True, False, False], [True, True, True]])
    np.testing.assert_array_equal(windows[0, :, 0], [99, 0, 0])
    np.testing.assert_array_equal(windows[1, :, 0], [13, 14, 15])


# --- FAN streaming vs recomputing --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fan(tmp_path_factory):
    """(torch FanNetwork, its ONNX folder): exported by the training package's exporter as two graphs (embedder;
    aggregator over embeddings + float mask, dynamic N and T), as `fer-ros export` does."""
    from fer_ros.model_card import card_from_dict
    from fer_ros_training.export.onnx_export import export_model
    from fer_ros_training.networks import build_network

    torch.manual_seed(3)
    net = build_network("fan_tiny", num_classes=7, window=WINDOW).eval()
    d: Path = tmp_path_factory.mktemp("fan_tiny")
    card = card_from_dict({"id": "fan_tiny_test", "architecture": "fan_tiny", "format": "onnx",
                           "files": {"embedder": "embedder.onnx", "aggregator": "aggregator.onnx"},
                           "input": {"height": SIDE, "width": SIDE, "color": "rgb", "mean": [0.5] * 3,
                                     "std": [0.25] * 3},
                           "crop": {"scale": 1.25}, "labels": ["angry", "disgust", "fear", "happy", "sad",
                                                               "surprise", "neutral"],
                           "temporal": {"window": WINDOW}}, d)
    export_model(net, card, d, _clip_frames()[:, 0], output="logits")
    net.eval()  # export switches modes back and forth: keep the reference's dropout off
    assert not any(m.training for m in net.modules())
    return net, d


class CountingBackend(OnnxRuntimeBackend):
    """The real ONNX Runtime backend, counting how many faces go through the embedder (the expensive part)."""

    embedded = 0

    def _embed(self, batch):
        self.embedded += len(batch)
        return super()._embed(batch)


def _clip_frames() -> np.ndarray:
    """(FRAMES, 2, 3, 64, 64): two real faces per frame (the astronaut moving, and mirrored), aligned for FAN."""
    from fer_ros.model_card import card_from_dict

    card = card_from_dict({"id": "x", "files": {"model": "x"}, "labels": ["a", "b"],
                           "input": {"height": SIDE, "width": SIDE, "color": "rgb", "mean": [0.5] * 3,
                                     "std": [0.25] * 3}, "crop": {"scale": 1.25}})
    out = []
    for t in range(FRAMES):
        frame = samples.compose([samples.Placement(180 + 12 * t, 220, 100 + 4 * t, angle_deg=3 * t),
                                 samples.Placement(470 - 10 * t, 250, 120, angle_deg=-2 * t, mirror=True)])
        out.append(align_batch(frame.rgb, "rgb", [Detection(f.box, 1.0, f.landmarks) for f in frame.faces], card))
    return np.stack(out)


def _reference(net, clip: np.ndarray) -> np.ndarray:
    """Recompute: the whole window through the torch FAN (K backbone passes), softmax."""
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(clip[None])), dim=1)[0].numpy()


@pytest.mark.parametrize("fan_window", [0, 2])
def test_fan_streaming_equals_recomputing(fan, fan_window):
    net, folder = fan
    backend = CountingBackend(load_card(folder))
    stage = TemporalStage(backend, fan_window=fan_window)
    k = fan_window or WINDOW
    assert stage.window == k
    frames = _clip_frames()
    history: dict[int, list[np.ndarray]] = {1: [], 2: []}
    pairs = 0
    for t in range(FRAMES):
        ids = [1] if t < 3 else [1, 2]  # track 2 appears at frame 3
        batch = frames[t, :len(ids)] if ids == [1] else frames[t]
        out = stage.run(ids, batch)
        pairs += len(ids)
        for i, tid in enumerate(ids):
            history[tid].append(batch[i])
            window = np.stack(history[tid][-k:])
            assert out.frames_used[i] == len(window)
            np.testing.assert_allclose(out.probabilities[i], _reference(net, window), atol=1e-4)
    assert backend.embedded == pairs  # one backbone pass per face per frame, never K


def test_fan_buffers_die_with_their_track(fan):
    net, folder = fan
    stage = TemporalStage(create_backend(load_card(folder), "onnxruntime"))
    frames = _clip_frames()
    for t in range(5):
        out = stage.run([1], frames[t, :1])
    assert out.frames_used.tolist() == [WINDOW]
    stage.drop([1])  # what the pipeline does with tracker.removed
    out = stage.run([1], frames[5, :1])
    assert out.frames_used.tolist() == [1]
    np.testing.assert_allclose(out.probabilities[0], _reference(net, frames[5, :1]), atol=1e-4)


def test_fan_window_larger_than_the_model_is_refused(fan):
    _, folder = fan
    with pytest.raises(ConfigError, match=f"exceeds the window of model fan_tiny_test \\({WINDOW}\\)"):
        TemporalStage(create_backend(load_card(folder), "onnxruntime"), fan_window=WINDOW + 1)


def test_fan_predict_is_a_one_frame_clip(fan):
    net, folder = fan
    backend = create_backend(load_card(folder), "onnxruntime")
    faces = _clip_frames()[0]
    got = backend.predict(faces)
    for i in range(len(faces)):
        np.testing.assert_allclose(got[i], _reference(net, faces[i:i + 1]), atol=1e-4)
