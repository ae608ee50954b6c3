"""``fer-ros import-rmn``: the official Residual Masking Network checkpoint -> our RMN -> ONNX + card.

The reference code (``rmn`` package, MIT) trains ``resmasking_dropout1`` and saves ``{"net": state_dict, ...}``; its
released FER2013 file is ``Z_resmasking_dropout1_rot30_2019Nov30_13.32`` (the user downloads it; nothing is fetched
here). Its keys are renamed by ``rmn_state_dict_to_ours`` and loaded strictly into our ``rmn``.

How the reference feeds the network, and so what the card says: FER2013's 48x48 gray faces replicated into three
channels, resized to 224x224, pixel/255 with no mean/std. The exported graph therefore takes one gray channel and
repeats it inside (``color: gray``, mean 0, std 1): exactly the training distribution, and a third of the input
bandwidth. The reference demo crops a square of 1.1x the detector box (``crop.scale: 1.1``).

Example::

    fer-ros import-rmn --checkpoint ~/Downloads/Z_resmasking_dropout1_rot30_2019Nov30_13.32 --out models/rmn_fer2013
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fer_ros.cli_options import add_deprecated
from fer_ros.errors import ConfigError
from fer_ros.model_card import FER2013_LABELS

RMN_INPUT_SIDE = 224  # the reference's image_size (rmn/configs/fer2013_config.json)
RMN_CROP_SCALE = 1.1  # the reference demo's square crop around the detector box
RMN_SOURCE = ("Residual Masking Network (Pham, Vu, Tran, ICPR 2020), official FER2013 checkpoint of "
              "github.com/phamquiluan/ResidualMaskingNetwork (resmasking_dropout1)")
RMN_LICENSE = "MIT (code and released weights, Luan Pham)"
RMN_PAPER_METRICS = {"fer2013_test_accuracy_paper": 0.7414, "fer2013_test_accuracy_ensemble7_paper": 0.7682}


class GrayToThreeChannels(nn.Module):
    """Feeds a 1-channel batch to a 3-channel network by repeating the channel (how FER2013 was fed in training)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.expand(-1, 3, -1, -1))


def load_reference_rmn(checkpoint: Path | str, trust: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """Our full-size RMN with the reference checkpoint's weights (eval mode), and the checkpoint's other entries."""
    from fer_ros_training.export.checkpoints import load_weights, split_checkpoint
    from fer_ros_training.networks import build_network
    from fer_ros_training.networks.rmn import rmn_state_dict_to_ours

    ckpt = split_checkpoint(checkpoint, trust=trust)
    state = rmn_state_dict_to_ours(ckpt.state_dict)
    num_classes = int(state["fc.1.weight"].shape[0]) if "fc.1.weight" in state else len(FER2013_LABELS)
    model = load_weights(build_network("rmn", num_classes=num_classes), state, checkpoint)
    return model, ckpt.info


def checkpoint_metrics(info: dict[str, Any]) -> dict[str, Any]:
    """The reference trainer's scalar results kept in its checkpoint (``best_val_acc``, ``test_acc``, ...)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if ("acc" in key or "loss" in key) and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", nargs="?", help="the official RMN checkpoint file you downloaded")
    add_deprecated(parser, "--checkpoint", "the positional CHECKPOINT", dest="checkpoint", metavar="FILE")
    parser.add_argument("--out", required=True, help="output model folder, e.g. models/rmn_fer2013")
    parser.add_argument("--id", default=None, help="model id (default: the --out folder name)")
    parser.add_argument("--input-size", type=int, default=RMN_INPUT_SIDE,
                        help=f"square input side, a multiple of 32 (default {RMN_INPUT_SIDE}, as trained)")
    parser.add_argument("--data", default=None, help="the user's images for the parity check (default: built-in)")
    parser.add_argument("--faces", choices=("detect", "crops"), default="detect",
                        help="--data holds full frames (detect) or face crops (crops)")
    parser.add_argument("--num-faces", type=int, default=2,
                        help="faces for the parity check (the full RMN costs ~0.5 s per face on a CPU)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow full unpickling (the reference trainer may store numpy scalars)")


def run(args: argparse.Namespace) -> int:
    from fer_ros_training.export.card_fields import card_template, provenance
    from fer_ros_training.export.face_samples import load_faces
    from fer_ros_training.export.onnx_export import ExportError, export_model

    if not args.checkpoint:
        raise ConfigError("no checkpoint given: fer-ros import-rmn <downloaded RMN checkpoint> --out models/<id>")
    out = Path(args.out)
    try:
        model, info = load_reference_rmn(args.checkpoint, trust=args.trust_checkpoint)
        card = card_template(args.id or out.name, "rmn", args.input_size, args.input_size, "gray", [0.0], [1.0],
                             crop_scale=RMN_CROP_SCALE)
        metrics = {**RMN_PAPER_METRICS, **checkpoint_metrics(info)}
        extra = provenance(Path(args.checkpoint), "FER2013 (Goodfellow et al. 2013), Training split", metrics,
                           RMN_LICENSE, RMN_SOURCE)
        faces = load_faces(card, args.data, mode=args.faces, limit=args.num_faces, builtin_count=args.num_faces)
        result = export_model(GrayToThreeChannels(model), card, out, faces.inputs, extra=extra)
    except ExportError as exc:
        print(f"fer-ros import-rmn: FAILED: {exc}", file=sys.stderr)
        return 1
    for report in result.parity:
        print(report)
    print(f"model: {result.files['model']} ({result.files['model'].stat().st_size / 1e6:.0f} MB)")
    print(f"card: {result.card_path}")
    return 0
