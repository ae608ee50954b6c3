"""``fer-ros build-engine``: TensorRT engines for an exported model, built on the machine that will run them.

Example (on the robot)::

    fer-ros build-engine --model models/rmn_fer2013 --precision fp16 --max-batch 8
    fer-ros build-engine --model models/rmn_fer2013 --precision int8 --calibration-data ~/faces --faces crops
    fer-ros build-engine --model models/rmn_fer2013 --precision fp16 --dla-core 0      # Jetson DLA

Writes ``<model>/tensorrt/<precision>.trt<version>.<gpu>/`` with the engine(s), their sidecars and a TensorRT
``model.yaml``; point the node's ``model`` parameter at that folder. Every option is checked before TensorRT is
imported, so mistakes are reported on any machine.
"""
from __future__ import annotations

import argparse

from fer_ros.errors import ConfigError
from fer_ros_training.export.face_samples import FACE_MODES
from fer_ros_training.export.tensorrt_build import (DEFAULT_MAX_BATCH, DEFAULT_WORKSPACE_MB, PRECISIONS,
                                                    EngineBuildOptions)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="exported ONNX model: id, folder or model.yaml")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16", help="engine precision (default fp16)")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                        help=f"most faces per call the engine accepts (default {DEFAULT_MAX_BATCH})")
    parser.add_argument("--opt-batch", type=int, default=None,
                        help="batch size TensorRT tunes for (default: --max-batch)")
    parser.add_argument("--workspace-mb", type=int, default=DEFAULT_WORKSPACE_MB,
                        help=f"builder scratch memory in MB (default {DEFAULT_WORKSPACE_MB})")
    parser.add_argument("--dla-core", type=int, default=None, help="Jetson: build for this DLA core (0 or 1)")
    parser.add_argument("--no-gpu-fallback", action="store_true",
                        help="with --dla-core: fail instead of running DLA-unsupported layers on the GPU")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    parser.add_argument("--calibration-data", default=None,
                        help="int8: folder of the user's images (ROOT/<label>/*.png; split.csv's train part)")
    parser.add_argument("--faces", choices=FACE_MODES, default="detect",
                        help="calibration images are full frames (detect) or face crops (crops)")
    parser.add_argument("--calibration-faces", type=int, default=None, help="int8: how many faces to calibrate on")
    parser.add_argument("--out", default=None, help="output folder (default <model>/tensorrt/<target>/)")


def options_from_args(args: argparse.Namespace) -> EngineBuildOptions:
    """The build options of the command line, validated (ConfigError names the bad option)."""
    options = EngineBuildOptions(precision=args.precision, max_batch=args.max_batch, opt_batch=args.opt_batch,
                                 workspace_mb=args.workspace_mb, dla_core=args.dla_core,
                                 gpu_fallback=not args.no_gpu_fallback, device=args.device).validated()
    if options.precision == "int8" and not args.calibration_data:
        raise ConfigError("--precision int8 needs --calibration-data DIR: INT8 ranges are measured on your faces")
    if options.precision != "int8" and args.calibration_data:
        raise ConfigError(f"--calibration-data is only used with --precision int8 (asked for {options.precision})")
    if args.calibration_faces is not None and args.calibration_faces < 1:
        raise ConfigError("--calibration-faces must be >= 1")
    if args.no_gpu_fallback and options.dla_core is None:
        raise ConfigError("--no-gpu-fallback only applies with --dla-core")
    return options


def run(args: argparse.Namespace) -> int:
    from fer_ros.registry import resolve_model
    from fer_ros_training.export.tensorrt_build import build_engines

    options = options_from_args(args)
    card = resolve_model(args.model)
    trt_card, builds = build_engines(card, options, calibration=args.calibration_data, faces_mode=args.faces,
                                     calibration_faces=args.calibration_faces, out_dir=args.out)
    for b in builds:
        print(f"{b.role}: {b.engine_path.name} ({b.precision}, TensorRT {b.trt_version}, {b.gpu.name})")
    print(f"TensorRT card: {trt_card.directory / 'model.yaml'}")
    print(f"check it: fer-ros validate-engine --engine {trt_card.directory} --data <held-out images>")
    print(f"run it:   set the node parameter model:={trt_card.directory}")
    return 0
