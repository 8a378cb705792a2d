"""Single calls from any thread served as batch calls on a thread of the batcher's own.

``sources.coalesce`` makes the callers wait: one of them sends the batch while the others
block. An actor that runs on a shared pool (ADR 0015) must not block a worker on IO, so it
submits its item with a callback instead and gets the answer later, as a message::

    reads = Batcher(lambda markets: evm.call_many([call_for(m) for m in markets]),
                    max_batch=100, linger_s=0.02, name="oracle-reads")
    reads.submit(market, lambda result: actor_ref.tell(Read(result=result)))
    reads.close()

The thread starts with the first item. It takes what is queued (up to ``max_batch``, after
waiting ``linger_s`` for more to join), calls ``run_batch`` once, and hands each item's result,
an ``Exception`` in its place, to that item's callback, on the batcher's thread: a callback
should only pass the result on. An exception raised by ``run_batch`` itself goes to every item
of that batch. ``run_batch`` must bound its own IO (every client call here has a timeout), so a
batch ends; ``close`` stops the thread after the batch in hand, and the items still queued get
a ``RuntimeError`` saying so.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

Deliver = Callable[[V | Exception], None]
_STOP = object()


class Batcher(Generic[K, V]):
    """Batches ``submit(item, deliver)`` into ``run_batch([item, ...])``; see the module doc."""

    def __init__(
        self,
        run_batch: Callable[[list[K]], Sequence[V | Exception]],
        *,
        max_batch: int = 100,
        linger_s: float = 0.0,
        name: str = "batcher",
        join_s: float = 5.0,
    ) -> None:
        self.run_batch = run_batch
        self.max_batch = max(1, max_batch)
        self.linger_s = linger_s
        self.name = name
        self.join_s = join_s
        self.batches = 0
        """Batches sent so far (for tests and metrics)."""
        self._queue: queue.SimpleQueue[tuple[K, Deliver[V]] | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, item: K, deliver: Deliver[V]) -> None:
        """Queue ``item``; ``deliver`` gets its result (or exception) on the batcher's thread."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name} is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()
            self._queue.put((item, deliver))

    def close(self) -> None:
        """Stop after the batch in hand (waiting at most ``join_s``); later submits raise."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._queue.put(_STOP)
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.join_s)

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP or self._closed:
                if first is not _STOP:
                    self._answer([first], [self._closed_error()])  # type: ignore[list-item]
                break
            if self.linger_s > 0:
                time.sleep(self.linger_s)  # let the items of the same moment join
            batch: list[tuple[K, Deliver[V]]] = [first]  # type: ignore[list-item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                batch.append(more)  # type: ignore[arg-type]
            self._answer(batch, self._run([item for item, _ in batch]))
            if stop:
                break
        self._drain()

    def _run(self, items: list[K]) -> Sequence[V | Exception]:
        self.batches += 1
        try:
            results = list(self.run_batch(items))
        except Exception as exc:  # the whole batch failed: every item of it hears why
            return [exc] * len(items)
        if len(results) != len(items):
            error = RuntimeError(f"batch of {len(items)} returned {len(results)} results")
            return [error] * len(items)
        return results

    def _answer(self, batch: list[tuple[K, Deliver[V]]], results: Sequence[V | Exception]) -> None:
        for (_, deliver), result in zip(batch, results, strict=True):
            try:
                deliver(result)
            except Exception as exc:  # one callback's trouble is not the others'
                log.warning("%s: a result was not delivered: %r", self.name, exc)

    def _drain(self) -> None:
        """Closed: what is still queued is answered with the reason, not left waiting."""
        closed = self._closed_error()
        while True:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                return
            if entry is not _STOP:
                self._answer([entry], [closed])  # type: ignore[list-item]

    def _closed_error(self) -> RuntimeError:
        return RuntimeError(f"{self.name} closed before this item was sent")
