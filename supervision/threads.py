"""Reusable threads for actor loops: an actor that stops gives its thread to the next one.

pykka runs each actor's loop on a thread of its own. A daemon starts one resolver per market,
so a burst of 10,000 markets started and reaped 10,000 threads, and the runtime kept every
``Thread`` object to check them at stop. ``ActorThreads`` runs the loops instead::

    threads = ActorThreads(idle_s=10.0)
    threads.run(actor._actor_loop, name="resolver:dev:0xabc")   # an idle thread, or a new one
    left = threads.close(timeout=5.0)   # waits for running loops; their names if any is left

There is no upper bound: every loop gets a thread at once (an actor loop blocks its thread
until the actor stops, so a bounded pool could deadlock a tree whose actors wait on each
other). A thread idle for ``idle_s`` ends, so a quiet daemon holds only the threads its live
actors use. After ``close``, loops still get threads but these end with their loop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Loop = Callable[[], object]
_JOIN_FLOOR_S = 0.5
"""What ``close`` gives a thread that has no loop left to end, even past its deadline."""
_PRUNE_FLOOR = 64
"""``_workers`` below this size is never pruned on a start."""
_Work = tuple[Loop, str] | None
"""A loop and the actor's name, or ``None``: end the thread."""


class _Worker:
    __slots__ = ("inbox", "thread")

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None


class ActorThreads:
    """A pool of daemon threads without an upper bound, each running one actor loop at a time."""

    def __init__(self, idle_s: float = 10.0) -> None:
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._idle: list[_Worker] = []
        self._busy: dict[_Worker, str] = {}
        self._workers: set[_Worker] = set()
        """Every worker whose thread may still be alive (pruned as new ones start)."""
        self._prune_at = _PRUNE_FLOOR
        """``_workers`` is pruned when it reaches this size: twice what the last pruning kept."""
        self._closed = False
        self.started = 0
        """Threads started so far (a reused thread is not counted again)."""

    def run(self, loop: Loop, name: str) -> None:
        """Run ``loop`` on an idle thread, or on a new one if none is idle."""
        with self._lock:
            worker = self._idle.pop() if self._idle else None
            fresh = worker is None
            if worker is None:
                worker = _Worker()
                self.started += 1
                if len(self._workers) >= self._prune_at:
                    self._prune()
                self._workers.add(worker)
            self._busy[worker] = name
        if not fresh:
            worker.inbox.put((loop, name))
            return
        thread = threading.Thread(
            target=self._serve, args=(worker, loop, name), name=self._label(name), daemon=True
        )
        worker.thread = thread
        try:
            self._spawn(thread)
        except BaseException:  # no thread to be had: the actor's start fails, nothing is kept
            with self._lock:
                del self._busy[worker]
                self._workers.discard(worker)
                self.started -= 1
                self._changed.notify_all()
            raise

    def running(self) -> list[str]:
        """The names of the actors whose loops are running now."""
        with self._lock:
            return sorted(self._busy.values())

    def idle(self) -> int:
        """How many threads wait for a loop now."""
        with self._lock:
            return len(self._idle)

    def close(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` s for running loops to end, then end the other threads.

        Returns the names of the actors whose loops were still running at the deadline (an
        empty list: every thread of the pool has ended)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            self._changed.wait_for(lambda: not self._busy, timeout=timeout)
            left = sorted(self._busy.values())
            idle, self._idle = self._idle, []
            ending = [w for w in self._workers if w not in self._busy]
        for worker in idle:
            worker.inbox.put(None)
        for worker in ending:  # idle, or past their last loop: each ends at once
            if worker.thread is not None:
                worker.thread.join(timeout=max(_JOIN_FLOOR_S, deadline - time.monotonic()))
        with self._lock:
            self._prune()
        return left

    # --- a worker thread -----------------------------------------------------------------

    def _serve(self, worker: _Worker, loop: Loop, name: str) -> None:
        thread = threading.current_thread()
        work: _Work = (loop, name)
        while work is not None:
            loop, name = work
            thread.name = self._label(name)
            try:
                loop()
            except BaseException:  # pykka's loop handles its own; never lose the thread quietly
                log.exception("actor loop of %s raised", name)
            work = self._next(worker)

    def _next(self, worker: _Worker) -> _Work:
        """Become idle; the next loop handed to this thread, or ``None`` to end it."""
        with self._lock:
            del self._busy[worker]
            self._changed.notify_all()
            if self._closed:
                return None
            self._idle.append(worker)
        try:
            return worker.inbox.get(timeout=self.idle_s)
        except queue.Empty:
            pass
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)
                return None
        return worker.inbox.get()  # ``run`` took this thread just now; its loop is on the way

    def _prune(self) -> None:
        """Forget workers whose thread has ended (with the lock held). Called when the set has
        doubled since the last pruning, so a burst of new threads costs O(1) each, not a scan
        of every thread per start (2.7% of a 10,000-market burst's GIL samples)."""
        self._workers = {
            w for w in self._workers if w.thread is None or w.thread.is_alive() or w in self._busy
        }
        self._prune_at = max(_PRUNE_FLOOR, 2 * len(self._workers))

    def _spawn(self, thread: threading.Thread) -> None:
        thread.start()  # RuntimeError when the process may start no more threads

    def _label(self, name: str) -> str:
        return f"actor:{name}"
