"""``fer-ros validate-engine``: an engine (or any backend's run of a model) against its ONNX on held-out faces.

Example (on the robot, after ``fer-ros build-engine``)::

    fer-ros validate-engine models/rmn_fer2013/tensorrt/fp16.trt10.3.0.orin-sm87 --data ~/faces_test

The reference is the ONNX the engine was built from (the TensorRT card's ``onnx_*`` files) run by ONNX Runtime on
the CPU; ``--reference`` names another. Without ``--data`` the built-in public-domain faces are used (no accuracy,
probability differences only). Exit 0 = pass, 1 = fail (NaN anywhere, probabilities or accuracy off), 2 = error.
"""
from __future__ import annotations

import argparse

from fer_ros.cli_options import add_deprecated
from fer_ros.errors import ConfigError
from fer_ros_training.export.face_samples import FACE_MODES
from fer_ros_training.export.validate import DEFAULT_MAX_ACCURACY_DROP, DEFAULT_MAX_PROB_DIFF

DEFAULT_BUILTIN_FACES = 32  # faces used when the user gives no data: astronaut variants and LFW faces


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("engine", nargs="?", metavar="ENGINE",
                        help="the model to check: a TensorRT card folder (or any model id, folder or model.yaml)")
    add_deprecated(parser, "--engine", "the positional ENGINE", dest="engine", metavar="ENGINE")
    parser.add_argument("--backend", choices=("tensorrt", "onnxruntime", "torch"), default="tensorrt",
                        help="backend that runs ENGINE (default tensorrt)")
    parser.add_argument("--reference", default=None, help="reference ONNX model (default: the engine's onnx_*)")
    parser.add_argument("--data", default=None, help="held-out images, ROOT/<label>/* (split.csv: the test split)")
    parser.add_argument("--faces", choices=FACE_MODES, default="detect",
                        help="--data holds full frames (detect) or face crops (crops)")
    parser.add_argument("--split", default="test", help="split of ROOT/split.csv to use (default test)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images")
    parser.add_argument("--max-prob-diff", type=float, default=DEFAULT_MAX_PROB_DIFF,
                        help="largest probability difference to the reference accepted on any face")
    parser.add_argument("--max-accuracy-drop", type=float, default=DEFAULT_MAX_ACCURACY_DROP,
                        help="largest accuracy loss to the reference accepted (a fraction)")


def run(args: argparse.Namespace) -> int:
    from fer_ros.inference import create_backend
    from fer_ros.registry import resolve_model
    from fer_ros_training.export.face_samples import load_faces
    from fer_ros_training.export.validate import compare, reference_card

    if not args.engine:
        raise ConfigError("no engine given: fer-ros validate-engine models/<id>/tensorrt/<target> [--data DIR]")
    card = resolve_model(args.engine)
    ref_card = resolve_model(args.reference) if args.reference else reference_card(card)
    if ref_card.labels != card.labels or ref_card.input != card.input:
        raise ConfigError(f"{args.engine} and its reference {ref_card.directory} disagree on labels or input: "
                          f"give the ONNX model it was built from with --reference")
    faces = load_faces(card, args.data, mode=args.faces, limit=args.limit, split=args.split,
                       builtin_count=DEFAULT_BUILTIN_FACES)
    print(f"held-out faces: {faces.report()}")
    reference = create_backend(ref_card, "onnxruntime", device="cpu")
    candidate = create_backend(card, args.backend)
    print(f"reference: {reference.name}; candidate: {candidate.name}")
    report = compare(reference, candidate, faces.inputs, faces.labels, args.max_prob_diff,
                     args.max_accuracy_drop)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1
