"""How every fer_ros executable runs a node: start, spin, stop cleanly on Ctrl-C or SIGTERM, exit 0.

A configuration error (``FerRosError``, or rcl refusing the command line, e.g. a missing ``--params-file``) stops
start-up with one FATAL line and exit code 1. Every way of stopping exits 0 without a traceback: SIGINT or SIGTERM
while spinning, during start-up (model loading), or again while cleaning up (a double Ctrl-C, launch's SIGINT then
SIGTERM), an external shutdown, or a node that decides it is done (``SystemExit``).
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from fer_ros.errors import FerRosError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SHUTDOWN_GRACE_S = 0.5  # an exception this close before the context goes down is part of the stop, not a bug


def run_node(make_node: Callable[[], Node], args: list[str] | None, name: str) -> int:
    """rclpy.init(args), build the node, spin it; always destroy it and shut rclpy down. Returns the exit code."""
    try:
        return _run(make_node, args, name)
    except KeyboardInterrupt:  # a second signal in the instant before the clean-up started ignoring them
        return 0


def exit_now(code: int) -> None:
    """End the fer_node process with ``code`` once ``run_node`` has cleaned up (node destroyed, pipeline closed, rclpy
    shut down), without the interpreter's teardown: unloading mediapipe, TFLite and onnxruntime took 0.2-0.45 s of a
    0.5 s stop here, and a native destructor is the last place a stop could still abort. Output is flushed first."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe: nothing more can be said there
            stream.flush()
    with contextlib.suppress(OSError, AttributeError):  # C stdio too (rcutils' logging into a pipe is buffered)
        ctypes.CDLL(None).fflush(None)
    os._exit(code)


def _fatal(name: str, message: str) -> int:
    print(f"[{name}] FATAL: {message}", file=sys.stderr, flush=True)
    return 1


_stop_requested = False  # set by the first SIGINT/SIGTERM


def _on_stop_signal(signum: int, frame: object) -> None:
    """The first SIGINT or SIGTERM: further ones are ignored from this instant (a double Ctrl-C, or launch's SIGINT
    then SIGTERM, must not interrupt the stop: a second KeyboardInterrupt would land in the clean-up or in some
    object's __del__), and the stop starts as a KeyboardInterrupt. rclpy's own handler, installed by rclpy.init, shuts
    the context down first and then calls this one."""
    global _stop_requested
    _stop_requested = True
    _ignore_stop_signals()
    raise KeyboardInterrupt


def _run(make_node: Callable[[], Node], args: list[str] | None, name: str) -> int:
    global _stop_requested
    _stop_requested = False
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_stop_signal)
    missing = _missing_params_files(args or [])
    if missing:  # checked before rcl, which would log an error of its own and raise RCLError
        return _fatal(name, f"parameters file {missing[0]} does not exist: pass an existing file to --params-file "
                            f"(the default is config/fer.yaml, installed to share/fer_ros/config/fer.yaml)")
    try:
        rclpy.init(args=args)
    except Exception as exc:  # rclpy's RCLError: the --ros-args could not be parsed
        text = re.sub(r",? at /\S+:\d+", "", str(exc)).strip()  # rcl's source locations say nothing to a user
        return _fatal(name, f"the ROS arguments were refused: {text} (check --ros-args: -p name:=value, "
                            f"--params-file FILE, -r from:=to)")
    # The executor is made now, while the context is surely valid: made after a signal shut the context down it
    # fails half-built and its __del__ prints a traceback.
    executor = SingleThreadedExecutor()
    node = None
    try:
        node = make_node()
        if _stop_requested:  # its KeyboardInterrupt was swallowed (raised inside a __del__): a stop all the same
            return 0
        executor.add_node(node)
        executor.spin()
    except FerRosError as exc:
        if not rclpy.ok():  # a signal stopped start-up while the error was being raised: a stop, not a refusal
            return 0
        # configuration problems stop start-up with the reason (the node's logger may not exist yet)
        return _fatal(name, str(exc))
    except (KeyboardInterrupt, ExternalShutdownException, SystemExit):
        pass
    except Exception:
        if not _stopping():
            raise  # a real bug: keep its traceback
        # SIGINT/SIGTERM during start-up shut the context down under the constructor (creating a publisher or
        # loading a model then fails): that is a stop, not an error
    finally:
        _ignore_stop_signals()
        ignore_unrun_handlers()
        if node is not None:
            getattr(node, "shutdown", lambda: None)()
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()
        _shut_rclpy_down()
        _ignore_stop_signals()  # rclpy.shutdown reinstalls the handlers it replaced
    return 0


def _shut_rclpy_down() -> None:
    """rclpy.try_shutdown(), tolerating the signal handler winning the race: rclpy's SIGINT handling shuts the
    context down from its own thread, without the lock try_shutdown holds, so the context can go down between
    try_shutdown's ok() check and its rcl_shutdown, which then raises "rcl_shutdown already called"."""
    try:
        rclpy.try_shutdown()
    except Exception:
        if rclpy.ok():
            raise  # not that race: a real failure


def ignore_unrun_handlers() -> None:
    """No "coroutine 'Executor._make_handler.<locals>.handler' was never awaited" at exit: an rclpy executor makes a
    handler for each ready callback before running it, and one made just before the stop (or by a spin_once whose
    caller stops reading) is collected unrun when the process ends. They are callbacks the process chose not to run."""
    warnings.filterwarnings("ignore", message="coroutine 'Executor._make_handler", category=RuntimeWarning)


def _stopping(grace_s: float = SHUTDOWN_GRACE_S) -> bool:
    """True when the context is going down: at once, or within ``grace_s`` (rclpy's signal handling shuts the context
    down from its own thread, so an entity can fail a moment before ``rclpy.ok()`` turns False)."""
    deadline = time.monotonic() + grace_s
    while rclpy.ok():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _ignore_stop_signals() -> None:
    """From the first stop on, further SIGINT/SIGTERM would interrupt the clean-up half-way (KeyboardInterrupt out
    of a join or a close: exit by signal, the pipeline not closed). Ignore them: the clean-up is bounded (the worker
    join has a timeout), and SIGKILL still ends the process."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _missing_params_files(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--params-file" and not Path(args[i + 1]).is_file()]
