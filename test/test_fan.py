"""Frame Attention Network: the aggregator's maths against a direct numpy evaluation of the formulas, masking,
frame-order invariance, a window of one, streaming (embed once per frame) and ONNX export with dynamic batch and T."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from fer_ros.errors import ConfigError
from fer_ros_training.networks import build_network, count_parameters
from fer_ros_training.networks.fan import FanAggregator

DIM = 16  # embedding size of the aggregator under test: small, the formulas do not depend on it
WINDOW = 8


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def formulas(f: np.ndarray, q0: np.ndarray, q1: np.ndarray, w: np.ndarray, b: np.ndarray):
    """The thesis's equations for ONE clip of real frames f (T, D), written out with numpy in float64."""
    alpha = np.array([sigmoid(fi @ q0) for fi in f])
    f_v = sum(a * fi for a, fi in zip(alpha, f)) / alpha.sum()
    pairs = [np.concatenate([fi, f_v]) for fi in f]
    beta = np.array([sigmoid(p @ q1) for p in pairs])
    clip = sum(a * bb * p for a, bb, p in zip(alpha, beta, pairs)) / (alpha * beta).sum()
    return w @ clip + b, alpha, beta


@pytest.fixture()
def aggregator() -> FanAggregator:
    torch.manual_seed(3)
    agg = FanAggregator(DIM, num_classes=7, window=WINDOW).double().eval()
    with torch.no_grad():  # larger query vectors than the default init, so the weights spread over (0, 1)
        agg.q0.weight.mul_(8.0)
        agg.q1.weight.mul_(8.0)
    return agg


def params(agg: FanAggregator):
    return (agg.q0.weight[0].detach().numpy(), agg.q1.weight[0].detach().numpy(),
            agg.classifier.weight.detach().numpy(), agg.classifier.bias.detach().numpy())


