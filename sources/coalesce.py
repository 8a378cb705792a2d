"""Many threads' single calls served as one batch call (leader/follower, no extra thread).

Hundreds of resolvers each read ``pending(market)`` at about the same moment. Sent one by one,
each read pays a whole HTTP round trip and they queue on the connection pool; coalesced, the
calls that arrive while one batch is in flight go out together as the next batch::

    reads = Coalescer(lambda markets: evm.batch([call_for(m) for m in markets],
                                                return_errors=True),
                      max_batch=100, timeout_s=30.0)
    raw = reads.call(market)        # from any thread: this item's result, or its exception

The first caller that finds no batch in flight leads: it sends what is queued (its own item
among it), hands every caller its result, and returns; a caller still queued then leads the next
round. ``run_batch`` returns one result per item, an ``Exception`` in an item's place being raised
to that caller only; an exception raised by ``run_batch`` itself goes to every caller of that
round. A caller waits at most ``timeout_s``, then raises ``TimeoutError`` (a batch call has its
own timeouts, so this only guards against a leader that never returns).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_UNSET = object()


class _Slot(Generic[K]):
    __slots__ = ("item", "result")

    def __init__(self, item: K) -> None:
        self.item = item
        self.result: object = _UNSET


class Coalescer(Generic[K, V]):
    """Coalesces concurrent ``call(item)`` into ``run_batch([item, ...])``; see the module doc."""

    def __init__(
        self,
        run_batch: Callable[[list[K]], Sequence[V | Exception]],
        *,
        max_batch: int = 100,
        timeout_s: float = 60.0,
    ) -> None:
        self.run_batch = run_batch
        self.max_batch = max(1, max_batch)
        self.timeout_s = timeout_s
        self.batches = 0
        """Batches sent so far (for tests and metrics)."""
        self._queue: list[_Slot[K]] = []
        self._leading = False
        self._cond = threading.Condition()

    @property
    def queued(self) -> int:
        """Calls waiting for a batch to carry them."""
        with self._cond:
            return len(self._queue)

    def call(self, item: K) -> V:
        slot = _Slot(item)
        deadline = time.monotonic() + self.timeout_s
        with self._cond:
            self._queue.append(slot)
            while slot.result is _UNSET and self._leading:
                left = deadline - time.monotonic()
                if left <= 0:
                    if slot in self._queue:
                        self._queue.remove(slot)
                    raise TimeoutError(f"no batch answered this call within {self.timeout_s}s")
                self._cond.wait(left)
            if slot.result is _UNSET:
                self._leading = True
        if slot.result is _UNSET:
            self._lead(slot)
        if isinstance(slot.result, Exception):
            raise slot.result
        return slot.result  # type: ignore[return-value]

    def _lead(self, own: _Slot[K]) -> None:
        try:
            while own.result is _UNSET:
                with self._cond:
                    batch = self._queue[: self.max_batch]
                    del self._queue[: self.max_batch]
                results = self._run([s.item for s in batch])
                with self._cond:
                    for s, r in zip(batch, results, strict=True):
                        s.result = r
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._leading = False
                self._cond.notify_all()

    def _run(self, items: list[K]) -> Sequence[object]:
        self.batches += 1
        try:
            results = list(self.run_batch(items))
        except Exception as exc:  # the whole batch failed: every caller of it hears why
            return [exc] * len(items)
        if len(results) != len(items):
            error = RuntimeError(f"batch of {len(items)} returned {len(results)} results")
            return [error] * len(items)
        return results
