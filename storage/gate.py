"""A small readers/writer gate: many transactions at once, or one map resize alone.

LMDB's ``mdb_env_set_mapsize`` must not run while any transaction of this process is open. Every
transaction of the store runs inside ``gate.shared()``; growing the map runs inside
``gate.exclusive()``, which waits for the open transactions to end and holds new ones back::

    >>> gate = Gate()
    >>> with gate.shared():
    ...     with gate.shared():  # re-entrant within one thread
    ...         pass
    >>> with gate.exclusive():
    ...     pass

A waiting ``exclusive()`` has priority over new ``shared()`` entrants, so a resize is not starved
by a stream of readers. Asking for ``exclusive()`` while this thread is inside ``shared()`` would
wait for itself; it raises ``RuntimeError`` instead.

``hold_back()`` keeps new ``shared()`` entrants out for a moment without waiting for the ones
inside. The store aborts write transactions in it: with py-lmdb 3.0, ``Transaction.abort()`` of a
write transaction can starve behind a stream of concurrent read transactions (measured: seconds,
once 37 s, with two threads reading in a loop), while ``commit()`` does not. Holding new readers
back lets the abort through in microseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from storage.errors import StorageError


class Gate:
    """Readers/writer gate; ``shared`` is re-entrant per thread, ``exclusive`` is not."""

    def __init__(self, exclusive_timeout: float = 60.0) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._shared = 0
        self._exclusive = False
        self._waiting = 0
        self._local = threading.local()
        self._enter = _Shared(self)
        self.exclusive_timeout = exclusive_timeout

    def _depth(self) -> int:
        depth: int = getattr(self._local, "depth", 0)
        return depth

    def shared(self) -> AbstractContextManager[None]:
        """Hold the gate open for one transaction (or a nest of them) in this thread."""
        return self._enter

    def _acquire_shared(self) -> None:
        local = self._local
        depth: int = getattr(local, "depth", 0)
        if depth == 0:
            with self._cond:
                while self._exclusive or self._waiting:
                    self._cond.wait()
                self._shared += 1
        local.depth = depth + 1

    def _release_shared(self) -> None:
        local = self._local
        depth: int = local.depth - 1
        local.depth = depth
        if depth == 0:
            with self._cond:
                self._shared -= 1
                if self._shared == 0 and (self._waiting or self._exclusive):
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Wait until no transaction is open, then hold every new one back until the block ends.

        Raises ``StorageError`` if the open transactions do not end within ``exclusive_timeout``.
        """
        if self._depth():
            raise RuntimeError("exclusive() inside shared() in the same thread would deadlock")
        with self._cond:
            self._waiting += 1
            try:
                ok = self._cond.wait_for(
                    lambda: not self._exclusive and self._shared == 0, self.exclusive_timeout
                )
            finally:
                self._waiting -= 1
            if not ok:
                self._cond.notify_all()
                raise StorageError(
                    f"{self._shared} transaction(s) still open after {self.exclusive_timeout} s"
                )
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()

    @contextmanager
    def hold_back(self) -> Iterator[None]:
        """Keep new ``shared()`` entrants (of other threads) waiting until the block ends.

        Unlike ``exclusive()`` it does not wait for the transactions already open, so it may be
        used inside ``shared()``.
        """
        with self._cond:
            self._waiting += 1
        try:
            yield
        finally:
            with self._cond:
                self._waiting -= 1
                self._cond.notify_all()

    @property
    def open_transactions(self) -> int:
        """How many threads are inside ``shared()`` now (for tests and diagnostics)."""
        with self._cond:
            return self._shared


class _Shared:
    """The context manager behind ``Gate.shared()``: a plain class, it is on every read's path."""

    __slots__ = ("_gate",)

    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    def __enter__(self) -> None:
        self._gate._acquire_shared()

    def __exit__(self, *exc: object) -> None:
        self._gate._release_shared()
