"""A one-message mailbox between the subscription callback and the processing thread.

The camera callback only swaps the newest message in; the worker always takes the newest one. When the model is
slower than the camera, the message that was waiting is replaced and counted as dropped, so latency stays bounded
by one processing time instead of growing with a queue.
"""
from __future__ import annotations

import threading
import time
from typing import Any


class FrameSlot:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: tuple[Any, float] | None = None
        self._closed = False
        self.replaced = 0  # messages overwritten before the worker took them

    def put(self, msg: Any) -> None:
        """Offer the newest message (called from the subscription callback; never blocks on processing)."""
        with self._cond:
            if self._item is not None:
                self.replaced += 1
            self._item = (msg, time.monotonic())
            self._cond.notify()

    def take(self, timeout: float | None = None) -> tuple[Any, float] | None:
        """Wait for a message; returns (message, monotonic receive time) or None when closed or timed out."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._item is not None or self._closed, timeout):
                return None
            item, self._item = self._item, None
            return None if self._closed else item

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def stop_worker(worker: threading.Thread, slot: FrameSlot, timeout: float) -> bool:
    """Close ``slot`` and wait up to ``timeout`` s for ``worker`` to end. True when it has ended, so what it uses may
    be released; False when it is still inside a frame: then nothing it uses may be closed under it (closing
    mediapipe's graph while the thread runs it aborts the process), the process exit reclaims it instead."""
    slot.close()
    worker.join(timeout)
    return not worker.is_alive()
