"""Start and stop real ROS 2 processes on this machine only: used by the demo, the benchmarks and the tests.

Every process gets localhost-only discovery and a domain id of its own run, so nothing crosses the network and
parallel runs do not hear each other.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from fer_ros.errors import ConfigError

NODE_EXECUTABLE = "fer_node"
STOP_TIMEOUT_S = 10.0  # SIGINT, then this long before SIGTERM (and as long again before SIGKILL)
MAX_DOMAIN_ID = 232  # highest ROS_DOMAIN_ID whose DDS ports fit on Linux (ROS 2 docs, "The ROS_DOMAIN_ID")


def ros_env(domain_id: int | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment with localhost-only DDS discovery and a (random) domain id."""
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOCALHOST_ONLY"] = "1"
    env["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else random.SystemRandom().randint(1, 101))
    env.setdefault("PYTHONUNBUFFERED", "1")
    profile = fastdds_profile()
    if profile is not None:
        env.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(profile))
    return env


def caller_domain_id() -> int:
    """The ROS_DOMAIN_ID the caller set (their robot's or CI job's domain), else a random one of this run's own."""
    text = os.environ.get("ROS_DOMAIN_ID", "").strip()
    if not text:
        return random.SystemRandom().randint(1, 101)
    if not text.isdigit() or int(text) > MAX_DOMAIN_ID:
        raise ConfigError(f"ROS_DOMAIN_ID={text!r} is not a domain id (an integer 0..{MAX_DOMAIN_ID}); unset it for a "
                         f"random one")
    return int(text)


def fastdds_profile() -> Path | None:
    """config/fastdds_localhost.xml: shared memory big enough for camera frames, UDP on loopback only."""
    here = Path(__file__).resolve().parents[2] / "config" / "fastdds_localhost.xml"
    if here.is_file():
        return here
    try:
        installed = package_prefix() / "share" / "fer_ros" / "config" / "fastdds_localhost.xml"
    except FileNotFoundError:
        return None
    return installed if installed.is_file() else None


def package_prefix() -> Path:
    """Install prefix of the colcon-built fer_ros (ament index first, then this checkout's install/)."""
    try:
        from ament_index_python.packages import get_package_prefix

        return Path(get_package_prefix("fer_ros"))
    except Exception:  # ament_index_python missing or package not on AMENT_PREFIX_PATH
        here = Path(__file__).resolve().parents[2] / "install" / "fer_ros"
        if (here / "share" / "fer_ros" / "package.xml").is_file():
            return here
        raise FileNotFoundError("fer_ros is not built: run scripts/setup.sh, then source ./env.sh") from None


def node_command(params_file: str | Path | None = None, remap: dict[str, str] | None = None,
                 params: dict[str, object] | None = None) -> list[str]:
    """The command line of the installed fer_node executable, as the launch file would start it."""
    exe = package_prefix() / "lib" / "fer_ros" / NODE_EXECUTABLE
    cmd = [str(exe), "--ros-args"]
    if params_file:
        cmd += ["--params-file", str(params_file)]
    for name, value in (params or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        cmd += ["-p", f"{name}:={text}"]
    for src, dst in (remap or {}).items():
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


def default_params_file() -> Path:
    prefix_file = package_prefix() / "share" / "fer_ros" / "config" / "fer.yaml"
    return prefix_file if prefix_file.is_file() else Path(__file__).resolve().parents[2] / "config" / "fer.yaml"


def start(cmd: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    """Start a process in its own session so SIGINT reaches it (and only it)."""
    return subprocess.Popen(cmd, env=env, start_new_session=True, **kwargs)


def python_module_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def stop(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> int:
    """SIGINT (what Ctrl-C sends), then SIGTERM, then SIGKILL; returns the exit code."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            proc.send_signal(sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()
