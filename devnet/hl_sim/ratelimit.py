"""Per-client request weight over a rolling window (Hyperliquid: 1200 per minute per IP).

A request is admitted when the weight its client spent in the last ``window_ms`` plus the
request's base weight stays within ``limit``; otherwise the caller answers 429 and charges
nothing. The per-item weight of the response is charged after it is known, so the minute's total
can end above the limit, and the next request is refused until old weight rolls out::

    >>> lim = WeightLimiter(limit=4, window_ms=60_000)
    >>> lim.admit("a", 2, now_ms=0), lim.admit("a", 2, now_ms=1), lim.admit("a", 2, now_ms=2)
    (None, None, 59998)
    >>> lim.admit("a", 2, now_ms=60_000)
"""

from __future__ import annotations

import threading
from collections import Counter, deque

from sources.hl_weights import WEIGHT_LIMIT_PER_MINUTE


class WeightLimiter:
    """Thread-safe rolling-window weight budget per client id."""

    def __init__(self, limit: int = WEIGHT_LIMIT_PER_MINUTE, window_ms: int = 60_000) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self._spent: dict[str, deque[tuple[int, int]]] = {}
        self._total: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _window(self, client: str, now_ms: int) -> deque[tuple[int, int]]:
        entries = self._spent.setdefault(client, deque())
        while entries and entries[0][0] <= now_ms - self.window_ms:
            entries.popleft()
        return entries

    def admit(self, client: str, weight: int, now_ms: int) -> int | None:
        """Charge ``weight`` and return None, or return ms until it would fit (charging nothing)."""
        with self._lock:
            entries = self._window(client, now_ms)
            spent = sum(w for _, w in entries)
            if spent + weight <= self.limit:
                entries.append((now_ms, weight))
                self._total[client] += weight
                return None
            excess = spent + weight - self.limit
            for t, w in entries:
                excess -= w
                if excess <= 0:
                    return max(1, t + self.window_ms - now_ms)
            return self.window_ms

    def charge(self, client: str, weight: int, now_ms: int) -> None:
        """Add weight known only after answering (per-item extra)."""
        if weight <= 0:
            return
        with self._lock:
            self._window(client, now_ms).append((now_ms, weight))
            self._total[client] += weight

    def spent(self, client: str, now_ms: int) -> int:
        """Weight ``client`` spent in the window ending at ``now_ms``."""
        with self._lock:
            return sum(w for _, w in self._window(client, now_ms))

    def totals(self) -> dict[str, int]:
        """All weight charged per client since the start (or the last reset)."""
        with self._lock:
            return dict(self._total)

    def reset(self) -> None:
        with self._lock:
            self._spent.clear()
            self._total.clear()