def test_matches_formulas_with_mask(aggregator):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(4, 6, DIM))
    lengths = [6, 3, 1, 5]
    mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
    emb[~mask] = rng.normal(size=(int((~mask).sum()), DIM)) * 1e3  # garbage in the empty slots
    with torch.no_grad():
        logits = aggregator(torch.from_numpy(emb), torch.from_numpy(mask)).numpy()
        _, alpha, beta = aggregator.attend(torch.from_numpy(emb), torch.from_numpy(mask))
    for i, n in enumerate(lengths):
        want, want_alpha, want_beta = formulas(emb[i, :n], *params(aggregator))
        np.testing.assert_allclose(logits[i], want, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(alpha[i, :n].numpy(), want_alpha, rtol=1e-10)
        np.testing.assert_allclose(beta[i, :n].numpy(), want_beta, rtol=1e-10)
        assert np.all(alpha[i, n:].numpy() == 0.0)  # masked frames get no weight
    a = alpha.numpy()
    assert a[mask].min() > 0.0 and a[mask].max() < 1.0 and a[mask].std() > 0.05  # attention is not uniform
    normalised = a / a.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(normalised.sum(axis=1), 1.0, rtol=1e-12)


def test_masked_frames_contribute_nothing(aggregator):
    emb = torch.randn(2, 5, DIM, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0, 1, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    poisoned = emb.clone()
    poisoned[~mask] = float("nan")
    with torch.no_grad():
        full = aggregator(poisoned, mask)
        kept0 = aggregator(emb[0:1, [0, 1, 3]], None)
        kept1 = aggregator(emb[1:2, [0]], None)
    assert torch.isfinite(full).all()
    torch.testing.assert_close(full[0:1], kept0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(full[1:2], kept1, rtol=1e-12, atol=1e-12)


def test_frame_order_does_not_matter(aggregator):
    emb = torch.randn(3, WINDOW, DIM, dtype=torch.float64)
    mask = torch.rand(3, WINDOW) > 0.3
    mask[:, 0] = True
    perm = torch.randperm(WINDOW)
    with torch.no_grad():
        torch.testing.assert_close(aggregator(emb, mask), aggregator(emb[:, perm], mask[:, perm]),
                                   rtol=1e-12, atol=1e-12)


def test_window_of_one_is_the_frame_itself():
    agg = FanAggregator(DIM, num_classes=7, window=1).double().eval()
    f = torch.randn(4, 1, DIM, dtype=torch.float64)
    with torch.no_grad():
        got = agg(f)
        want = agg.classifier(torch.cat([f[:, 0], f[:, 0]], dim=1))  # f_v = f_1, clip = [f_1 : f_1]
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ConfigError, match="1..1 frames"):
        agg(torch.randn(1, 2, DIM, dtype=torch.float64))


def test_streaming_equals_clip_forward_and_trains():
    torch.manual_seed(0)
    net = build_network("fan_tiny", window=4)
    assert count_parameters(build_network("fan")) == 11_185_223  # R-18 embedder + attention + classifier
    clips = torch.randn(2, 4, 3, 64, 64)
    net.eval()
    with torch.no_grad():
        whole = net(clips)
        per_frame = torch.stack([net.embedder(clips[:, t]) for t in range(4)], dim=1)  # one pass per new frame
        streamed = net.aggregator(per_frame, torch.ones(2, 4, dtype=torch.bool))
    torch.testing.assert_close(whole, streamed, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        assert torch.equal(net(clips), whole)  # eval mode is deterministic
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    labels = torch.tensor([1, 5])
    loss0 = torch.nn.functional.cross_entropy(net(clips), labels)
    opt.zero_grad()
    loss0.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert net.aggregator.q0.weight.grad.abs().sum() > 0 and net.aggregator.q1.weight.grad.abs().sum() > 0
    opt.step()


def test_both_halves_export_to_onnx_with_dynamic_batch_and_frames(tmp_path):
    torch.manual_seed(1)
    net = build_network("fan_tiny", window=6).eval()
    emb_path, agg_path = tmp_path / "embedder.onnx", tmp_path / "aggregator.onnx"
    torch.onnx.export(net.embedder, (torch.randn(2, 3, 64, 64),), str(emb_path), dynamo=False, opset_version=17,
                      input_names=["frames"], output_names=["embeddings"],
                      dynamic_axes={"frames": {0: "batch"}, "embeddings": {0: "batch"}})
    d = net.aggregator.embedding_dim
    torch.onnx.export(net.aggregator, (torch.randn(2, 3, d), torch.ones(2, 3, dtype=torch.bool)), str(agg_path),
                      dynamo=False, opset_version=17, input_names=["embeddings", "mask"], output_names=["logits"],
                      dynamic_axes={"embeddings": {0: "batch", 1: "frames"}, "mask": {0: "batch", 1: "frames"},
                                    "logits": {0: "batch"}})
    emb_sess = ort.InferenceSession(str(emb_path), providers=["CPUExecutionProvider"])
    agg_sess = ort.InferenceSession(str(agg_path), providers=["CPUExecutionProvider"])
    frames = torch.randn(5, 3, 64, 64)
    with torch.no_grad():
        want_emb = net.embedder(frames).numpy()
    np.testing.assert_allclose(emb_sess.run(None, {"frames": frames.numpy()})[0], want_emb, atol=1e-4)
    for n, t in ((1, 1), (3, 6), (2, 4)):
        emb = np.random.default_rng(t).normal(size=(n, t, d)).astype(np.float32)
        mask = np.ones((n, t), dtype=bool)
        mask[0, t // 2:] = t == 1  # first clip half empty (except for T=1)
        with torch.no_grad():
            want = net.aggregator(torch.from_numpy(emb), torch.from_numpy(mask)).numpy()
        got = agg_sess.run(None, {"embeddings": emb, "mask": mask})[0]
        np.testing.assert_allclose(got, want, atol=1e-4)
