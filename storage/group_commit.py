"""Leader/follower group commit: concurrent writers share one durable transaction.

Each caller queues its write function. If no one is leading, it becomes the leader: it drains
the queue and hands the whole batch to ``commit_batch``, which runs every function in one LMDB
write transaction and commits it once (one fsync). Callers that arrive while a leader works wait;
after each batch the leader wakes the callers whose functions were in it, and once its own have
committed it hands the leadership to the oldest caller still waiting, who takes all that is
queued at once. No caller returns before the transaction holding its write has committed:
grouping saves fsyncs, it does not weaken them::

    >>> committed = []
    >>> def commit_batch(ops: list[Op[Any]]) -> None:
    ...     for op in ops:
    ...         op.set_value(op.fn(None))
    ...     # ... commit here, then release the outcomes:
    ...     for op in ops:
    ...         op.finish()
    ...     committed.append(len(ops))
    >>> group = GroupCommit(commit_batch)
    >>> group.submit(lambda txn: 42)
    42
    >>> [op.outcome() for op in group.submit_many([lambda t: 1, lambda t: 2])]
    [1, 2]
    >>> committed   # the two-function burst went in one batch
    [1, 2]

``submit_many`` keeps its functions together in one batch. ``commit_batch`` must mark every op it
is given done (``finish`` or ``fail``), and only once its outcome is final.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from storage.errors import StorageError

T = TypeVar("T")
_UNSET: Any = object()
WAIT_S = 120.0
"""How long a writer waits for the leader's transaction (or ``exclusive`` for the leadership)
before it gives up with a ``StorageError``: a commit that takes longer means a stalled disk.
A write given up on may still commit afterwards; its caller treats it as failed, and an actor
that crashes on it reloads what is durable when it restarts."""


class Op(Generic[T]):
    """One queued write function and its outcome, released to its caller once ``done``.

    A committer records the outcome with ``set_value``/``set_error`` while it works, and sets
    ``done`` (``finish``) only when that outcome is final: after the commit, or after a rollback
    that will not be retried (``fail``).
    """

    __slots__ = ("_error", "_value", "done", "fn")

    def __init__(self, fn: Callable[[Any], T]) -> None:
        self.fn = fn
        self.done = False
        self._value: T = _UNSET
        self._error: BaseException | None = None

    def set_value(self, value: T) -> None:
        self._value, self._error = value, None

    def set_error(self, error: BaseException) -> None:
        self._value, self._error = _UNSET, error

    def finish(self) -> None:
        """Release the recorded outcome to the caller."""
        self.done = True

    def fail(self, error: BaseException) -> None:
        """Record ``error`` as the final outcome."""
        self.set_error(error)
        self.finish()

    def reset(self) -> None:
        """Forget an outcome recorded in an attempt that was rolled back, to run it again."""
        self._value, self._error, self.done = _UNSET, None, False

    @property
    def error(self) -> BaseException | None:
        return self._error

    def result(self) -> T:
        """The function's return value, or raise what it (or its commit) raised."""
        if not self.done:
            raise StorageError("write not committed yet")
        if self._error is not None:
            raise self._error
        return self._value

    def outcome(self) -> T | Exception:
        """The return value, or the ``Exception`` that failed it (other errors are raised)."""
        if self._error is not None and not isinstance(self._error, Exception):
            raise self._error
        return self._error if self._error is not None else self.result()


class _Group:
    """One caller's ops, queued together, and the event that wakes that caller alone.

    ``wake`` exists only for a caller that found a leader at work and waits: a caller that leads
    its own write (the common case of a lone writer) never needs one.
    """

    __slots__ = ("lead", "ops", "wake")

    def __init__(self, ops: list[Op[Any]]) -> None:
        self.ops = ops
        self.wake: threading.Event | None = None
        self.lead = False
        """Set with ``wake`` when leadership is handed to this group's caller."""

    def release(self) -> None:
        """Wake this group's caller, if it waits (called with the results, or the lead, set)."""
        if self.wake is not None:
            self.wake.set()


