"""``Store``: the runner's one LMDB environment, with models in and out of named databases.

Open it once per data directory (a second opener, here or in another process, gets
``StoreLockedError``), read with ``get``/``items``/``count``, and write in durable transactions::

    >>> import tempfile
    >>> from protocol.records import AuditEntry, Cursor
    >>> with tempfile.TemporaryDirectory() as path, Store.open(path) as store:
    ...     cursor = Cursor(chain="hyperevm", block_number=7, block_hash="0x01")
    ...     store.put("cursors", b"hyperevm", cursor)
    ...     store.get("cursors", b"hyperevm", Cursor).block_number
    ...     def advance(txn: Txn) -> int:   # a state change and its audit entry, atomically
    ...         txn.put("cursors", b"hyperevm", cursor.model_copy(update={"block_number": 8}))
    ...         return txn.audit(AuditEntry(ts=0.0, actor="listener", action="advance"))
    ...     store.write(advance)
    ...     [key for key, _ in store.items("cursors")]
    7
    1
    [b'hyperevm']

Every write is one durable LMDB transaction (``sync=True``). Writes from several threads at the
same moment are grouped into one transaction (one fsync) by ``GroupCommit``; each caller still
returns only after its transaction is on disk, and a write function that raises fails alone, in
its own nested transaction. A write function may be called more than once (it is re-run after the
map grows) and on another writer's thread: it should only read and write through its ``Txn``.

The map starts at ``map_size`` and doubles when LMDB reports it full, up to ``max_map_size``;
the resize waits, through ``Gate``, until no transaction of this process is open.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar, overload

import lmdb
from pydantic import BaseModel

from protocol.codec import CODEC, Codec, CodecError
from protocol.records import AuditEntry, SchemaVersion
from storage.committer import Committer
from storage.errors import StorageError, StoreClosedError, StoredValueError
from storage.gate import Gate
from storage.group_commit import GroupCommit
from storage.lock import DirLock
from storage.migrate import ensure_schema
from storage.schema import DATABASES, MIGRATIONS, SCHEMA_VERSION, Database, Migration
from storage.txn import BadValueHandler, Handles, Txn, decode_value

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

MiB = 1024 * 1024
DEFAULT_MAP_SIZE = 64 * MiB
DEFAULT_MAX_MAP_SIZE = 16 * 1024 * MiB
ITEMS_BATCH = 256
"""How many entries ``items`` reads per read transaction."""


@dataclass(frozen=True)
class StoreStats:
    """A snapshot of the store's size and activity, for metrics and ``/readyz``."""

    path: str
    map_size: int
    """Bytes of address space mapped now (grows by doubling)."""
    max_map_size: int
    used_bytes: int
    """Bytes of the map in use: pages up to the last one written."""
    entries: dict[str, int]
    """Entries per named database."""
    transactions: int
    """Durable write transactions committed since open."""
    writes: int
    """Write functions committed since open (``writes / transactions`` is the grouping factor)."""
    map_growths: int
    bad_values: int
    """Values ``items`` skipped because they did not decode."""


