"""``fer-ros eval-bag``: score fer_node's pipeline on a rosbag2 recording, offline (no ROS runtime needed).

    fer-ros eval-bag BAG --topic /camera/image_raw [--labels FILE | --label-topic TOPIC]
                     [--params-file config/fer.yaml] --out DIR [--format-version 8|9] [--storage sqlite3|mcap]

Writes DIR/emotions (a bag of fer_ros/msg/EmotionArray, one per processed frame, stamped with the image stamps),
DIR/report.json, DIR/report.md and PNG figures, and prints the headline figures.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_ros.bag.bag_io import add_output_format_arguments, check_format
from fer_ros.cli_options import add_progress
from fer_ros.node_parameters import unknown_name_message

EXIT_DAMAGED_BAG = 3  # the report was written, but the bag could not be read to its end


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 folder (sqlite3 or MCAP), or a .db3/.mcap file")
    parser.add_argument("--topic", required=True, help="image topic (sensor_msgs/Image or CompressedImage)")
    labels = parser.add_mutually_exclusive_group()
    labels.add_argument("--labels", type=Path, help="label CSV: 'stamp,label[,face]' or 'start,end,label[,face]'")
    labels.add_argument("--label-topic", help="a label topic in the bag (std_msgs/String, a message with header and "
                        "label, or fer_ros/EmotionArray)")
    parser.add_argument("--params-file", type=Path, help="fer_node parameters file (default: config/fer.yaml of the "
                        "source tree or the installed package)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (report, figures, emotions bag)")
    add_output_format_arguments(parser, "the output bag")
    add_progress(parser)
    parser.add_argument("--output-topic", default="/emotions", help="topic name of the EmotionArray output")


def print_summary(report: dict, out: Path, stream=None) -> None:
    """The headline figures, the same for eval-bag and replay (to ``stream``, default: the current stdout)."""
    stream = stream or sys.stdout
    m = report["messages"]
    from fer_ros.bag.report import counts_text, label_problems

    def reasons(counts: dict) -> str:
        return f" ({counts_text(counts)})" if counts else ""

    print(f"messages: {m['total']} total, {m['processed']} processed, {m['dropped']} dropped"
          f"{reasons(m['dropped_reasons'])}, {m['unreadable']} unreadable{reasons(m['unreadable_reasons'])}",
          file=stream)
    if report.get("accuracy") is not None:
        s = report["scoring"]
        print(f"accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f} on {s['scored']} of "
              f"{s['labelled_faces']} labelled faces", file=stream)
    total = report["latency_ms"].get("total_ms") or report["latency_ms"]["processing_latency_ms"]
    if total["p50"] is not None:
        print(f"latency p50 {total['p50']:.2f} ms, p95 {total['p95']:.2f} ms", file=stream)
    fps = report["throughput"]["frames_per_s"]
    if fps:
        print(f"throughput {fps:.1f} frames/s", file=stream)
    for name in report.get("unknown_params") or []:
        print(f"parameters file: {unknown_name_message(name)}", file=stream)
    problems = label_problems(report)
    if problems:
        print(f"labels {report['labels']['source']}: {problems}", file=stream)
    print(f"report: {out / 'report.md'}; output bag: {report.get('output_bag')}", file=stream)


def damaged_bag_line(report: dict) -> str | None:
    """The one line saying the bag could not be read to its end, or None when every counted message was read."""
    read = (report.get("details") or {}).get("bag_read")
    if not read or read["complete"]:
        return None
    why = f"reading stopped at {read['error']}" if read["error"] else "its storage holds fewer than metadata.yaml counts"
    if read["missing"] < 0:
        why = f"its storage holds {-read['missing']} more than metadata.yaml counts"
    return (f"the bag is damaged: {read['read']} of {read['expected']} messages read ({why}); the report scores "
            f"what was read and counts the rest unreadable")


def run(args: argparse.Namespace) -> int:
    from fer_ros.bag.evaluate import EvalOptions, run_offline
    from fer_ros.bag.report import write_report

    check_format(args.format_version, args.storage)
    options = EvalOptions(bag=args.bag, topic=args.topic, out_dir=args.out, labels_file=args.labels,
                          label_topic=args.label_topic, params_file=args.params_file,
                          format_version=args.format_version, storage=args.storage,
                          output_topic=args.output_topic, progress=not args.no_progress)
    result = run_offline(options)
    report = write_report(result, args.out, {"tool": "fer-ros eval-bag", "mode": "offline",
                                             "bag": str(args.bag), "topic": args.topic})
    print_summary(report, args.out)
    damaged = damaged_bag_line(report)
    if damaged:
        print(f"fer-ros eval-bag: {damaged}", file=sys.stderr)
        return EXIT_DAMAGED_BAG
    return 0
