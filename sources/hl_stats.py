"""Thread-safe request counters of a data source client, for logs and a Prometheus collector.

Counts attempts by request type and outcome (the HTTP status as text, or ``"error"`` when no
response arrived), retries, and the weight spent::

    >>> stats = SourceStats()
    >>> stats.record("allMids", "200", weight=2)
    >>> stats.record("allMids", "429", weight=0, retried=True)
    >>> snap = stats.snapshot()
    >>> snap.requests[("allMids", "200")], snap.weight_spent, snap.retries
    (1, 2, 1)
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of the counters at one moment."""

    requests: dict[tuple[str, str], int]
    weight_spent: int
    weight_by_type: dict[str, int]
    retries: int

    def total_requests(self, request_type: str | None = None) -> int:
        """Attempts made, of one type or of all."""
        return sum(n for (t, _), n in self.requests.items() if request_type in (None, t))


@dataclass
class SourceStats:
    """Counters shared by every thread using one client."""

    _requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    _weight_by_type: Counter[str] = field(default_factory=Counter)
    _retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(
        self, request_type: str, outcome: str, *, weight: int, retried: bool = False
    ) -> None:
        """Count one attempt: its type, its outcome (status text or "error"), its weight."""
        with self._lock:
            self._requests[(request_type, outcome)] += 1
            self._weight_by_type[request_type] += weight
            self._retries += int(retried)

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                requests=dict(self._requests),
                weight_spent=sum(self._weight_by_type.values()),
                weight_by_type=dict(self._weight_by_type),
                retries=self._retries,
            )
