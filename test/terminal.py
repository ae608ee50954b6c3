"""Run a command with its stderr on a real pseudo-terminal, as in a user's shell (progress bars are drawn only there).
"""
from __future__ import annotations

import os
import pty
import subprocess
from typing import IO


def run_with_stderr_on_a_terminal(cmd: list[str], timeout: float, env: dict[str, str] | None = None,
                                  stdout: int | IO[str] = subprocess.DEVNULL) -> tuple[int, str]:
    """Exit code and everything the process wrote to its terminal (read until it closes its end)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=slave)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the process closed the terminal's last open end
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = proc.wait(timeout=timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, b"".join(chunks).decode(errors="replace")
