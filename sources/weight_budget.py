"""A rolling-window weight budget with a FIFO of waiting requests: Hyperliquid's rate limit, kept
on our side so that the source never has to answer 429.

Pure: no threads, no clock of its own; every call takes ``now`` in seconds. Weight spent at ``t``
counts until ``t + window_s`` (the simulator's and Hyperliquid's rolling minute). A request is
admitted when the weight spent in the window plus its *base* weight fits the capacity; what it
turns out to cost beyond that (per item returned) is charged after the response::

    >>> budget = WeightBudget.for_limit(weight_per_minute=50, headroom_pct=10)   # capacity 45
    >>> [budget.enqueue(name, weight=20, now=0.0) for name in "abc"]
    [True, True, True]
    >>> budget.take(0.0), budget.take(0.0), budget.take(0.0)    # "c" would make 60 > 45
    ('a', 'b', None)
    >>> budget.charge(3, now=1.0)                                # a's items, known afterwards
    >>> budget.spent(now=1.0), budget.head_wait_s(now=1.0)       # c fits once a and b roll out
    (43, 59.0)
    >>> budget.take(60.0)
    'c'

``ledger(now)`` is the window's spending per whole second, to save; ``restore`` puts a saved one
back into a new budget (a restarted process), without counting it in ``charged_total``.

Waiting items leave the queue in order: a head that does not fit holds back the rest. ``expire``
drops items that waited too long, ``enqueue`` refuses past ``max_queue``, so no wait is unbounded.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

WINDOW_S = 60.0
"""Hyperliquid's rolling window."""


@dataclass(frozen=True)
class _Waiting(Generic[T]):
    item: T
    weight: int
    queued_at: float


class WeightBudget(Generic[T]):
    """Weight spent per rolling window, and the items waiting (in order) for room in it."""

    def __init__(self, capacity: int, window_s: float = WINDOW_S, max_queue: int = 10_000) -> None:
        if capacity < 1 or window_s <= 0 or max_queue < 0:
            raise ValueError("capacity and window must be positive, max_queue not negative")
        self.capacity = capacity
        self.window_s = window_s
        self.max_queue = max_queue
        self.charged_total = 0
        """Every weight ever charged (admissions, per-item parts and catch-ups)."""
        self._spent: deque[tuple[float, int]] = deque()
        self._queue: deque[_Waiting[T]] = deque()

    @classmethod
    def for_limit(
        cls,
        weight_per_minute: int,
        headroom_pct: float,
        window_s: float = WINDOW_S,
        max_queue: int = 10_000,
    ) -> WeightBudget[T]:
        """The budget that keeps ``headroom_pct`` percent of ``weight_per_minute`` unused."""
        if not 0 <= headroom_pct < 100:
            raise ValueError(f"headroom_pct must be in [0, 100): {headroom_pct}")
        capacity = int(weight_per_minute * (100 - headroom_pct) // 100)
        return cls(max(1, capacity), window_s, max_queue)

    # --- accounting --------------------------------------------------------------------------

    def spent(self, now: float) -> int:
        """Weight charged in the window ending at ``now``."""
        self._roll(now)
        return sum(weight for _, weight in self._spent)

    def wait_s(self, weight: int, now: float) -> float:
        """Seconds until ``weight`` fits (0.0: now). Heavier than the capacity: once it is empty."""
        self._roll(now)
        excess = sum(w for _, w in self._spent) + weight - self.capacity
        if excess <= 0 or not self._spent:
            return 0.0
        if weight > self.capacity:
            return self._spent[-1][0] + self.window_s - now
        for t, w in self._spent:
            excess -= w
            if excess <= 0:
                return t + self.window_s - now
        return self.window_s  # unreachable: the whole window rolled out covers any excess

    def charge(self, weight: int, now: float) -> None:
        """Record ``weight`` as spent at ``now`` (may go past the capacity: it was spent)."""
        if weight <= 0:
            return
        self._spent.append((now, weight))
        self.charged_total += weight

    def catch_up(self, total: int, now: float) -> int:
        """Charge what the source says it spent in all (``total``) beyond what was charged here,
        e.g. retried attempts; returns the weight added."""
        missing = total - self.charged_total
        self.charge(missing, now)
        return max(0, missing)

    def ledger(self, now: float) -> tuple[tuple[int, int], ...]:
        """The weight spent in the window ending at ``now``, summed per second (each entry's time
        rounded up, so a restored entry rolls out no earlier than the real one)."""
        self._roll(now)
        per_second: dict[int, int] = {}
        for t, weight in self._spent:
            second = math.ceil(t)
            per_second[second] = per_second.get(second, 0) + weight
        return tuple(per_second.items())

    def restore(self, ledger: Iterable[tuple[float, int]], now: float) -> int:
        """Count a saved ledger's spending that is still in the window (a time in the future is
        taken as ``now``); returns the weight restored. Call it before anything is charged."""
        if self._spent:
            raise ValueError("restore a ledger into a budget that has charged nothing yet")
        kept = sorted(
            (min(float(t), now), int(w)) for t, w in ledger if w > 0 and t > now - self.window_s
        )
        self._spent.extend(kept)
        return sum(w for _, w in kept)

    def _roll(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - self.window_s:
            self._spent.popleft()

    # --- the queue ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._queue)

    def enqueue(self, item: T, weight: int, now: float) -> bool:
        """Queue ``item`` (base weight ``weight``) behind the rest; False when the queue is full."""
        if len(self._queue) >= self.max_queue:
            return False
        self._queue.append(_Waiting(item, weight, now))
        return True

    def head(self) -> T | None:
        """The next item to go, if any."""
        return self._queue[0].item if self._queue else None

    def head_wait_s(self, now: float) -> float | None:
        """Seconds until the head fits (0.0: now), or None when nothing waits."""
        return self.wait_s(self._queue[0].weight, now) if self._queue else None

    def take(self, now: float) -> T | None:
        """Pop the head and charge its weight if it fits now; else None (and nothing changes)."""
        if not self._queue or self.wait_s(self._queue[0].weight, now) > 0:
            return None
        waiting = self._queue.popleft()
        self.charge(waiting.weight, now)
        return waiting.item

    def remove_head(self) -> T | None:
        """Remove the head without charging it (it is no longer wanted)."""
        return self._queue.popleft().item if self._queue else None

    def remove(self, drop: Callable[[T], bool]) -> list[T]:
        """Remove (uncharged) every waiting item for which ``drop(item)`` is true, in order."""
        kept: deque[_Waiting[T]] = deque()
        dropped = []
        for waiting in self._queue:
            if drop(waiting.item):
                dropped.append(waiting.item)
            else:
                kept.append(waiting)
        self._queue = kept
        return dropped

    def expire(self, now: float, max_age_s: float) -> list[T]:
        """Remove (uncharged) the items queued ``max_age_s`` or more ago, oldest first."""
        dropped = []
        while self._queue and self._queue[0].queued_at <= now - max_age_s:
            dropped.append(self._queue.popleft().item)
        return dropped

    def oldest_queued_at(self) -> float | None:
        """When the longest-waiting item was queued (the queue is FIFO: the head)."""
        return self._queue[0].queued_at if self._queue else None
