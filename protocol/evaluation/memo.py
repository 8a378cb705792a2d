"""A bounded memo of measurements: the same window over the same bytes is measured once.

Thousands of markets often share a window (and so the very same responses) and differ only in
their predicate. ``measure`` is a pure function of the method, the target, the span and the
responses' requests, fetch times, statuses and bytes, so its result can be reused::

    >>> memo = MeasureMemo(size=2)
    >>> def compute():
    ...     return 42
    >>> memo.get_or_compute(("k",), compute), memo.get_or_compute(("k",), compute), memo.computed
    (42, 42, 1)

Errors are not remembered: a failing measurement is raised again on every call.
``protocol.proof.data_hash`` keeps its hashed proof heads in one as well (ADR 0017).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from protocol.hyperliquid import RawResponse

T = TypeVar("T")


def responses_key(responses: Sequence[RawResponse]) -> tuple[Hashable, ...]:
    """Everything of ``responses`` a measurement may read, as a hashable key."""
    return tuple(
        (r.request.cache_key(), r.url, r.fetched_at_ms, r.status, r.body) for r in responses
    )


class MeasureMemo:
    """A thread-safe least-recently-used map of at most ``size`` computed values."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.computed = 0
        """Values computed so far (a hit computes nothing)."""
        self._values: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]  # type: ignore[return-value]
        value = compute()  # outside the lock: two threads may both compute; both agree
        with self._lock:
            self.computed += 1
            self._values[key] = value
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value
