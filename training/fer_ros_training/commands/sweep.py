"""``fer-ros sweep``: hyper-parameter sensitivity study; writes sweep.csv, sweep.md and sweep.png.

Examples::

    fer-ros sweep ci_rmn_tiny --param optimizer.lr=0.01,0.003,0.001 --out runs/lr_sweep
    fer-ros sweep my_sweep.yaml        # {base: rmn.yaml, sweep: {optimizer.lr: [...], batch_size: [...]}}
"""
from __future__ import annotations

import argparse

from fer_ros.cli_options import add_progress, add_verbose
from fer_ros_training.commands import setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="training config, or a sweep file with base: and sweep: sections")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=V1,V2",
                        help="a swept key and its values (repeatable; added to the file's sweep: section)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="fixed override applied to every run")
    parser.add_argument("--out", help="output folder (default runs/sweep_<name>)")
    add_progress(parser)
    add_verbose(parser)


def run(args: argparse.Namespace) -> int:
    from fer_ros.progress import bars_enabled
    from fer_ros_training.sweep import load_sweep_file, parse_params, run_sweep
    from fer_ros_training.train_config import parse_overrides, set_dotted

    setup_logging(args.verbose)
    base, params = load_sweep_file(args.config)
    params.update(parse_params(args.param))
    for key, value in parse_overrides(args.overrides).items():
        set_dotted(base, key, value)
    result = run_sweep(base, params, args.out or f"runs/sweep_{base.get('name', 'run')}", bars_enabled(not args.no_progress))
    print(result.table.with_suffix(".md").read_text())
    print(f"written: {result.table}, {result.plot}")
    return 0
