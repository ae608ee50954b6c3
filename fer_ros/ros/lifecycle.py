"""How every fer_ros executable runs a node: start, spin, stop cleanly on Ctrl-C or SIGTERM, exit 0.

A configuration error (``FerRosError``) stops start-up with its message and exit code 1; SIGINT, an external
shutdown or a node that decides it is done (``SystemExit``) end the spin normally.
"""
from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from fer_ros.errors import FerRosError


def run_node(make_node: Callable[[], Node], args: list[str] | None, name: str) -> int:
    """rclpy.init(args), build the node, spin it; always destroy it and shut rclpy down. Returns the exit code."""
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        rclpy.spin(node)
    except FerRosError as exc:
        # configuration problems stop start-up with the reason (the node's logger may not exist yet)
        print(f"[{name}] FATAL: {exc}", file=sys.stderr, flush=True)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException, SystemExit):
        pass
    finally:
        if node is not None:
            getattr(node, "shutdown", lambda: None)()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
