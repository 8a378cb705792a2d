"""Clocks: the only source of "now" and of timers for actors.

Actors never sleep to wait; they ask the clock to deliver a message later::

    >>> clock = ManualClock(start=1_000.0)
    >>> fired = []
    >>> _ = clock.call_later(5.0, lambda: fired.append(clock.now()))
    >>> clock.advance(4.0); fired
    []
    >>> clock.advance(1.0); fired
    [1005.0]

``SystemClock`` runs the same callbacks on one timer thread; ``ManualClock`` runs them in the
thread that calls ``advance``, so tests decide exactly when time passes.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None:
        """Do not run (a timer that has run already: nothing)."""
        ...

    def active(self) -> bool:
        """Neither run nor cancelled yet."""
        ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> Timer:
        """Run ``fn`` once ``delay_s`` seconds have passed; ``fn`` must not block."""
        ...

    def stop(self) -> None:
        """Cancel every pending timer and release the clock's thread, if any."""
        ...


def _spent() -> None:
    """What a timer that has run, or was cancelled, holds instead of its callback."""


class _Entry:
    __slots__ = ("cancelled", "due", "fn")

    def __init__(self, due: float, fn: Callable[[], None]) -> None:
        self.due = due
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        # the entry waits in the heap until its time; the callback (and the message it
        # delivers) is let go now
        self.cancelled = True
        self.fn = _spent

    def active(self) -> bool:
        return self.fn is not _spent

    def take(self) -> Callable[[], None]:
        """The callback, once: the entry is spent after this."""
        fn, self.fn = self.fn, _spent
        return fn


class _TimerHeap:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Entry]] = []
        self._seq = itertools.count()

    def push(self, entry: _Entry) -> None:
        heapq.heappush(self._heap, (entry.due, next(self._seq), entry))

    def pop_due(self, now: float) -> _Entry | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)[2]
        return None

    def next_due(self) -> float | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def live(self) -> int:
        return sum(1 for _, _, entry in self._heap if not entry.cancelled)

    def clear(self) -> None:
        self._heap.clear()


class ManualClock:
    """Time moves only when a test calls ``advance``; due timers run in order, in that thread."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._timers = _TimerHeap()
        self._lock = threading.RLock()

    def now(self) -> float:
        return self._now

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> Timer:
        with self._lock:
            entry = _Entry(self._now + max(0.0, delay_s), fn)
            self._timers.push(entry)
            return entry

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running each timer that falls due at its own time."""
        with self._lock:
            target = self._now + seconds
            while (entry := self._timers.pop_due(target)) is not None:
                self._now = max(self._now, entry.due)
                entry.take()()
            self._now = target

    def pending(self) -> int:
        """How many timers are waiting."""
        with self._lock:
            return self._timers.live()

    def stop(self) -> None:
        with self._lock:
            self._timers.clear()


class SystemClock:
    """Wall-clock time, optionally shifted by ``offset_s`` (to replay recorded data on a devnet
    whose chain runs at the same offset); timers run on one daemon thread started on first use."""

    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_s = offset_s
        self._timers = _TimerHeap()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def now(self) -> float:
        return time.time() + self.offset_s

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> Timer:
        entry = _Entry(time.monotonic() + max(0.0, delay_s), fn)
        with self._cond:
            if self._stopped:
                entry.cancel()
                return entry
            earliest = self._timers.next_due()
            self._timers.push(entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="clock", daemon=True)
                self._thread.start()
            if earliest is None or entry.due < earliest:
                # the clock sleeps until its earliest timer: only an earlier one must wake it
                self._cond.notify()
        return entry

    def _run(self) -> None:
        while True:
            entry: _Entry | None = None
            with self._cond:
                while not self._stopped:
                    entry = self._timers.pop_due(time.monotonic())
                    if entry is not None:
                        break
                    due = self._timers.next_due()
                    self._cond.wait(None if due is None else max(0.0, due - time.monotonic()))
                if self._stopped or entry is None:
                    return
            try:
                entry.take()()
            except Exception:  # a timer callback must not kill the clock
                import logging

                logging.getLogger(__name__).exception("timer callback failed")

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._timers.clear()
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
