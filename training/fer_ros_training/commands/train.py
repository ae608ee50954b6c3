"""``fer-ros train CONFIG``: train a network from a YAML config (a file, or the name of a bundled config).

Examples::

    fer-ros train training/fer_ros_training/configs/rmn.yaml --set data.root=/data/fer2013.csv
    fer-ros train ci_rmn_tiny --out runs/tiny                  # bundled CI config into that exact folder
    fer-ros train --resume runs/rmn_fer2013/last.pt            # continue an interrupted run
    torchrun --nproc_per_node=4 -m fer_ros.cli train rmn.yaml  # several GPUs (DDP)

``--out`` is the run folder itself, as ``--out`` is every command's output folder; ``--runs-root`` is the folder a
new run folder is made in (``<runs-root>/<name>``, suffixed when taken). ``--run-dir`` is the deprecated spelling of
``--out``; an existing folder is refused (a run is continued with ``--resume``, never overwritten).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fer_ros.cli_options import add_deprecated, add_progress, add_verbose, output_taken
from fer_ros_training.commands import setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="YAML config file or bundled config name (omit with --resume)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optimizer.lr=0.01 (repeatable)")
    parser.add_argument("--out", type=Path, help="the run folder (default: RUNS_ROOT/<config name>, suffixed when "
                        "taken; with --resume: the checkpoint's folder)")
    parser.add_argument("--runs-root", type=Path, default=Path("runs"),
                        help="folder in which the run folder is made when --out is not given")
    add_deprecated(parser, "--run-dir", "--out", dest="out", convert=Path)
    parser.add_argument("--resume", help="checkpoint (last.pt) to continue from; its own config is used")
    parser.add_argument("--epochs-now", type=int, help="stop after this many completed epochs (resume later)")
    add_progress(parser)
    add_verbose(parser)


def run(args: argparse.Namespace) -> int:
    from fer_ros.errors import ConfigError
    from fer_ros.progress import bars_enabled
    from fer_ros_training.train_config import config_from_dict, load_config, parse_overrides
    from fer_ros_training.trainer import dist_info, load_checkpoint, train

    setup_logging(args.verbose)
    if args.resume:
        cfg = config_from_dict(load_checkpoint(args.resume)["config"])
    elif args.config:
        cfg = load_config(args.config, parse_overrides(args.overrides))
    else:
        raise ConfigError("give a config file (or --resume CHECKPOINT)")
    if args.out is not None and not args.resume and output_taken(args.out):
        hint = (f"continue that run with --resume {args.out / 'last.pt'}, or choose a new folder"
                if (args.out / "last.pt").is_file() else
                f"choose a new folder, or give --runs-root {args.out} to make a run folder inside it")
        raise ConfigError(f"--out {args.out} exists and is not empty (--out is the run folder itself): {hint}")
    result = train(cfg, run_dir=args.out, resume=args.resume, stop_after=args.epochs_now,
                   progress=bars_enabled(not args.no_progress), runs_root=args.runs_root)
    if dist_info().is_main:
        test = ", ".join(f"{k} {v:.4f}" for k, v in result.test.items()) or "no test split"
        print(f"run folder: {result.run_dir}\nbest epoch {result.best_epoch}: {result.best_metric:.4f}; test: {test}")
    return 0
