"""``Committer``: runs a batch of write functions in one durable LMDB write transaction.

``GroupCommit`` decides which functions share a transaction; the committer runs them::

    txn = env.begin(write=True)
    for each op:  child = env.begin(write=True, parent=txn); op.fn(Txn(child)); child.commit()
    txn.commit()                 # one fsync for the whole batch
    release every op's outcome   # only now do their callers return

A lone op runs directly in the transaction (no child: the common case costs nothing extra). An
op that raises is rolled back alone (its child is aborted) and its caller gets the exception. When
LMDB reports the map full, the whole batch is rolled back, the map doubles (``Gate.exclusive``
waits until no transaction of this process is open) and the batch runs again; at
``max_map_size`` each op is retried alone, so the one that cannot fit fails alone with
``StoreFullError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lmdb

from storage.errors import StorageError, StoreFullError
from storage.gate import Gate
from storage.group_commit import Op
from storage.txn import Handles, Txn

log = logging.getLogger("storage.store")


class Committer:
    """The write side of one environment: batches in, durable commits out, counters kept."""

    def __init__(
        self,
        path: Path,
        env: Callable[[], lmdb.Environment],
        gate: Gate,
        handles: Handles,
        max_map_size: int,
    ) -> None:
        self.path = path
        self._env = env
        self._gate = gate
        self._handles = handles
        self.max_map_size = max_map_size
        self.transactions = 0
        """Durable write transactions committed."""
        self.writes = 0
        """Write functions committed."""
        self.map_growths = 0

    def commit_batch(self, ops: list[Op[Any]]) -> None:
        """Run ``ops`` in one write transaction and commit it; grow the map and retry if full.

        At ``max_map_size`` a batch is retried one op at a time, so the write that cannot fit
        fails alone with ``StoreFullError``.
        """
        try:
            while not self._attempt(ops):
                self._grow()
        except StoreFullError as exc:
            if len(ops) == 1:
                ops[0].fail(exc)
                return
            for op in ops:
                self.commit_batch([op])
        except StorageError as exc:  # closed, or the resize gate timed out
            for op in ops:
                op.fail(_clone(exc))

    def _attempt(self, ops: list[Op[Any]]) -> bool:
        """One try at the batch; ``False`` if the map was full (all rolled back, to retry).

        Outcomes are released to callers (``Op.finish``) only after the commit.
        """
        for op in ops:
            op.reset()
        with self._gate.shared():
            env = self._env()
            txn = env.begin(write=True)
            try:
                if len(ops) == 1:
                    full = self._run_single(txn, ops[0])
                else:
                    full = self._run_nested(env, txn, ops)
                if full:
                    self._abort(txn)
                    return False
                if len(ops) == 1 and ops[0].error is not None:  # nothing left to commit
                    self._abort(txn)
                    ops[0].finish()
                    return True
                txn.commit()
            except lmdb.MapFullError:
                self._abort(txn)
                return False
            except lmdb.Error as exc:  # the commit itself failed (disk error, ...)
                self._abort(txn)
                for op in ops:
                    op.fail(StorageError(f"commit to {self.path} failed: {exc}"))
                return True
            except BaseException as exc:  # an op raised KeyboardInterrupt or the like
                self._abort(txn)
                for op in ops:
                    if not op.done:
                        op.fail(StorageError(f"write aborted before commit: {exc!r}"))
                raise
        committed = 0
        for op in ops:
            committed += op.error is None
            op.finish()
        self.transactions += 1
        self.writes += committed
        return True

    def _run_single(self, txn: lmdb.Transaction[bytes], op: Op[Any]) -> bool:
        """Run a lone op directly in ``txn``; whether the map was full."""
        view = Txn(txn, self._handles)
        try:
            value = op.fn(view)
        except Exception as exc:
            if view.map_full or isinstance(exc, lmdb.MapFullError):
                return True
            op.set_error(exc)
            return False
        except BaseException as exc:
            op.fail(exc)
            raise
        finally:
            view.close()
        if view.map_full:
            return True
        op.set_value(value)
        return False

    def _run_nested(
        self, env: lmdb.Environment, txn: lmdb.Transaction[bytes], ops: list[Op[Any]]
    ) -> bool:
        """Run each op in its own child transaction of ``txn``; whether the map was full."""
        for op in ops:
            child = env.begin(write=True, parent=txn)
            view = Txn(child, self._handles)
            try:
                value = op.fn(view)
            except Exception as exc:
                self._abort(child)
                if view.map_full or isinstance(exc, lmdb.MapFullError):
                    return True
                op.set_error(exc)
                continue
            except BaseException as exc:
                self._abort(child)
                op.fail(exc)
                raise
            finally:
                view.close()
            if view.map_full:
                self._abort(child)
                return True
            child.commit()
            op.set_value(value)
        return False

    def _abort(self, txn: lmdb.Transaction[bytes]) -> None:
        """Abort a write transaction (or child); see ``Gate.hold_back`` for why readers wait."""
        with self._gate.hold_back():
            txn.abort()

    def _grow(self) -> None:
        with self._gate.exclusive():
            env = self._env()
            size = env.info()["map_size"]
            if size >= self.max_map_size:
                raise StoreFullError(
                    f"store at {self.path} is full: map of {size} bytes, max_map_size reached"
                )
            new = min(size * 2, self.max_map_size)
            env.set_mapsize(new)
            self.map_growths += 1
        log.info("store at %s: map grown from %d to %d bytes", self.path, size, new)


def _clone(exc: StorageError) -> StorageError:
    """A fresh copy of ``exc`` for each caller, so threads do not share one traceback."""
    try:
        copy = type(exc)(*exc.args)
    except TypeError:
        return exc
    copy.__cause__ = exc.__cause__
    return copy
