"""Our Residual Masking Network is the reference network (``rmn`` wheel, ``resmasking_dropout1``).

The reference's randomly initialised state dict (with random BatchNorm statistics so every branch counts) goes
through ``rmn_state_dict_to_ours`` into our full-size RMN; both run the same real face image in eval mode. The
forward runs at 64x64 (the architecture accepts any multiple of 32) to keep this test at a few seconds; parameter
count and key mapping are checked on the full-size networks.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from skimage import data, transform

from fer_ros.errors import ConfigError, ModelLoadError
from fer_ros_training.networks import build_network, count_parameters
from fer_ros_training.networks.rmn import rmn_state_dict_to_ours
from rmn_reference import load_reference_resmasking, randomize_norm_layers

REFERENCE_PARAMETERS = 137_796_423  # what rmn.models.resmasking_dropout1 builds (the paper says 142.9 M)
TEST_SIDE = 64  # smallest convenient side the four masking U-Nets accept (multiple of 32)


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    reference = load_reference_resmasking().resmasking_dropout1(in_channels=3, num_classes=7)
    randomize_norm_layers(reference.state_dict())
    ours = build_network("rmn")
    return reference.eval(), ours.eval()


def face_batch(side: int = TEST_SIDE) -> torch.Tensor:
    """The astronaut's face (public domain) and its mirror image, ImageNet-normalised, (2, 3, side, side)."""
    face = data.astronaut()[20:260, 140:380].astype(np.float32) / 255.0
    face = transform.resize(face, (side, side), anti_aliasing=True).astype(np.float32)
    face = (face - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    x = torch.from_numpy(face).permute(2, 0, 1)
    return torch.stack([x, x.flip(-1)])


def test_parameter_count_equals_reference(pair):
    reference, ours = pair
    assert count_parameters(reference) == REFERENCE_PARAMETERS
    assert count_parameters(ours) == REFERENCE_PARAMETERS


def test_key_map_covers_every_tensor(pair):
    reference, ours = pair
    ref_sd = reference.state_dict()
    mapped = rmn_state_dict_to_ours(ref_sd)
    our_sd = ours.state_dict()
    assert set(mapped) == set(our_sd)
    for key, value in mapped.items():
        assert value.shape == our_sd[key].shape, key
    # The only dropped keys are the reference's second names for projection shortcuts: same storage as a kept one.
    kept_storages = {v.data_ptr() for v in mapped.values()}
    aliases = [k for k in ref_sd if re.match(r"mask\d\.downsample\d", k)]
    assert aliases and len(mapped) + len(aliases) == len(ref_sd)
    assert all(ref_sd[k].data_ptr() in kept_storages for k in aliases)


def test_same_logits_as_reference(pair):
    reference, ours = pair
    x = face_batch()
    with torch.no_grad():
        before = ours(x)
        ours.load_state_dict(rmn_state_dict_to_ours(reference.state_dict()), strict=True)
        expected = reference(x)
        got = ours(x)
    assert not torch.allclose(before, expected, atol=1e-2)  # the comparison is not trivially true
    assert expected.abs().max() > 1.0 and expected.std() > 0.1  # masks and blocks all contributed a signal
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
    assert torch.equal(got.argmax(1), expected.argmax(1))


def test_checkpoint_forms_and_foreign_keys(pair):
    reference, _ = pair
    sd = reference.state_dict()
    wrapped = {"net": {f"module.{k}": v for k, v in sd.items()}, "best_val_acc": 0.0}
    assert set(rmn_state_dict_to_ours(wrapped)) == set(rmn_state_dict_to_ours(sd))
    with pytest.raises(ModelLoadError, match="mask2.conv9"):
        rmn_state_dict_to_ours({**sd, "mask2.conv9.bn1.weight": torch.ones(1)})


def test_input_side_must_fit_the_masks():
    tiny = build_network("rmn_tiny").eval()
    with pytest.raises(ConfigError, match="multiples of 32"):
        tiny(torch.zeros(1, 3, 72, 72))
