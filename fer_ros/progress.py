"""Progress for long commands, on a terminal only: a bar redrawn with ``\\r`` is noise in a log file.

``bars_enabled(requested)`` is the one rule every command follows: bars only when asked for (no ``--no-progress``)
and the stream they are drawn on (stderr) is a terminal. ``Progress`` is a small dependency-free bar for the runtime
commands (eval-bag, replay), which must not need tqdm on a robot; training uses tqdm with the same rule.
"""
from __future__ import annotations

import sys
import time
from typing import IO

REDRAW_PERIOD_S = 0.2  # at most 5 redraws a second: readable, and cheap next to decoding a frame


def bars_enabled(requested: bool = True, stream: IO[str] | None = None) -> bool:
    """True when progress was asked for and ``stream`` (default stderr) is an interactive terminal."""
    if stream is None or stream is sys.stderr:
        from fer_ros.native_logs import stderr_is_terminal

        behind_filter = stderr_is_terminal()  # fd 2 is the native-log filter's pipe: ask about the real stderr
        if behind_filter is not None:
            return bool(requested and behind_filter)
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(requested and isatty is not None and isatty())


class Progress:
    """``done/total unit`` with a rate, redrawn in place; silent when disabled. Use as a context manager."""

    def __init__(self, desc: str, total: int | None, unit: str = "frames", enabled: bool = True,
                 stream: IO[str] | None = None) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bars_enabled(enabled, self.stream)
        self.done = 0
        self._start = time.monotonic()
        self._last_draw = float("-inf")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last_draw >= REDRAW_PERIOD_S:
            self._last_draw = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The text of the bar: ``desc: 120/472 frames (25 %), 38.0 frames/s``."""
        elapsed = max((time.monotonic() if now is None else now) - self._start, 1e-9)
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        return f"{self.desc}: {count} {self.unit}{share}, {self.done / elapsed:.1f} {self.unit}/s"

    def _draw(self, now: float) -> None:
        self.stream.write("\r" + self.line(now) + "\033[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False
