"""``Txn``: typed access to one LMDB write transaction, with models in and models out.

A ``Txn`` is what a write function receives from ``Store.write``; it is valid only while that
function runs::

    >>> from protocol.records import AuditEntry, Cursor
    >>> def advance(txn: Txn) -> int:
    ...     cursor = Cursor(chain="hyperevm", block_number=10, block_hash="0xab")
    ...     txn.put("cursors", b"hyperevm", cursor)
    ...     return txn.audit(AuditEntry(ts=0.0, actor="listener", action="cursor"))
    >>> # seq = store.write(advance)   # the cursor and its audit entry commit together

Values are codec envelopes; a value that does not decode raises ``StoredValueError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar, overload

import lmdb
from pydantic import BaseModel

from protocol.codec import Codec, CodecError
from protocol.records import AuditEntry
from storage.errors import StorageError, StoredValueError, UnknownDatabaseError
from storage.schema import DATABASES, Database

M = TypeVar("M", bound=BaseModel)
BadValueHandler = Callable[[StoredValueError], None]
"""Told about each value that ``items`` skips because it does not decode."""

SEQ_BYTES = 8


def seq_key(seq: int) -> bytes:
    """The audit key of sequence number ``seq``: 8 bytes, big-endian, so keys sort by number."""
    return seq.to_bytes(SEQ_BYTES, "big")


def check_key(key: bytes, max_size: int = 511) -> None:
    """Raise ``ValueError`` unless ``key`` is non-empty bytes of at most ``max_size`` bytes."""
    if not isinstance(key, bytes):
        raise TypeError(f"keys are bytes, not {type(key).__name__}")
    if not 0 < len(key) <= max_size:
        raise ValueError(f"key {key[:32]!r}... of {len(key)} bytes; keys are 1..{max_size} bytes")


def decode_value(codec: Codec, db: str, key: bytes, buf: bytes, expect: type[M] | None = None) -> M:
    """``codec.decode`` that names the database and key in its ``StoredValueError``."""
    try:
        if expect is None:
            return codec.decode(buf)
        return codec.decode(buf, expect)
    except CodecError as exc:
        raise StoredValueError(db, key, str(exc)) from exc


class Handles:
    """The open database handles of an environment and the codec their values go through."""

    def __init__(self, dbs: Mapping[str, lmdb._Database], codec: Codec, max_key: int) -> None:
        self.dbs = dict(dbs)
        self.codec = codec
        self.max_key = max_key

    def __getitem__(self, db: str) -> lmdb._Database:
        try:
            return self.dbs[db]
        except KeyError:
            raise UnknownDatabaseError(
                f"no database {db!r}; the store has {', '.join(DATABASES)}"
            ) from None


def iter_items(
    raw: lmdb.Transaction[bytes],
    handles: Handles,
    db: Database,
    prefix: bytes = b"",
    start: bytes | None = None,
) -> Iterator[tuple[bytes, bytes]]:
    """Raw ``(key, value)`` pairs of ``db`` whose key starts with ``prefix``, from ``start``."""
    with raw.cursor(handles[db]) as cursor:
        found = cursor.set_range(start if start is not None else prefix)
        while found:
            key, value = cursor.item()
            if not key.startswith(prefix):
                return
            yield key, value
            found = cursor.next()


class Txn:
    """One write transaction (or one nested child of a group commit)."""

    def __init__(self, raw: lmdb.Transaction[bytes], handles: Handles) -> None:
        self._raw: lmdb.Transaction[bytes] | None = raw
        self._handles = handles
        self.map_full = False
        """Set when LMDB ran out of map, even if the write function swallowed the error."""

    @property
    def raw(self) -> lmdb.Transaction[bytes]:
        """The py-lmdb transaction, for migrations that must touch bytes; use with ``dbi``."""
        if self._raw is None:
            raise StorageError("this Txn is finished; use it only inside its write function")
        return self._raw

    def dbi(self, db: Database) -> lmdb._Database:
        """The py-lmdb handle of ``db``."""
        return self._handles[db]

    def close(self) -> None:
        """Forget the transaction; the store calls this when the write function returns."""
        self._raw = None

    @overload
    def get(self, db: Database, key: bytes) -> BaseModel | None: ...
    @overload
    def get(self, db: Database, key: bytes, expect: type[M]) -> M | None: ...
    def get(self, db: Database, key: bytes, expect: type[M] | None = None) -> BaseModel | None:
        """The model at ``key`` (seeing this transaction's own writes), or ``None``."""
        buf = self.raw.get(key, db=self._handles[db])
        if buf is None:
            return None
        return decode_value(self._handles.codec, db, key, buf, expect)

    def put(self, db: Database, key: bytes, model: BaseModel) -> None:
        """Store ``model`` (a codec-registered type) at ``key``."""
        check_key(key, self._handles.max_key)
        buf = self._handles.codec.encode(model)
        self._put_raw(db, key, buf, append=False)

    def delete(self, db: Database, key: bytes) -> bool:
        """Remove ``key``; whether it was there."""
        return self.raw.delete(key, db=self._handles[db])

    def audit(self, entry: AuditEntry) -> int:
        """Append ``entry`` to ``audit`` under the next sequence number, and return that number.

        The number is one past the highest key this transaction sees, so numbers increase with
        commit order and an aborted transaction leaves no gap.
        """
        handle = self._handles["audit"]
        with self.raw.cursor(handle) as cursor:
            seq = int.from_bytes(cursor.key(), "big") + 1 if cursor.last() else 1
        self._put_raw("audit", seq_key(seq), self._handles.codec.encode(entry), append=True)
        return seq

    def items(
        self,
        db: Database,
        prefix: bytes = b"",
        on_bad_value: BadValueHandler | None = None,
    ) -> Iterator[tuple[bytes, BaseModel]]:
        """``(key, model)`` in key order; a bad value raises, or goes to ``on_bad_value``."""
        for key, buf in iter_items(self.raw, self._handles, db, prefix):
            try:
                model: BaseModel = decode_value(self._handles.codec, db, key, buf)
            except StoredValueError as exc:
                if on_bad_value is None:
                    raise
                on_bad_value(exc)
                continue
            yield key, model

    def raw_items(self, db: Database, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Undecoded ``(key, value)`` of ``db`` whose key starts with ``prefix``, in key order
        (collect them before writing to ``db``)."""
        return iter_items(self.raw, self._handles, db, prefix)

    def count(self, db: Database) -> int:
        """Entries in ``db`` as this transaction sees them."""
        return self.raw.stat(self._handles[db])["entries"]

    def _put_raw(self, db: Database, key: bytes, buf: bytes, *, append: bool) -> None:
        try:
            self.raw.put(key, buf, db=self._handles[db], append=append)
        except lmdb.MapFullError:
            self.map_full = True
            raise
