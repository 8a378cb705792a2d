"""A few threads that run many actors, as Erlang's schedulers run its processes.

pykka gives each actor a thread for its whole life, and every message to an idle actor wakes
that thread. A daemon keeps thousands of resolvers alive in a burst; most of them wait for a
receipt, and a block's receipts woke a thousand threads at once, each taking the GIL back in
turn (ADR 0015). Actors that opt in (``SupervisedActor.pooled``) run on a ``Dispatcher``
instead: a message to an idle actor puts the actor in the ready queue; a worker takes it,
handles up to ``burst`` messages, and puts it back at the end of the queue if more wait, so
one busy actor cannot starve the others. A worker that is done with one actor takes the next
without sleeping: under load, a message costs no wake-up. Each actor is still one actor: its
own mailbox, state, restarts, and one message at a time.

    dispatcher = Dispatcher(threads, size=64, name="resolvers")
    services.dispatcher = dispatcher        # actors with ``pooled = True`` run on it
    ...                                     # stop those actors first, then:
    dispatcher.close()                      # the workers end; ``threads.close`` joins them

An actor on a dispatcher must never wait for an actor of the same dispatcher (an ``ask``):
with every worker waiting, nothing would answer. Resolvers only ``tell``; what they block on
(an LMDB group commit, a batch of JSON-RPC reads) is completed by other threads or by
themselves.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

import pykka
import pykka.messages

from supervision.threads import ActorThreads

log = logging.getLogger(__name__)


class Runnable(Protocol):
    """What a dispatcher runs: an actor's next slice of work."""

    def run_slice(self, budget: int) -> bool:
        """Handle up to ``budget`` messages; True when more are waiting."""
        ...


class PooledInbox:
    """An actor's mailbox that puts its actor in the ready queue when a message arrives.

    ``scheduled`` is True while the actor is queued or being run, so it is queued once; a
    dispatcher's worker clears it (``take`` finding the mailbox empty) under the same lock
    that ``put`` holds, so a message is never left behind by an actor going idle.

    ``wake`` holds the actor: an idle actor lives by it. Once the actor has stopped, ``close``
    lets go of it, so that it is freed at once rather than by the garbage collector, and
    refuses what comes later (``refuse``).
    """

    __slots__ = ("_items", "_lock", "_scheduled", "_wake")

    def __init__(self, wake: Callable[[], None]) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._scheduled = True  # until the actor's start has run: the start schedules it
        self._wake: Callable[[], None] | None = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        with self._lock:
            wake = self._wake
            if wake is not None:
                self._items.append(item)
                if self._scheduled:
                    return
                self._scheduled = True
        if wake is None:
            refuse(item)
        else:
            wake()

    def close(self) -> list[Any]:
        """The actor has stopped: what waits in the mailbox; later messages are refused."""
        with self._lock:
            self._wake = None
            left = list(self._items)
            self._items.clear()
        return left

    def take(self) -> Any | None:
        """The next message, or ``None``: the mailbox is empty and the actor is idle now."""
        with self._lock:
            if self._items:
                return self._items.popleft()
            self._scheduled = False
            return None

    def pending(self) -> bool:
        """True if messages wait (the actor stays scheduled); else the actor is idle now."""
        with self._lock:
            if self._items:
                return True
            self._scheduled = False
            return False

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """pykka's inbox interface; a pooled actor never blocks on its mailbox."""
        with self._lock:
            if not self._items:
                raise queue.Empty
            return self._items.popleft()

    def empty(self) -> bool:
        with self._lock:
            return not self._items

    def qsize(self) -> int:
        """Messages waiting (the registry's ``mailbox_depth``, in metrics and the REPL)."""
        return len(self._items)


def refuse(envelope: Any) -> None:
    """A message for an actor that has stopped: an ask is answered ``ActorDeadError`` (a stop
    request: done), a tell is dropped, as pykka's own loop does at its end."""
    reply_to = getattr(envelope, "reply_to", None)
    if reply_to is None:
        return
    if isinstance(envelope.message, pykka.messages._ActorStop):
        reply_to.set(None)
        return
    dead = pykka.ActorDeadError("the actor stopped before handling the message")
    reply_to.set_exception(exc_info=(pykka.ActorDeadError, dead, None))


class Dispatcher:
    """``size`` worker threads (from ``threads``, started with the first actor) sharing one
    ready queue of actors."""

    def __init__(self, threads: ActorThreads, size: int, name: str, burst: int = 8) -> None:
        if size < 1:
            raise ValueError(f"a dispatcher needs at least one thread, got {size}")
        self.threads = threads
        self.size = size
        self.name = name
        self.burst = burst
        self._ready: queue.SimpleQueue[Runnable | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers = 0
        self._closed = False

    def inbox(self, actor: Runnable) -> PooledInbox:
        """A mailbox for ``actor`` that queues it here when a message arrives."""
        return PooledInbox(lambda: self._ready.put(actor))

    def submit(self, actor: Runnable) -> None:
        """Queue ``actor`` (its start, or more work); starts the workers the first time."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"dispatcher {self.name} is closed")
            started, self._workers = self._workers, self.size
        for index in range(started, self.size):
            self.threads.run(self._work, f"{self.name}#{index}")
        self._ready.put(actor)

    def close(self) -> None:
        """End the workers once the queue before them is done (their actors have stopped)."""
        with self._lock:
            self._closed = True
            workers = self._workers
        for _ in range(workers):
            self._ready.put(None)

    def _work(self) -> None:
        ready = self._ready
        while (actor := ready.get()) is not None:
            try:
                again = actor.run_slice(self.burst)
            except BaseException:  # an actor's slice handles its own; never lose the worker
                log.exception("%s: an actor's slice raised", self.name)
                again = False
            if again:
                ready.put(actor)
            del actor  # an idle worker must not keep the last actor it ran (a stopped one)
