"""``fer-ros export``: a training checkpoint (or several, as an ensemble) -> ONNX + model card, verified.

Examples::

    fer-ros export runs/rmn_fer2013/best.pt --out models/rmn_fer2013 --training-data "FER2013 train"
    fer-ros export a.pt b.pt c.pt --out models/rmn_ensemble   # ensemble
    fer-ros export runs/fan/best.pt --out models/fan_afew --window 16 --data ~/clips_frames

``--checkpoint FILE`` (repeatable) and ``--labels NAME ...`` are the deprecated spellings of the positional
checkpoints and of ``--classes a,b,c``.

The network, input size, colour, mean/std, crop and labels come from the checkpoint's training config; flags
override them (a bare state dict needs ``--network``). Parity is checked on real faces: the built-in public-domain
ones, or ``--data`` (the user's images, through the core's alignment). The export fails (exit 1) when the ONNX
checker or the parity check fails.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fer_ros.cli_options import add_deprecated, comma_list
from fer_ros.errors import ConfigError
from fer_ros_training.export.face_samples import FACE_MODES

DEFAULT_PARITY_FACES = 8  # real faces the parity check runs (batch 8 and batch 1): enough to catch layout bugs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", nargs="*", metavar="CHECKPOINT",
                        help="training checkpoint (.pt); several make an unweighted probability ensemble")
    add_deprecated(parser, "--checkpoint", "the positional CHECKPOINT", dest="old_checkpoint", append=True,
                   metavar="FILE")
    parser.add_argument("--out", required=True, help="output folder (the model id is its name unless --id)")
    parser.add_argument("--id", default=None, help="model id for the card (default: the --out folder name)")
    parser.add_argument("--network", default=None, help="architecture name (default: the checkpoint's config)")
    parser.add_argument("--output", choices=("probabilities", "logits"), default="probabilities",
                        help="what the graph outputs (default probabilities: softmax inside the graph)")
    parser.add_argument("--window", type=int, default=None,
                        help="FAN: frames the aggregator takes, the card's window (default: the training config's "
                             "network.kwargs.window, else the network default)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="network input height and width (default: the checkpoint's training config)")
    parser.add_argument("--color", choices=("gray", "rgb", "bgr"), default=None,
                        help="input colour (default: the checkpoint's training config)")
    parser.add_argument("--mean", type=float, nargs="+", default=None,
                        help="per-channel input mean (default: the checkpoint's training config)")
    parser.add_argument("--std", type=float, nargs="+", default=None,
                        help="per-channel input std (default: the checkpoint's training config)")
    parser.add_argument("--classes", type=comma_list, default=None, metavar="A,B,...",
                        help="comma-separated class names in output order (default: the training config's labels)")
    add_deprecated(parser, "--labels", "--classes a,b,c", dest="classes", convert=tuple, nargs="+", metavar="NAME")
    parser.add_argument("--crop-scale", type=float, default=None, help="face box enlargement of the crop")
    parser.add_argument("--training-data", default=None, help="name of the data it was trained on (for the card)")
    parser.add_argument("--metrics", action="append", default=[],
                        help="key=value or a JSON/YAML file of metrics for the card (repeatable)")
    parser.add_argument("--license", default=None, help="licence of the weights, for the card")
    parser.add_argument("--data", default=None, help="the user's images for the parity check (default: built-in)")
    parser.add_argument("--faces", choices=FACE_MODES, default="detect",
                        help="--data holds full frames (detect) or face crops (crops)")
    parser.add_argument("--num-faces", type=int, default=DEFAULT_PARITY_FACES, help="faces in the parity check")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow full unpickling of a checkpoint that holds more than tensors (trusted files only)")


def _card_fields(config: dict[str, Any] | None, args: argparse.Namespace) -> dict[str, Any]:
    """Card fields from the training config, then the command line on top."""
    fields: dict[str, Any] = {}
    network = args.network
    if config:
        from fer_ros_training.train_config import config_from_dict

        cfg = config_from_dict(config)
        fields = cfg.card_dict()
        fields["training_data"] = f"{cfg.data.format} {cfg.data.root}"
        network = network or cfg.network.name
    if not network:
        raise ConfigError("the checkpoint has no training config: name its architecture with --network")
    from fer_ros_training.train_config import default_input

    fields.setdefault("input", default_input(network))
    fields.setdefault("crop", {"scale": 1.0, "rotate": True})
    fields["architecture"] = network
    inp = dict(fields["input"])
    if args.input_size:
        inp["height"], inp["width"] = args.input_size
    if args.color:
        inp["color"] = args.color
        if not args.mean:
            inp.pop("mean", None)
        if not args.std:
            inp.pop("std", None)
    if args.mean:
        inp["mean"] = args.mean
    if args.std:
        inp["std"] = args.std
    fields["input"] = inp
    if args.classes:
        fields["labels"] = list(args.classes)
    if args.crop_scale:
        fields["crop"] = {**fields["crop"], "scale": args.crop_scale}
    return fields


def build_from_checkpoints(args: argparse.Namespace) -> tuple[Any, dict[str, Any], list[Any]]:
    """(model, card fields, loaded checkpoints) for the command line; ensembles when several checkpoints."""
    from fer_ros_training.export.checkpoints import load_weights, split_checkpoint
    from fer_ros_training.networks import build_network

    members, fields_list, loaded = [], [], []
    for path in args.checkpoint:
        ckpt = split_checkpoint(path, trust=args.trust_checkpoint)
        fields = _card_fields(ckpt.config, args)
        kwargs = dict(fields.pop("network_kwargs", {}) or {})
        if args.window and fields["architecture"].startswith("fan"):
            kwargs["window"] = args.window
        net = build_network(fields["architecture"], num_classes=len(fields.get("labels") or range(7)), **kwargs)
        from fer_ros_training.networks import network_spec

        if network_spec(fields["architecture"]).kind == "multimodal":
            raise ConfigError(f"{fields['architecture']} takes landmarks and HOG besides the image, which the node "
                              f"does not compute: export it from Python with export_model(..., extra_inputs=...)")
        members.append(load_weights(net, ckpt.state_dict, path))
        fields_list.append(fields)
        loaded.append(ckpt)
    first = fields_list[0]
    for path, other in zip(args.checkpoint[1:], fields_list[1:]):
        for key in ("input", "labels"):
            if other.get(key) != first.get(key):
                raise ConfigError(f"ensemble members must agree on {key}: {args.checkpoint[0]} has "
                                  f"{first.get(key)}, {path} has {other.get(key)}")
    if len(members) == 1:
        return members[0], first, loaded
    from fer_ros_training.networks.ensemble import ProbabilityEnsemble

    first = dict(first, architecture="ensemble(" + ",".join(f["architecture"] for f in fields_list) + ")")
    return ProbabilityEnsemble(members), first, loaded


def run(args: argparse.Namespace) -> int:
    from fer_ros_training.export.card_fields import card_template, parse_metrics, provenance
    from fer_ros_training.export.face_samples import load_faces
    from fer_ros_training.export.onnx_export import ExportError, export_model, is_fan

    out = Path(args.out)
    args.checkpoint = [*args.checkpoint, *getattr(args, "old_checkpoint", [])]
    if not args.checkpoint:
        raise ConfigError("no checkpoint given: fer-ros export runs/<run>/best.pt --out models/<id>")
    try:
        model, fields, loaded = build_from_checkpoints(args)
        if args.window and not is_fan(model):
            raise ConfigError(f"--window is the FAN aggregator's frame count; {fields['architecture']} is single-frame")
        # the card's window is the aggregator's capacity, what fer_ros.temporal buffers per track (train_config)
        window = int(model.window) if is_fan(model) else 1
        inp = fields["input"]
        labels = fields.get("labels") or None
        card = card_template(args.id or out.name, fields["architecture"], inp["height"], inp["width"], inp["color"],
                             inp.get("mean"), inp.get("std"), **({"labels": labels} if labels else {}),
                             crop_scale=fields["crop"].get("scale", 1.0), rotate=fields["crop"].get("rotate", True),
                             window=window)
        metrics = {}
        for ckpt in loaded:
            if isinstance(ckpt.info.get("metrics"), dict):
                metrics.update(ckpt.info["metrics"])
        metrics.update(parse_metrics(args.metrics))
        extra = provenance(Path(args.checkpoint[0]) if len(loaded) == 1 else None,
                           args.training_data or fields.get("training_data"), metrics, args.license)
        if fields.get("training"):
            extra["training"] = fields["training"]  # e.g. FAN's K segments per clip: how it learnt, not how it runs
        if len(loaded) > 1:
            from fer_ros.model_card import file_sha256

            extra["checkpoints"] = [{"file": c.path.name, "sha256": file_sha256(c.path)} for c in loaded]
        faces = load_faces(card, args.data, mode=args.faces, limit=args.num_faces, builtin_count=args.num_faces)
        print(f"parity faces: {faces.report()}")
        result = export_model(model, card, out, faces.inputs, output=args.output, extra=extra)
    except ExportError as exc:
        print(f"fer-ros export: FAILED: {exc}", file=sys.stderr)
        return 1
    for report in result.parity:
        print(report)
    for role, path in result.files.items():
        print(f"{role}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"card: {result.card_path}")
    return 0
