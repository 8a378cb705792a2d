"""Many threads' single calls served as one batch call (leader/follower, no extra thread).

Hundreds of resolvers each read ``pending(market)`` at about the same moment. Sent one by one,
each read pays a whole HTTP round trip and they queue on the connection pool; coalesced, the
calls that arrive while one batch is in flight go out together as the next batch::

    reads = Coalescer(lambda markets: evm.batch([call_for(m) for m in markets],
                                                return_errors=True),
                      max_batch=100, timeout_s=30.0)
    raw = reads.call(market)        # from any thread: this item's result, or its exception

The first caller that finds no batch in flight leads: it sends what is queued (its own item
among it), wakes each caller of the round with its result, and returns; the oldest caller still
queued then leads the next round. Only the callers of a round are woken, never the whole queue.
``run_batch`` returns one result per item, an ``Exception`` in an item's place being raised to
that caller only; an exception raised by ``run_batch`` itself goes to every caller of that
round. With ``linger_s``, a leader first waits that long for callers to join a round that is not
full: a little latency for fewer, larger batches. A caller waits at most ``timeout_s``, then
raises ``TimeoutError`` (a batch call has its own timeouts, so this only guards against a leader
that never returns).
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
    """One call: its item, its result once known, and the event that wakes its caller alone."""

    __slots__ = ("item", "lead", "result", "wake")

    def __init__(self, item: K) -> None:
        self.item = item
        self.result: object = _UNSET
        self.wake = threading.Event()
        self.lead = False
        """Set with ``wake`` when the next round is handed to this slot's caller."""


class Coalescer(Generic[K, V]):
    """Coalesces concurrent ``call(item)`` into ``run_batch([item, ...])``; see the module doc."""

    def __init__(
        self,
        run_batch: Callable[[list[K]], Sequence[V | Exception]],
        *,
        max_batch: int = 100,
        timeout_s: float = 60.0,
        linger_s: float = 0.0,
    ) -> None:
        self.run_batch = run_batch
        self.max_batch = max(1, max_batch)
        self.timeout_s = timeout_s
        self.linger_s = linger_s
        """How long a leader waits for more callers before sending a round that is not full."""
        self.batches = 0
        """Batches sent so far (for tests and metrics)."""
        self._queue: list[_Slot[K]] = []
        self._leading = False
        self._lock = threading.Lock()

    @property
    def queued(self) -> int:
        """Calls waiting for a batch to carry them."""
        with self._lock:
            return len(self._queue)

    def call(self, item: K) -> V:
        slot = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            follow = self._leading
            self._leading = True
        if follow and not slot.wake.wait(self.timeout_s):
            with self._lock:
                if slot.result is _UNSET and not slot.lead:
                    if slot in self._queue:
                        self._queue.remove(slot)
                    raise TimeoutError(f"no batch answered this call within {self.timeout_s}s")
        if slot.result is _UNSET:
            self._lead(slot)
        if isinstance(slot.result, Exception):
            raise slot.result
        return slot.result  # type: ignore[return-value]

    def _lead(self, own: _Slot[K]) -> None:
        """Send rounds until ``own`` has its result, waking each caller as its result comes;
        then hand the next round to the oldest caller still queued, or free the lead."""
        try:
            while own.result is _UNSET:
                if self.linger_s > 0 and self.queued < self.max_batch:
                    time.sleep(self.linger_s)  # let the callers of the same moment join
                with self._lock:
                    batch = self._queue[: self.max_batch]
                    del self._queue[: self.max_batch]
                results = self._run([s.item for s in batch])
                for s, r in zip(batch, results, strict=True):
                    s.result = r
                    s.wake.set()
        finally:
            with self._lock:
                if self._queue:
                    heir = self._queue[0]
                    heir.lead = True
                    heir.wake.set()
                else:
                    self._leading = False

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