class GroupCommit:
    """The queue and the leadership of group commit; ``commit_batch`` does the transaction.

    One lock guards the queue and the ``leading`` flag. A caller that finds a leader at work
    waits on its own event: the leader sets it when the caller's functions have committed, or,
    when the leader is done with its own, to hand the leadership to the oldest waiting caller.
    So a batch wakes exactly its own callers, never the whole queue (with hundreds of writers
    waiting, waking them all after every batch cost more than the writes).
    """

    def __init__(
        self,
        commit_batch: Callable[[list[Op[Any]]], None],
        max_batch: int = 256,
        wait_s: float = WAIT_S,
    ):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._commit_batch = commit_batch
        self.max_batch = max_batch
        self.wait_s = wait_s
        """The longest a caller waits for another's transaction (see ``WAIT_S``)."""
        self._queue: deque[_Group] = deque()
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        """Signalled when leadership becomes free, if ``exclusive`` waits for it."""
        self._queued = threading.Condition(self._lock)
        """Signalled when a write is queued, if ``wait_queued`` waits for one."""
        self._waiters = 0
        """Callers of ``exclusive`` and ``wait_queued`` waiting on a condition: a lone writer's
        path notifies neither condition while this is 0."""
        self._leading = False
        self._leader_thread: int | None = None
        self.batches = 0
        """Batches handed to ``commit_batch``."""

    def submit(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn`` in a group transaction; return its value once that has committed."""
        op: Op[T] = Op(fn)
        self._run([op])
        return op.result()

    def submit_many(self, fns: Iterable[Callable[[Any], T]]) -> list[Op[T]]:
        """Run all ``fns`` in one batch (each isolated by the committer); return their ops."""
        ops: list[Op[T]] = [Op(fn) for fn in fns]
        if ops:
            self._run(ops)
        return ops

    @property
    def queued(self) -> int:
        """Write functions waiting for a leader to take them."""
        with self._lock:
            return sum(len(group.ops) for group in self._queue)

    def wait_queued(self, n: int, timeout: float) -> bool:
        """Wait until at least ``n`` functions are queued; whether that happened in time."""
        with self._lock:
            self._waiters += 1
            try:
                return self._queued.wait_for(
                    lambda: sum(len(group.ops) for group in self._queue) >= n, timeout
                )
            finally:
                self._waiters -= 1

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Take the leadership: no batch runs until the block ends (used by ``Store.close``)."""
        if self._leader_thread == threading.get_ident():
            raise StorageError("cannot close the store from inside a write function")
        with self._lock:
            self._waiters += 1
            try:
                if not self._free.wait_for(lambda: not self._leading, self.wait_s):
                    raise StorageError(f"a write has not finished within {self.wait_s:g} s")
            finally:
                self._waiters -= 1
            self._leading = True
        try:
            yield
        finally:
            self._pass_on()

    def _run(self, ops: list[Op[Any]]) -> None:
        if self._leader_thread == threading.get_ident():
            raise StorageError("a write function must not write through the store; use its Txn")
        mine = _Group(ops)
        with self._lock:
            self._queue.append(mine)
            if self._waiters:
                self._queued.notify_all()
            follow = self._leading
            if follow:
                wake = mine.wake = threading.Event()
            self._leading = True
        if follow:
            try:
                if not wake.wait(self.wait_s):
                    raise StorageError(
                        f"no commit within {self.wait_s:g} s (a stalled disk?): this write may "
                        "or may not be durable"
                    )
            except BaseException:  # interrupted while waiting: withdraw, pass on a handed lead
                with self._lock:
                    self._withdraw(mine)
                    handed = mine.lead
                if handed:
                    self._pass_on()
                raise
            if not mine.lead:
                return  # committed by another leader
        self._leader_thread = threading.get_ident()
        try:
            while not ops[-1].done:
                self._lead()
        except BaseException:
            with self._lock:
                self._withdraw(mine)
            raise
        finally:
            self._leader_thread = None
            self._pass_on()

    def _withdraw(self, mine: _Group) -> None:
        for i, group in enumerate(self._queue):
            if group is mine:
                del self._queue[i]
                return

    def _pass_on(self) -> None:
        """Hand the leadership to the oldest waiting caller, or free it."""
        with self._lock:
            if self._queue:
                heir = self._queue[0]
                heir.lead = True
                heir.release()  # queued behind a leader, so it waits on its event
            else:
                self._leading = False
                if self._waiters:
                    self._free.notify_all()

    def _lead(self) -> None:
        batch: list[Op[Any]] = []
        groups: list[_Group] = []
        with self._lock:
            while self._queue and (
                not batch or len(batch) + len(self._queue[0].ops) <= self.max_batch
            ):
                group = self._queue.popleft()
                groups.append(group)
                batch.extend(group.ops)
        if not batch:
            raise StorageError("group commit queue lost a write")  # cannot happen: a bug guard
        self.batches += 1
        try:
            self._commit_batch(batch)
        except Exception as exc:  # a committer bug must not strand the followers
            for op in batch:
                if not op.done:
                    op.fail(StorageError(f"write failed in its group commit: {exc!r}"))
        except BaseException as exc:  # KeyboardInterrupt and co. go on up in the leader
            for op in batch:
                if not op.done:
                    op.fail(StorageError(f"write aborted before commit: {exc!r}"))
            raise
        finally:
            for op in batch:
                if not op.done:
                    op.fail(StorageError("write left unfinished by the committer"))
            for group in groups:
                group.release()
