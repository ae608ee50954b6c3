"""``fer-ros annotate``: label expressions in a bag or video, in a window or headless.

Window::

    fer-ros annotate session_bag/ [--topic /camera/image_raw] [--predictions scored_bag/] [--export-clips clips/]

Headless (apply a label file: validate, export clips, trim)::

    fer-ros annotate session.mp4 --headless [--labels session.mp4.annotations.tsv] [--export-clips clips/]
                                            [--trim trimmed.avi] [--margin 0.5]

``--labels`` is a label file, as in eval-bag and replay; the names of keys 1..9 are ``--classes``. ``--label-file``
is the deprecated spelling of ``--labels``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fer_ros.cli_options import add_deprecated, comma_list
from fer_ros.errors import ConfigError
from fer_ros.model_card import FER2013_LABELS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="rosbag2 directory (sqlite3 or MCAP) or video file")
    parser.add_argument("--topic", help="image topic of the bag (default: its only Image/CompressedImage topic)")
    parser.add_argument("--out-dir", type=Path, help="where the record, label and resume files go "
                                                     "(default: beside the source)")
    parser.add_argument("--classes", type=comma_list, default=FER2013_LABELS, metavar="A,B,...",
                        help="comma-separated class names for keys 1..9 (default: FER2013 order, "
                             f"{','.join(FER2013_LABELS)})")
    parser.add_argument("--export-clips", type=Path, metavar="ROOT",
                        help="also write each saved clip's frames to ROOT/<label>/<clip>/ (FAN clip layout)")
    parser.add_argument("--predictions", type=Path, metavar="BAG",
                        help="a scored bag whose EmotionArray output is shown beside the labels")
    parser.add_argument("--predictions-topic", help="EmotionArray topic of --predictions (default: the only one)")
    parser.add_argument("--headless", action="store_true", help="no window: apply --labels and exit")
    parser.add_argument("--labels", type=Path, help="headless: label file to apply, thesis TSV or interval CSV "
                                                    "'start,end,label' (default: the source's .annotations.tsv)")
    add_deprecated(parser, "--label-file", "--labels", dest="labels", convert=Path)
    parser.add_argument("--trim", type=Path, metavar="OUT",
                        help="headless: write a copy cut down to the labelled spans (a bag folder, or .avi)")
    parser.add_argument("--margin", type=float, default=0.0, help="headless --trim: seconds kept around each clip")


def _check_label_file(path: Path | None) -> None:
    """``--labels`` names a label file; class names given there (its meaning before --classes) are an error."""
    if path is not None and not path.exists():
        if "," in str(path):
            raise ConfigError(f"--labels is a label file now; class names are set with --classes {path}")
        raise ConfigError(f"label file {path} does not exist")


def run(args: argparse.Namespace) -> int:
    """0 when done (headless: no problem found), 1 when a headless label file has problems, 2 on a usage error."""
    _check_label_file(args.labels)
    labels = tuple(name.lower() for name in args.classes)
    if args.headless:
        return _run_headless(args, labels)
    from fer_ros.annotate.app import run_window

    return run_window(args.source, topic=args.topic, out_dir=args.out_dir, labels=labels,
                      export_root=args.export_clips, predictions=args.predictions,
                      predictions_topic=args.predictions_topic)


def _run_headless(args: argparse.Namespace, labels: tuple[str, ...]) -> int:
    from fer_ros.annotate.headless import apply_label_file
    from fer_ros.annotate.sources import open_source
    from fer_ros.annotate.store import OutputPaths

    label_file = args.labels or OutputPaths.for_source(args.source, args.out_dir).tsv
    with open_source(args.source, args.topic) as source:
        for problem in source.problems:
            print(f"source: {problem}")
        report = apply_label_file(source, label_file, labels, export_root=args.export_clips, trim_out=args.trim,
                                  margin=args.margin)
        print("\n".join(report.lines()))
        if source.unreadable:
            print(f"source: {len(source.unreadable)} unreadable frames: {sorted(source.unreadable)[:20]}")
    return 1 if report.problem_count else 0
