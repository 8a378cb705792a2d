"""Clocks for the simulator: wall time, or a manual clock tests move by hand.

The simulator reads ``clock()`` (ms since the epoch) for its rate-limit window and for what data
exists "now"::

    >>> clock = ManualClock(1_000)
    >>> clock.advance(59_000)
    60000
    >>> clock()
    60000
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], int]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class ManualClock:
    """A thread-safe clock that moves only when told to."""

    def __init__(self, now_ms: int) -> None:
        self._now = now_ms
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return self._now

    def advance(self, ms: int) -> int:
        with self._lock:
            self._now += ms
            return self._now

    def set(self, now_ms: int) -> None:
        with self._lock:
            self._now = now_ms
