"""Keep mediapipe's native log lines (absl, TFLite) off the console of the ``fer-ros`` commands.

mediapipe's C++ code writes ``W0000 00:00:... inference_feedback_manager.cc:114] ...``, ``INFO: Created TensorFlow
Lite XNNPACK delegate for CPU`` and absl's ``WARNING: All log messages before absl::InitializeLog() ...`` straight to
file descriptor 2, whatever Python's logging says, and no environment variable of this mediapipe version turns them
off. ``NativeLogFilter`` puts a pipe under fd 2 and a thread that passes everything through except lines of those
forms. Text without a newline (a progress bar's ``\\r`` redraw) passes at once, unless it may be the start of such a
line. Used by the command line only: the node logs through ROS and keeps them (``fer_ros.ros``).
"""
from __future__ import annotations

import os
import re
import sys
import threading

# absl/glog line head "W0000 00:00:1796586696.791405   28703 file.cc:114] ", and the two fixed TFLite/absl lines
NOISE = re.compile(rb"(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] |INFO: Created TensorFlow Lite "
                   rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)")
HEADS = (b"I0000 ", b"W0000 ", b"E0000 ", b"F0000 ", b"INFO: Created TensorFlow Lite",
         b"WARNING: All log messages before absl")  # the fixed starts of those lines (absl's 0000: no date set)
HEAD = re.compile(b"|".join(re.escape(h) for h in HEADS))
HEAD_PREFIX = re.compile(rb"[IWEF]|INFO|WARNING")  # where one of HEADS may begin in an unfinished line
CLOSE_TIMEOUT_S = 2.0  # how long closing waits for the copying thread (a child process may still hold the pipe)
KEEP_ENV = "FER_ROS_NATIVE_LOGS"  # set to 1 to see the native lines (e.g. to report a mediapipe problem)

_active: NativeLogFilter | None = None


def stderr_is_terminal() -> bool | None:
    """Whether the real stderr is a terminal while a filter sits under fd 2 (None: no filter is active)."""
    return _active.terminal if _active is not None else None


def filter_native_logs() -> NativeLogFilter | None:
    """Start filtering fd 2 (unless ``FER_ROS_NATIVE_LOGS`` is set); ``close()`` the result to stop."""
    global _active
    if os.environ.get(KEEP_ENV) or _active is not None:
        return None
    _active = NativeLogFilter()
    return _active


def _passed(line: bytes) -> bytes:
    """What of a finished ``line`` (its newline excluded) reaches the console: nothing for a native log line, the
    redraw alone for a progress redraw with a native line glued to its end (the pipe joins writes), else the line."""
    for m in HEAD.finditer(line):
        if NOISE.match(line, m.start()):
            return line[:m.start()]
    return line + b"\n"


def _split_tail(tail: bytes) -> tuple[bytes, bytes]:
    """(what can be written now, what must wait for its newline) of text without a newline: from where a native
    line may be starting, it waits; a progress redraw before it passes at once."""
    for m in HEAD_PREFIX.finditer(tail):
        rest = tail[m.start():]
        if any(head.startswith(rest[:len(head)]) or rest.startswith(head) for head in HEADS):
            return tail[:m.start()], rest
    return tail, b""


class NativeLogFilter:
    """While open, fd 2 goes through the filter; ``terminal`` says whether the real stderr is a terminal."""

    def __init__(self) -> None:
        self.terminal = os.isatty(2)
        self._real = os.dup(2)
        read_end, write_end = os.pipe()
        sys.stderr.flush()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._read_end = read_end
        self._thread = threading.Thread(target=self._copy, name="native-log-filter", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        pending = b""
        while True:
            chunk = os.read(self._read_end, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = b"".join(map(_passed, lines))
            now, pending = _split_tail(pending)
            if out or now:
                os.write(self._real, out + now)
        if pending:
            os.write(self._real, _passed(pending).rstrip(b"\n"))
        os.close(self._read_end)

    def close(self) -> None:
        """Give fd 2 back to the real stderr, after what was written so far has been copied."""
        sys.stderr.flush()
        os.dup2(self._real, 2)  # closes the pipe's write end held by fd 2: the thread reads to its end
        self._thread.join(CLOSE_TIMEOUT_S)
        os.close(self._real)
        global _active
        if _active is self:
            _active = None