class Store:
    """One open LMDB environment; build it with ``Store.open``."""

    def __init__(
        self,
        path: Path,
        env: lmdb.Environment,
        lock: DirLock,
        handles: Handles,
        *,
        max_map_size: int,
        on_bad_value: BadValueHandler | None,
        max_batch: int,
    ) -> None:
        self.path = path
        self.codec = handles.codec
        self.max_map_size = max_map_size
        self._env: lmdb.Environment | None = env
        self._lock = lock
        self._handles = handles
        self._gate = Gate()
        self._committer = Committer(path, self._require_env, self._gate, handles, max_map_size)
        self._group = GroupCommit(self._committer.commit_batch, max_batch=max_batch)
        self._on_bad_value = on_bad_value
        self._counter_lock = threading.Lock()
        self.bad_values = 0
        """Values ``items`` has skipped because they did not decode."""

    @property
    def transactions(self) -> int:
        """Durable write transactions committed since open."""
        return self._committer.transactions

    @property
    def writes(self) -> int:
        """Write functions committed since open (``writes / transactions``: the grouping)."""
        return self._committer.writes

    @property
    def map_growths(self) -> int:
        """Times the map has doubled since open."""
        return self._committer.map_growths

    # --- opening and closing -------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        max_map_size: int = DEFAULT_MAX_MAP_SIZE,
        codec: Codec = CODEC,
        migrations: Mapping[int, Migration] | None = None,
        schema_version: int = SCHEMA_VERSION,
        sync: bool = True,
        on_bad_value: BadValueHandler | None = None,
        max_batch: int = 256,
    ) -> Store:
        """Open (creating if needed) the store in directory ``path``.

        Takes the directory's lock, opens every database of ``DATABASES``, then checks the schema:
        a fresh store is stamped ``schema_version``; an older one is migrated with ``migrations``
        (default ``storage.schema.MIGRATIONS``) in one transaction; a newer one is refused with
        ``SchemaTooNewError``. ``sync=False`` makes commits non-durable and says so in the log.
        ``on_bad_value`` replaces the default report (a warning) of values ``items`` skips.
        A custom ``codec`` gets the store's own records (``SchemaVersion``, ``AuditEntry``)
        registered if it lacks them. Close the store (or use it as a context manager): the
        directory stays locked until then.
        """
        if not 0 < map_size <= max_map_size:
            raise ValueError(f"need 0 < map_size ({map_size}) <= max_map_size ({max_map_size})")
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        _ensure_registered(codec)
        lock = DirLock.acquire(directory)
        env: lmdb.Environment | None = None
        try:
            env = lmdb.open(
                str(directory),
                map_size=map_size,
                subdir=True,
                max_dbs=len(DATABASES),
                sync=sync,
                metasync=sync,
                writemap=False,
                max_spare_txns=4,
            )
            with env.begin(write=True) as txn:
                dbs: dict[str, lmdb._Database] = {
                    name: env.open_db(name.encode(), txn=txn) for name in DATABASES
                }
            handles = Handles(dbs, codec, env.max_key_size())
            store = cls(
                directory,
                env,
                lock,
                handles,
                max_map_size=max_map_size,
                on_bad_value=on_bad_value,
                max_batch=max_batch,
            )
        except BaseException as exc:
            if env is not None:
                env.close()
            lock.release()
            if isinstance(exc, lmdb.Error):
                raise StorageError(f"cannot open store at {directory}: {exc}") from exc
            raise
        if not sync:
            log.warning("store at %s opened with sync=False: commits are NOT durable", directory)
        try:
            ensure_schema(store, schema_version, MIGRATIONS if migrations is None else migrations)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Wait for the write in progress and the open reads, close LMDB, release the lock."""
        with self._group.exclusive(), self._gate.exclusive():
            env, self._env = self._env, None
            if env is not None:
                env.close()
        self._lock.release()

    @property
    def closed(self) -> bool:
        return self._env is None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}{', closed' if self.closed else ''})"

    # --- reads ---------------------------------------------------------------------------

    @overload
    def get(self, db: Database, key: bytes) -> BaseModel | None: ...
    @overload
    def get(self, db: Database, key: bytes, expect: type[M]) -> M | None: ...
    def get(self, db: Database, key: bytes, expect: type[M] | None = None) -> BaseModel | None:
        """The committed model at ``key`` in ``db``, or ``None``.

        Raises ``StoredValueError`` (naming ``db`` and ``key``) if the value does not decode or,
        with ``expect``, is of another type.
        """
        handle = self._handles[db]
        with self._gate.shared(), self._require_env().begin() as txn:
            buf = txn.get(key, db=handle)
        if buf is None:
            return None
        return decode_value(self.codec, db, key, buf, expect)

    def get_lenient(self, db: Database, key: bytes, expect: type[M]) -> M | None:
        """``get`` for a reader that can go on without the value: one that does not decode is
        counted in ``bad_values``, reported (logged, with its database and key) and answered
        ``None``, as ``items`` does. An actor reading its own state at start uses this, so that
        one bad value is not a crash on every restart."""
        try:
            return self.get(db, key, expect)
        except StoredValueError as exc:
            self.report_bad_value(exc)
            return None

    @overload
    def items(
        self,
        db: Database,
        prefix: bytes = b"",
        *,
        after: bytes | None = None,
        on_bad_value: BadValueHandler | None = None,
    ) -> Iterator[tuple[bytes, BaseModel]]: ...
    @overload
    def items(
        self,
        db: Database,
        prefix: bytes = b"",
        *,
        after: bytes | None = None,
        expect: type[M],
        on_bad_value: BadValueHandler | None = None,
    ) -> Iterator[tuple[bytes, M]]: ...
    def items(
        self,
        db: Database,
        prefix: bytes = b"",
        *,
        after: bytes | None = None,
        expect: type[M] | None = None,
        on_bad_value: BadValueHandler | None = None,
    ) -> Iterator[tuple[bytes, BaseModel]]:
        """``(key, model)`` of ``db`` whose key starts with ``prefix`` (and, given ``after``, is
        greater than it: a page's last key starts the next page), in key order.

        A value that does not decode (or is not an ``expect``) is skipped: it is counted in
        ``bad_values`` and reported to ``on_bad_value`` (default: the store's handler, else a
        logged warning), and iteration goes on. Entries are read ``ITEMS_BATCH`` at a time, each
        batch in its own short read transaction, so a long iteration never holds up a map resize
        and may see writes committed while it runs (each key at most once, in order).
        """
        for key, buf in self.raw_items(db, prefix, after=after):
            model = self.decode(db, key, buf, expect, on_bad_value=on_bad_value)
            if model is not None:
                yield key, model

    @overload
    def decode(
        self,
        db: Database,
        key: bytes,
        buf: bytes,
        expect: None = None,
        *,
        on_bad_value: BadValueHandler | None = None,
    ) -> BaseModel | None: ...
    @overload
    def decode(
        self,
        db: Database,
        key: bytes,
        buf: bytes,
        expect: type[M],
        *,
        on_bad_value: BadValueHandler | None = None,
    ) -> M | None: ...
    def decode(
        self,
        db: Database,
        key: bytes,
        buf: bytes,
        expect: type[M] | None = None,
        *,
        on_bad_value: BadValueHandler | None = None,
    ) -> BaseModel | None:
        """One value from ``raw_items``, decoded as ``items`` does: a bad one is counted,
        reported and answered with ``None``."""
        try:
            return decode_value(self.codec, db, key, buf, expect)
        except StoredValueError as exc:
            self.report_bad_value(exc, on_bad_value)
            return None

    def raw_items(
        self, db: Database, prefix: bytes = b"", *, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """``(key, stored bytes)`` of ``db`` whose key starts with ``prefix`` (and is greater
        than ``after``), in key order, undecoded: for a reader that needs a few fields of many
        values (``decode_value`` or ``items`` report a bad one). Read in batches, as ``items``."""
        handle = self._handles[db]
        if after is not None and after < prefix:
            after = None  # every key with the prefix is greater
        while True:
            chunk: list[tuple[bytes, bytes]] = []
            with self._gate.shared(), self._require_env().begin() as txn:
                cursor = txn.cursor(handle)
                found = cursor.set_range(after if after is not None else prefix)
                if found and after is not None and cursor.key() == after:
                    found = cursor.next()
                while found and len(chunk) < ITEMS_BATCH:
                    key, value = cursor.item()
                    if not key.startswith(prefix):
                        found = False
                        break
                    chunk.append((key, value))
                    found = cursor.next()
                cursor.close()
            yield from chunk
            if not found:
                return
            after = chunk[-1][0]

    def raw_values(
        self, db: Database, keys: Iterable[bytes]
    ) -> Iterator[tuple[bytes, bytes | None]]:
        """``(key, stored bytes or None)`` for each of ``keys``, in their order, undecoded,
        looked up ``ITEMS_BATCH`` to a read transaction."""
        handle = self._handles[db]
        pending = iter(keys)
        while batch := list(itertools.islice(pending, ITEMS_BATCH)):
            with self._gate.shared(), self._require_env().begin() as txn:
                found = [(key, txn.get(key, db=handle)) for key in batch]
            yield from found

    def count(self, db: Database) -> int:
        """Entries in ``db``."""
        handle = self._handles[db]
        with self._gate.shared(), self._require_env().begin() as txn:
            return txn.stat(handle)["entries"]

    # --- writes --------------------------------------------------------------------------

    def write(self, fn: Callable[[Txn], T]) -> T:
        """Run ``fn`` in a durable write transaction and return its value once committed.

        If ``fn`` raises, nothing it wrote is kept and the exception is raised here. ``fn`` may
        be grouped with concurrent writers' functions into one transaction, may run on another
        writer's thread and may run more than once (after a map resize).
        """
        return self._group.submit(fn)

    def write_many(self, fns: Iterable[Callable[[Txn], T]]) -> list[T | Exception]:
        """Run a burst of write functions in one durable transaction (one fsync).

        Each runs in its own nested transaction: one that raises is rolled back alone and its
        exception takes its place in the returned list; the others commit.

            >>> # results = store.write_many([save_a, save_b])  # -> [value_a, ValueError(...)]
        """
        return [op.outcome() for op in self._group.submit_many(fns)]

    def put(self, db: Database, key: bytes, model: BaseModel) -> None:
        """Durably store ``model`` at ``key`` in ``db``."""
        self.write(lambda txn: txn.put(db, key, model))

    def delete(self, db: Database, key: bytes) -> bool:
        """Durably remove ``key`` from ``db``; whether it was there."""
        return self.write(lambda txn: txn.delete(db, key))

    def audit(self, entry: AuditEntry) -> int:
        """Durably append ``entry`` to the audit log; its sequence number."""
        return self.write(lambda txn: txn.audit(entry))

    @property
    def queued_writes(self) -> int:
        """Write functions waiting for the transaction in progress to finish (a gauge)."""
        return self._group.queued

    def wait_queued_writes(self, n: int, timeout: float) -> bool:
        """Wait until ``n`` write functions are queued (for tests); whether they were in time."""
        return self._group.wait_queued(n, timeout)

    # --- maintenance ---------------------------------------------------------------------

    def backup(self, dest: str | os.PathLike[str]) -> Path:
        """Write a compacted copy of the environment into the empty directory ``dest``.

        The copy is a consistent snapshot, fsynced, and opens as a ``Store`` of its own.
        """
        target = Path(dest)
        target.mkdir(parents=True, exist_ok=True)
        if any(target.iterdir()):
            raise StorageError(f"backup destination {target} is not empty")
        with self._gate.shared():
            self._require_env().copy(str(target), compact=True)
        for name in ("data.mdb", "."):
            fd = os.open(target / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return target

    def stats(self) -> StoreStats:
        """Sizes, entries per database and write counters."""
        with self._gate.shared():
            env = self._require_env()
            info = env.info()
            psize = env.stat()["psize"]
            with env.begin() as txn:
                entries: dict[str, int] = {
                    name: txn.stat(self._handles[name])["entries"] for name in DATABASES
                }
        return StoreStats(
            path=str(self.path),
            map_size=info["map_size"],
            max_map_size=self.max_map_size,
            used_bytes=(info["last_pgno"] + 1) * psize,
            entries=entries,
            transactions=self.transactions,
            writes=self.writes,
            map_growths=self.map_growths,
            bad_values=self.bad_values,
        )

    # --- internals -----------------------------------------------------------------------

    def _require_env(self) -> lmdb.Environment:
        env = self._env
        if env is None:
            raise StoreClosedError(f"store at {self.path} is closed")
        return env

    def report_bad_value(
        self, exc: StoredValueError, handler: BadValueHandler | None = None
    ) -> None:
        """Count a value that did not decode in ``bad_values`` and report it (to ``handler``,
        else the store's handler, else a logged warning): what ``items`` does with one it
        skips, for a reader of single values that goes on without it::

            try:
                proof = get_proof(store, key)
            except StoredValueError as exc:
                store.report_bad_value(exc)
                proof = None
        """
        with self._counter_lock:
            self.bad_values += 1
        handler = handler or self._on_bad_value
        if handler is not None:
            handler(exc)
        else:
            log.warning("skipped a value in %s: %s", self.path, exc)


def _ensure_registered(codec: Codec) -> None:
    """Register the store's own records with a custom ``codec`` that lacks them."""
    for model, kind in ((SchemaVersion, "schema_version"), (AuditEntry, "audit_entry")):
        try:
            codec.kind_of(model)
        except CodecError:
            codec.register(model, kind=kind)
