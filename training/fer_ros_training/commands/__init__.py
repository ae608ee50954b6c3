"""Subcommands of ``fer-ros`` that need the training package (registered in ``fer_ros/cli.py``): train, evaluate,
sweep, synth, compare.

Each module provides ``add_arguments(parser)`` and ``run(args) -> int`` (0 on success).
"""
from __future__ import annotations

import logging


def setup_logging(verbose: bool = False) -> None:
    """INFO (or DEBUG) messages of the training package on stderr, once."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
