"""``fer-ros replay``: publish a bag's images into a live ROS 2 graph, record fer_node's answers, score them.

    fer-ros replay BAG --topic /camera/image_raw --out DIR [--rate 1.0 | --lockstep] [--start-node]
                   [--params-file config/fer.yaml] [--labels FILE | --label-topic TOPIC] [--no-offline]

Without ``--start-node`` a fer_node must already run in this ROS_DOMAIN_ID with its ``image`` (or
``image/compressed``) remapped to the published topic (default: the bag's topic name). Writes DIR/emotions (the
recorded EmotionArrays), DIR/report.json|md and figures, and unless ``--no-offline`` also runs the offline evaluation
into DIR/offline and compares the two (``comparison_with_offline`` in report.json).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from fer_ros.bag.bag_io import COMPRESSED_IMAGE_TYPE, add_output_format_arguments, check_format, open_bag
from fer_ros.cli_options import add_progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 folder (sqlite3 or MCAP), or a .db3/.mcap file")
    parser.add_argument("--topic", required=True, help="image topic of the bag to publish")
    parser.add_argument("--out", type=Path, required=True, help="output folder (recorded bag, report)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, default=1.0, help="speed factor of the recorded pace (default 1)")
    pace.add_argument("--lockstep", action="store_true", help="publish each frame only after the node answered the "
                      "previous one (or --frame-timeout passed): no drops, as fast as the node goes")
    parser.add_argument("--publish-topic", help="publish on this topic instead of the bag's topic name")
    parser.add_argument("--emotions-topic", default="/emotions", help="the node's EmotionArray topic to record")
    parser.add_argument("--start-node", action="store_true", help="start the installed fer_node with "
                        "--params-file and the image topic remapped, and stop it at the end")
    parser.add_argument("--params-file", type=Path, help="fer_node parameters file (for --start-node, the offline "
                        "comparison and the report; default: config/fer.yaml)")
    labels = parser.add_mutually_exclusive_group()
    labels.add_argument("--labels", type=Path, help="label CSV: 'stamp,label[,face]' or 'start,end,label[,face]'")
    labels.add_argument("--label-topic", help="a label topic in the bag")
    parser.add_argument("--no-offline", action="store_true", help="skip the offline run and the comparison")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the node to appear")
    parser.add_argument("--linger", type=float, default=3.0, help="seconds to wait for late answers at the end")
    parser.add_argument("--frame-timeout", type=float, default=1.0, help="lockstep: seconds to wait for an answer "
                        "before sending the frame again")
    parser.add_argument("--retries", type=int, default=3, help="lockstep: resends of an unanswered frame")
    add_output_format_arguments(parser, "the recorded bag")
    add_progress(parser)


def _start_node(args: argparse.Namespace, publish_topic: str, compressed: bool) -> Any:
    """The installed fer_node in this process's domain, its log in OUT/fer_node.log."""
    from fer_ros.bag.params import default_params_file
    from fer_ros.ros import graph

    env = graph.ros_env(domain_id=graph.caller_domain_id())
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY")})
    remap = {"image/compressed" if compressed else "image": publish_topic, "emotions": args.emotions_topic}
    params: dict[str, object] = {"compressed": compressed}
    if args.lockstep:  # frames at machine speed: the whole-frame pass inline, as offline, so the two can agree
        params["detector.parallel"] = False
    cmd = graph.node_command(args.params_file or default_params_file(), remap=remap, params=params)
    log = open(args.out / "fer_node.log", "w")  # noqa: SIM115 (closed with the process)
    proc = graph.start(cmd, env, stdout=log, stderr=log)
    proc.log_file = log  # type: ignore[attr-defined]
    return proc


def run(args: argparse.Namespace) -> int:
    from fer_ros.bag.compare import compare_runs
    from fer_ros.bag.eval_cli import print_summary
    from fer_ros.bag.evaluate import EvalOptions, run_offline
    from fer_ros.bag.replay import LiveReplay, ReplayOptions
    from fer_ros.bag.report import write_report

    node = None
    try:
        check_format(args.format_version, args.storage)
        args.out.mkdir(parents=True, exist_ok=True)
        with open_bag(args.bag) as bag:
            conns = bag.image_connections(args.topic)
            topic = args.publish_topic or conns[0].topic
            compressed = conns[0].msgtype == COMPRESSED_IMAGE_TYPE
        if args.start_node:
            node = _start_node(args, topic, compressed)
        options = ReplayOptions(bag=args.bag, topic=args.topic, out_dir=args.out, publish_topic=topic,
                                emotions_topic=args.emotions_topic, rate=args.rate, lockstep=args.lockstep,
                                frame_timeout_s=args.frame_timeout, retries=args.retries, wait_s=args.wait,
                                linger_s=args.linger,
                                labels_file=args.labels, label_topic=args.label_topic,
                                params_file=args.params_file, format_version=args.format_version,
                                storage=args.storage, progress=not args.no_progress)
        live = LiveReplay(options).run()
        if node is not None:
            from fer_ros.ros import graph

            graph.stop(node)
            node.log_file.close()
            node = None
        meta: dict[str, Any] = {"tool": "fer-ros replay", "mode": "live", "bag": str(args.bag), "topic": args.topic}
        if not args.no_offline:
            offline_dir = args.out / "offline"
            offline = run_offline(EvalOptions(bag=args.bag, topic=args.topic, out_dir=offline_dir,
                                              labels_file=args.labels, label_topic=args.label_topic,
                                              params_file=args.params_file, format_version=args.format_version,
                                              storage=args.storage, output_topic=args.emotions_topic,
                                              progress=not args.no_progress,
                                              progress_label="replay (offline comparison)"))
            write_report(offline, offline_dir, {"tool": "fer-ros eval-bag", "mode": "offline",
                                                "bag": str(args.bag), "topic": args.topic})
            meta["comparison_with_offline"] = compare_runs(live, offline)
        report = write_report(live, args.out, meta)
    finally:
        if node is not None:
            from fer_ros.ros import graph

            graph.stop(node)
            node.log_file.close()
    print_summary(report, args.out)
    if "comparison_with_offline" in report:
        c = report["comparison_with_offline"]
        print(f"live vs offline: {c['frames_same_labels']} of {c['frames_both_processed']} frames with the same "
              f"labels; live dropped {c['live_dropped']}", file=sys.stdout)
        (args.out / "compare.json").write_text(json.dumps(c, indent=2))
    return 0
