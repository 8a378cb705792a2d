"""State indexes: what a restart must load, kept in the transaction that writes the records.

A daemon that has resolved many markets holds far more finished records (finalized jobs,
confirmed intents) than live ones, and its actors need only the live ones and a count of the
rest at start. A ``StateIndex`` covers one family of records (the jobs; one chain's intents): in
the ``index`` database it keeps, for each record it was given, a *live key* while the record is
live (by ``live``, a test of its fields), and one ``StateCounts`` record for the whole family. Both
are updated from the state the record had *as stored* (read in the same transaction), so they
are exact whichever code path writes, and a crash loses them together with the records::

    >>> import tempfile
    >>> from protocol.records import Job, JobState
    >>> from protocol.spec import MarketKey
    >>> from storage.store import Store
    >>> key = MarketKey(chain="dev", address="0x" + "11" * 20)
    >>> job = Job(key=key, due_at=5.0, next_attempt_at=5.0)
    >>> with tempfile.TemporaryDirectory() as path, Store.open(path) as store:
    ...     store.write(lambda txn: JOBS.put_many(txn, [(key.db_key(), job)]))
    ...     done = job.model_copy(update={"state": JobState.FINALIZED})
    ...     store.write(lambda txn: JOBS.put_many(txn, [(key.db_key(), done)]))
    ...     (JOBS.counts(store), list(JOBS.live_keys(store)))
    ({'finalized': 1}, [])

Records written without their index (a store of schema 1, a fixture) are found by ``missing``
and indexed again by ``rebuild``; ``forget`` drops a live key when its reader no longer needs it
(a done intent deeper than the signer's reorg watch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from protocol.codec import CODEC
from protocol.records import Job, StateCounts
from protocol.tx_records import TxIntent, intents_prefix
from storage.errors import StoredValueError
from storage.schema import Database
from storage.txn import Txn

if TYPE_CHECKING:
    from storage.store import Store

log = logging.getLogger(__name__)
Fields = Mapping[str, Any]
"""A record's fields: a model's ``__dict__``, or the stored envelope's data (``Codec.peek``)."""

_MARK = b""
UNREADABLE = "unreadable"
"""The state counted for a stored record that does not decode."""
_UNREADABLE: Fields = {"state": UNREADABLE}


