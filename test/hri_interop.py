"""The real ROS4HRI ``hri_msgs`` for the ROS tests: the installed one on a robot, else built from ../shared.

On a robot with the ROS4HRI stack ``hri_msgs`` imports and nothing is built. Elsewhere the package's source is
expected at ``<repo>/../shared/interop/hri_msgs`` (the ROS4HRI ``humble-devel`` branch); it is built once with this
venv's colcon (about a minute) into ``~/.cache/fer_ros/hri_msgs-<checkout hash>-py<version>-<source hash>``, so a
second test session, or one after an unrelated change, reuses it; a changed source (or Python) builds afresh. When
neither exists the tests skip with the reason.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
HRI_MSGS_SOURCE = REPO.parent / "shared" / "interop" / "hri_msgs"
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fer_ros"
BUILD_TIMEOUT_S = 900  # ~50 s alone; generous for two shared cores
PEER = Path(__file__).with_name("hri_peer.py")


def _installed() -> bool:
    try:
        import hri_msgs.msg  # noqa: F401
    except ImportError:
        return False
    return True


def _source_hash(src: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _build(src: Path, out: Path) -> None:
    """colcon-build ``src`` into ``out`` (install/ inside it); atomic: a half-done build never looks finished."""
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "src").mkdir(parents=True)
    shutil.copytree(src, work / "src" / "hri_msgs")
    build = subprocess.run(
        ["colcon", "--log-base", str(work / "log"), "build", "--base-paths", str(work / "src"), "--build-base",
         str(work / "build"), "--install-base", str(work / "install"), "--merge-install",
         "--event-handlers", "console_cohesion-", "summary-", "status-",
         "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
        cwd=work, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if build.returncode != 0:
        raise RuntimeError(f"colcon build of {src} failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}")
    shutil.rmtree(work / "build", ignore_errors=True)
    work.rename(out)


def hri_msgs_prefix() -> Path | None:
    """Install prefix of a built hri_msgs, or None when the installed package is used. Skips when there is neither."""
    if _installed():
        return None
    if not HRI_MSGS_SOURCE.is_dir():
        pytest.skip(f"hri_msgs is not installed and its source is absent ({HRI_MSGS_SOURCE}): "
                    f"install ROS4HRI's hri_msgs, or provide ../shared/interop/hri_msgs")
    if shutil.which("colcon") is None:
        pytest.skip("colcon is not on PATH (source ./env.sh): cannot build hri_msgs")
    checkout = hashlib.sha256(str(REPO).encode()).hexdigest()[:10]
    python = f"py{sys.version_info[0]}{sys.version_info[1]}"  # the generated bindings are for one interpreter
    out = CACHE_ROOT / f"hri_msgs-{checkout}-{python}-{_source_hash(HRI_MSGS_SOURCE)}"
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / f"hri_msgs-{checkout}.lock", "w") as lock:  # two sessions at once: one builds
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "install" / "share" / "hri_msgs" / "package.xml").is_file():
            _build(HRI_MSGS_SOURCE, out)
    return out / "install"


def env_with_hri(env: dict[str, str], prefix: Path | None) -> dict[str, str]:
    """``env`` with the built hri_msgs on the Python, library and ament paths (unchanged when installed)."""
    env = dict(env)
    if prefix is None:
        return env
    site = next(prefix.glob("lib/python3*/site-packages"))
    for var, value in (("PYTHONPATH", site), ("LD_LIBRARY_PATH", prefix / "lib"), ("AMENT_PREFIX_PATH", prefix)):
        env[var] = f"{value}{os.pathsep}{env[var]}" if env.get(var) else str(value)
    return env


def hri_env(prefix: Path | None) -> dict[str, str]:
    """This run's localhost-only ROS environment (its domain id) with hri_msgs on the paths."""
    from fer_ros.ros import graph

    return env_with_hri(graph.ros_env(domain_id=int(os.environ["ROS_DOMAIN_ID"])), prefix)


def wait_until(done: Callable[[], bool], timeout: float, poll: float = 0.2) -> bool:
    """True once ``done()`` holds (checked every ``poll`` s), False if it still does not after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(poll)
    return done()


class FerNodeProcess:
    """The installed fer_node with config/fer.yaml (as the launch file starts it), its output kept for messages."""

    def __init__(self, env: dict[str, str], **command) -> None:
        from fer_ros.ros import graph

        self._log = tempfile.TemporaryFile(mode="w+")
        self.proc = graph.start(graph.node_command(graph.default_params_file(), **command), env, stdout=self._log,
                                stderr=subprocess.STDOUT, text=True)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        """What the node has printed so far."""
        with open(f"/proc/self/fd/{self._log.fileno()}") as log:
            return log.read()

    def stop(self) -> tuple[int, str]:
        """SIGINT (then harder); returns the exit code and everything the node printed."""
        from fer_ros.ros import graph

        code = graph.stop(self.proc)
        self._log.seek(0)
        return code, self._log.read()


class Peer:
    """``hri_peer.py`` in its own process: its JSON lines collected as they come, commands sent on its stdin."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        from fer_ros.ros import graph

        self.proc = graph.start([sys.executable, str(PEER), *args], env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self.events.append(json.loads(line))
                self._changed.notify_all()

    def of(self, kind: str, face_id: str | None = None) -> list[dict]:
        with self._changed:
            return [e for e in self.events if e["kind"] == kind and (face_id is None or e.get("id") == face_id)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """True once ``predicate()`` holds (checked on every event), False if ``timeout`` s pass or the peer dies."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate() or self.proc.poll() is not None, timeout) and \
                predicate()

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> str:
        """Stop the peer; returns the end of its stderr (for failure messages)."""
        from fer_ros.ros import graph

        graph.stop(self.proc)
        return "".join(self.stderr)[-2000:]
