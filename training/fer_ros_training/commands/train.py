"""``fer-ros train CONFIG``: train a network from a YAML config (a file, or the name of a bundled config).

Examples::

    fer-ros train training/fer_ros_training/configs/rmn.yaml --set data.root=/data/fer2013.csv
    fer-ros train ci_rmn_tiny --out runs/                      # bundled CI config, synthetic data
    fer-ros train --resume runs/rmn_fer2013/last.pt            # continue an interrupted run
    torchrun --nproc_per_node=4 -m fer_ros.cli train rmn.yaml  # several GPUs (DDP)
"""
from __future__ import annotations

import argparse

from fer_ros_training.commands import setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="YAML config file or bundled config name (omit with --resume)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optimizer.lr=0.01 (repeatable)")
    parser.add_argument("--out", default="runs", help="folder under which the run folder is created (default runs)")
    parser.add_argument("--run-dir", help="exact run folder (default: OUT/<name>, suffixed when taken)")
    parser.add_argument("--resume", help="checkpoint (last.pt) to continue from; its own config is used")
    parser.add_argument("--epochs-now", type=int, help="stop after this many completed epochs (resume later)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    parser.add_argument("-v", "--verbose", action="store_true")


def run(args: argparse.Namespace) -> int:
    from fer_ros.errors import ConfigError
    from fer_ros_training.train_config import config_from_dict, load_config, parse_overrides
    from fer_ros_training.trainer import dist_info, load_checkpoint, train

    setup_logging(args.verbose)
    if args.resume:
        cfg = config_from_dict(load_checkpoint(args.resume)["config"])
    elif args.config:
        cfg = load_config(args.config, parse_overrides(args.overrides))
    else:
        raise ConfigError("give a config file (or --resume CHECKPOINT)")
    result = train(cfg, run_dir=args.run_dir, resume=args.resume, stop_after=args.epochs_now,
                   progress=not args.no_progress, runs_root=args.out)
    if dist_info().is_main:
        test = ", ".join(f"{k} {v:.4f}" for k, v in result.test.items()) or "no test split"
        print(f"run folder: {result.run_dir}\nbest epoch {result.best_epoch}: {result.best_metric:.4f}; test: {test}")
    return 0