@dataclass(frozen=True)
class StateIndex:
    """Counts by state and the keys of the live records of one family (see the module)."""

    name: str
    """The family, e.g. ``jobs`` or ``txs/dev``: the index's keys start with it."""
    db: Database
    prefix: bytes
    """What the family's record keys start with in ``db``."""
    model: type[BaseModel]
    live: Callable[[Fields], bool]

    @property
    def counts_key(self) -> bytes:
        return b"counts/" + self.name.encode()

    @property
    def live_prefix(self) -> bytes:
        return b"live/" + self.name.encode() + b"/"

    # --- writes (inside a write function) ------------------------------------------------

    def put_many(self, txn: Txn, records: Iterable[tuple[bytes, BaseModel]]) -> None:
        """Put each ``(key, record)`` in ``db`` and keep the index up to date."""
        deltas: dict[str, int] = {}
        for key, record in records:
            before = self._stored_fields(txn, key)
            txn.put(self.db, key, record)
            if before is not None:
                state = str(before.get("state"))
                deltas[state] = deltas.get(state, 0) - 1
            after = record.__dict__
            state = str(after["state"])
            deltas[state] = deltas.get(state, 0) + 1
            self._mark(txn, key, self.live(after))
        self._add(txn, deltas)

    def forget(self, txn: Txn, keys: Iterable[bytes]) -> None:
        """Drop the live keys of ``keys`` (their records and the counts stay)."""
        for key in keys:
            txn.delete("index", self.live_prefix + key)

    def rebuild(self, txn: Txn) -> int:
        """Index every record of the family again from a full scan; the records indexed."""
        for key, _ in list(txn.raw_items("index", self.live_prefix)):
            txn.delete("index", key)
        counts: dict[str, int] = {}
        found = list(txn.raw_items(self.db, self.prefix))
        for key, buf in found:
            fields = self._fields(buf)
            state = str(fields.get("state"))
            counts[state] = counts.get(state, 0) + 1
            self._mark(txn, key, self.live(fields))
        txn.put("index", self.counts_key, StateCounts(counts=counts))
        return len(found)

    # --- reads ---------------------------------------------------------------------------

    def counts(self, store: Store) -> dict[str, int] | None:
        """The family's counts by state; ``None`` if it was never indexed, or if its record
        does not decode (reported): readers then rebuild the index."""
        record = store.get_lenient("index", self.counts_key, StateCounts)
        return None if record is None else {k: v for k, v in record.counts.items() if v}

    def live_keys(self, store: Store) -> Iterator[bytes]:
        """The keys (in ``db``) of the family's live records, in key order."""
        cut = len(self.live_prefix)
        for key, _ in store.raw_items("index", self.live_prefix):
            yield key[cut:]

    def live_records(self, store: Store) -> Iterator[tuple[bytes, bytes]]:
        """``(key, stored bytes)`` of the live records (a key whose record is gone is skipped)."""
        for key, buf in store.raw_values(self.db, self.live_keys(store)):
            if buf is not None:
                yield key, buf

    def missing(self, store: Store) -> bool:
        """Whether the family has records but no index (written by code that kept none, or a
        counts record that does not decode, reported)."""
        if store.get_lenient("index", self.counts_key, StateCounts) is not None:
            return False
        return next(iter(store.raw_items(self.db, self.prefix)), None) is not None

    def stored_state(self, txn: Txn, key: bytes) -> str:
        """The state the index counts for the record at ``key`` as stored now (``UNREADABLE``
        for one that does not decode): what a caller keeping its own counts moves when it
        writes over it."""
        fields = self._stored_fields(txn, key)
        return UNREADABLE if fields is None else str(fields.get("state"))

    # --- inside --------------------------------------------------------------------------

    def _stored_fields(self, txn: Txn, key: bytes) -> Fields | None:
        buf = txn.raw.get(key, db=txn.dbi(self.db))
        return None if buf is None else self._fields(buf)

    def _fields(self, buf: bytes) -> Fields:
        fields = CODEC.peek(buf, self.model)
        if fields is not None:
            return fields
        try:  # an older version or a bad value: the full decode upgrades or rejects it
            return CODEC.decode(buf, self.model).__dict__
        except Exception:  # counted, never live; the family's reader reports it when it reads it
            return _UNREADABLE

    def _mark(self, txn: Txn, key: bytes, live: bool) -> None:
        if live:
            txn.raw.put(self.live_prefix + key, _MARK, db=txn.dbi("index"))
        else:
            txn.delete("index", self.live_prefix + key)

    def _add(self, txn: Txn, deltas: Mapping[str, int]) -> None:
        if not any(deltas.values()):
            return
        try:
            record = txn.get("index", self.counts_key, StateCounts)
        except StoredValueError as exc:  # counted again from the records, this one included
            log.error("%s; rebuilding the %s index", exc, self.name)
            self.rebuild(txn)
            return
        counts = dict(record.counts) if record is not None else {}
        for state, delta in deltas.items():
            counts[state] = counts.get(state, 0) + delta
        txn.put("index", self.counts_key, StateCounts(counts=counts))


def _live_job(fields: Fields) -> bool:
    return str(fields.get("state")) in ("waiting", "running")


def _live_intent(fields: Fields) -> bool:
    """Queued or pending, or done with an inclusion (the signer watches it for reorgs)."""
    state = str(fields.get("state"))
    return state in ("queued", "pending") or fields.get("inclusion") is not None


JOBS = StateIndex("jobs", "jobs", b"", Job, _live_job)
"""The scheduler's jobs: live while WAITING or RUNNING."""


def intents_index(chain: str) -> StateIndex:
    """One chain's signer intents: live while queued or pending, or while watched for reorgs."""
    return StateIndex(f"txs/{chain}", "txs", intents_prefix(chain), TxIntent, _live_intent)


def chains_with_intents(txn: Txn) -> list[str]:
    """The chains that have intents in ``txs`` (keys ``<chain>/i/...``), one seek a chain."""
    chains: list[str] = []
    with txn.raw.cursor(txn.dbi("txs")) as cursor:
        found = cursor.first()
        while found:
            chain, sep, _ = bytes(cursor.key()).partition(b"/")
            if not sep:
                found = cursor.next()
                continue
            if cursor.set_range(chain + b"/i/") and bytes(cursor.key()).startswith(chain + b"/i/"):
                chains.append(chain.decode(errors="replace"))
            found = cursor.set_range(chain + b"0")  # "0" follows "/": past every key of chain
    return chains


def build_all(txn: Txn) -> None:
    """Migration 1 -> 2: index the jobs and every chain's intents."""
    JOBS.rebuild(txn)
    for chain in chains_with_intents(txn):
        intents_index(chain).rebuild(txn)
