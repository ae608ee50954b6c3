"""``fer-ros evaluate CHECKPOINT``: accuracy, macro-F1, per-class accuracy, confusion PNG, TTA, Grad-CAM, robustness.

Writes tables (CSV and markdown) and plots into ``--out`` (default: ``eval_<split>`` beside the checkpoint).
``--data-root`` is the deprecated spelling of ``--data``.
"""
from __future__ import annotations

import argparse

from fer_ros.cli_options import add_deprecated, add_progress, add_verbose
from fer_ros_training.commands import setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint written by fer-ros train (best.pt or last.pt)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="which split to score")
    parser.add_argument("--data", help="evaluate on another data set in the same layout as training's (default: "
                                       "the checkpoint's data.root)")
    add_deprecated(parser, "--data-root", "--data", dest="data")
    parser.add_argument("--out", help="output folder (default: eval_<split> beside the checkpoint)")
    parser.add_argument("--tta", type=int, default=2, help="test-time averaging copies (1 = off; up to 6)")
    parser.add_argument("--gradcam", type=int, default=16, help="faces in the Grad-CAM sheet (0 = none)")
    parser.add_argument("--no-robustness", action="store_true", help="skip the occlusion/brightness test")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    add_progress(parser)
    add_verbose(parser)


def run(args: argparse.Namespace) -> int:
    from fer_ros.progress import bars_enabled
    from fer_ros_training.evaluation import evaluate_checkpoint

    setup_logging(args.verbose)
    report = evaluate_checkpoint(args.checkpoint, args.out, args.split, args.data, args.tta, args.gradcam,
                                 not args.no_robustness, args.device, bars_enabled(not args.no_progress))
    from fer_ros_training.evaluation import describe_crops

    line = f"accuracy {report.single.accuracy:.4f}, macro-F1 {report.single.macro_f1:.4f} ({report.single.count} items)"
    if report.tta is not None:
        line += (f"; with TTA x{report.tta_copies}: accuracy {report.tta.accuracy:.4f}, "
                 f"macro-F1 {report.tta.macro_f1:.4f}")
    print(line)
    print(describe_crops(report.located))
    if report.detected is not None:
        print(f"  detector-found faces only (what the node labels): accuracy {report.detected.accuracy:.4f}, "
              f"macro-F1 {report.detected.macro_f1:.4f} ({report.detected.count} items)")
    for name, rep in report.robustness.items():
        print(f"  {name:18s} accuracy {rep.accuracy:.4f}")
    print("written: " + ", ".join(str(p) for p in report.files.values()))
    return 0
