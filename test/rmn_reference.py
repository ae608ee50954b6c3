"""Load the reference Residual Masking Network code from the ``rmn`` wheel (MIT) without ``import models``.

The wheel also installs top-level ``models`` and ``utils`` packages that would shadow anyone's modules of those names,
so its files are loaded by path under a private package name. Its ``rmn/models/utils.py`` defines nothing (its
``load_state_dict_from_url`` import from torchvision was removed), so the one helper ``resnet.py`` imports from it is
provided from ``torch.hub`` (where torchvision's came from); nothing of the networks is replaced.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch

REFERENCE_PACKAGE = "_rmn_reference"  # private name: never collides with an importable package


def load_reference_resmasking() -> types.ModuleType:
    """``rmn/models/resmasking.py`` as a module; skips the calling test when the wheel is not installed."""
    if f"{REFERENCE_PACKAGE}.resmasking" in sys.modules:
        return sys.modules[f"{REFERENCE_PACKAGE}.resmasking"]
    spec = importlib.util.find_spec("rmn")
    if spec is None or spec.origin is None:
        pytest.skip("the rmn wheel is not installed: pip install --no-deps -r requirements/nodeps.txt")
    models_dir = Path(spec.origin).parent / "models"
    package = types.ModuleType(REFERENCE_PACKAGE)
    package.__path__ = [str(models_dir)]
    sys.modules[REFERENCE_PACKAGE] = package
    helpers = types.ModuleType(f"{REFERENCE_PACKAGE}.utils")
    helpers.load_state_dict_from_url = torch.hub.load_state_dict_from_url
    sys.modules[helpers.__name__] = helpers
    file_spec = importlib.util.spec_from_file_location(f"{REFERENCE_PACKAGE}.resmasking", models_dir / "resmasking.py")
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[file_spec.name] = module
    file_spec.loader.exec_module(module)
    return module


def randomize_norm_layers(state_dict: dict[str, torch.Tensor], seed: int = 0) -> None:
    """Give every BatchNorm random statistics and affine terms (and every bias a random value), in place.

    A fresh network has running mean 0 / var 1 and the masking units' last BN scale at 0, which would leave their
    residual branches silent; random values make every branch of both networks count in the comparison.
    """
    gen = torch.Generator().manual_seed(seed)
    for key, value in state_dict.items():
        if not value.is_floating_point():
            continue
        if key.endswith("running_var"):
            value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
        elif key.endswith("running_mean"):
            value.copy_(torch.randn(value.shape, generator=gen) * 0.1)
        elif value.dim() == 1 and key.endswith("weight"):  # 1-d weights are BatchNorm scales
            value.copy_(1.0 + 0.2 * torch.randn(value.shape, generator=gen))
        elif value.dim() == 1 and key.endswith("bias"):
            value.copy_(0.1 * torch.randn(value.shape, generator=gen))
