"""Inception-ResNet v1: the paper's feature-map sizes and channel counts at 224x224, the PReLU option, width and
padding options, FLOPs against a hand count, real training steps on aligned drawn faces, ONNX export."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aligned_synthetic import aligned_synthetic_faces
from fer_ros.errors import ConfigError
from fer_ros.model_card import FER2013_LABELS, card_from_dict
from fer_ros_training.flops import count_flops
from fer_ros_training.networks import build_network, count_parameters
from fer_ros_training.networks.inception_resnet import BLOCK_SCALES, InceptionResNetV1, inception_resnet


def test_paper_layout_at_224():
    model = build_network("inception_resnet").eval()
    assert isinstance(model, InceptionResNetV1)
    assert count_parameters(model) == 20_975_879
    assert (len(model.blocks_a), len(model.blocks_b), len(model.blocks_c)) == (5, 10, 5)
    assert [b.scale for b in (model.blocks_a[0], model.blocks_b[0], model.blocks_c[0])] == list(BLOCK_SCALES)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        stem = model.stem(x)
        a = model.reduction_a(model.blocks_a(stem))
        b = model.reduction_b(model.blocks_b(a))
        logits = model(x)
    assert stem.shape == (1, 256, 25, 25)
    assert a.shape == (1, 896, 12, 12)
    assert b.shape == (1, 1792, 5, 5)
    assert logits.shape == (1, 7)
    assert not any(isinstance(m, nn.PReLU) for m in model.modules())


def test_prelu_replaces_every_relu():
    relu = inception_resnet(width=0.25, repeats=(1, 1, 1))
    prelu = inception_resnet(width=0.25, repeats=(1, 1, 1), activation="prelu")
    n_relu = sum(isinstance(m, nn.ReLU) for m in relu.modules())
    prelus = [m for m in prelu.modules() if isinstance(m, nn.PReLU)]
    assert n_relu > 0 and len(prelus) == n_relu
    assert not any(isinstance(m, nn.ReLU) for m in prelu.modules())
    # one learnt slope per channel: the extra parameters are exactly the PReLU slopes
    assert count_parameters(prelu) - count_parameters(relu) == sum(p.num_parameters for p in prelus)
    with pytest.raises(ConfigError, match="activation"):
        inception_resnet(activation="gelu")


def test_small_inputs_need_padding_and_width_scales():
    valid = inception_resnet(width=0.125, repeats=(1, 1, 1)).eval()
    with pytest.raises(ConfigError, match="padded=True"):
        valid(torch.randn(1, 3, 64, 64))
    assert valid(torch.randn(1, 3, 75, 75)).shape == (1, 7)  # the smallest side of the valid layout
    tiny = build_network("inception_resnet_tiny", num_classes=4).eval()
    assert tiny.padded and tiny(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    assert tiny.stem(torch.randn(1, 3, 64, 64)).shape[-1] == 8  # "same" padding: exactly 1/8
    assert count_parameters(tiny) < count_parameters(build_network("inception_resnet")) / 100


def test_flops_match_a_hand_count():
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 16, 5))
    got = count_flops(conv, torch.randn(2, 3, 16, 16))
    macs = 16 * 16 * 8 * 3 * 3 * 3 + 8 * 16 * 16 * 5  # per sample: conv output pixels x kernel volume, + linear
    assert got.batch == 2 and got.per_sample == 2 * macs and got.macs == macs
    full = count_flops(build_network("inception_resnet"), torch.randn(1, 3, 224, 224))
    assert 5.5e9 < full.per_sample < 7e9  # 3.1 G multiply-accumulates at 224x224
    assert sum(full.per_module.values()) == full.total and set(full.per_module) >= {"stem", "blocks_b", "fc"}


@pytest.mark.parametrize("activation", ["relu", "prelu"])
def test_training_steps_on_aligned_faces(activation):
    crops, labels = aligned_synthetic_faces(28, side=64, seed=5)
    x = torch.from_numpy((np.stack([c.crop for c in crops]).astype(np.float32) / 127.5 - 1).transpose(0, 3, 1, 2))
    y = torch.tensor(labels)
    torch.manual_seed(0)
    model = build_network("inception_resnet_tiny", activation=activation)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses)) and losses[-1] < 0.7 * losses[0], losses


def test_export(tmp_path):
    from fer_ros_training.export.onnx_export import export_model

    crops, _ = aligned_synthetic_faces(4, side=64, seed=6)
    x = (np.stack([c.crop for c in crops]).astype(np.float32) / 127.5 - 1).transpose(0, 3, 1, 2)
    card = card_from_dict({"id": "irv1_tiny_test", "architecture": "inception_resnet_tiny", "files": {"model": "x"},
                           "input": {"height": 64, "width": 64, "color": "rgb", "mean": [0.5] * 3, "std": [0.5] * 3},
                           "labels": list(FER2013_LABELS)})
    torch.manual_seed(0)
    result = export_model(build_network("inception_resnet_tiny", activation="prelu").eval(), card, tmp_path, x)
    assert all(r.ok for r in result.parity) and result.files["model"].stat().st_size > 100_000
