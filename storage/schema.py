"""The layout of the store: its named databases, its schema version and the migrations between.

A migration moves the layout from version ``n`` to ``n + 1``. It receives the ``Txn`` of the
single write transaction that runs every pending migration and then records the new version, so
an upgrade either happens completely or not at all::

    >>> def split_cursors(txn: "Txn") -> None:   # 1 -> 2, for illustration
    ...     for key, cursor in list(txn.items("cursors")):
    ...         txn.put("cursors", b"v2:" + key, cursor)
    ...         txn.delete("cursors", key)
    >>> migrations = {1: split_cursors}
    >>> # Store.open(path, migrations=migrations, schema_version=2)

A stored version newer than ``schema_version`` refuses to open (``SchemaTooNewError``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final, Literal, get_args

if TYPE_CHECKING:
    from storage.txn import Txn

Database = Literal[
    "meta",
    "markets",
    "jobs",
    "cursors",
    "resolutions",
    "proofs",
    "txs",
    "audit",
    "checkpoints",
    "index",
    "pages",
]
"""The name of one of the store's LMDB databases."""

DATABASES: Final[tuple[Database, ...]] = get_args(Database)

SCHEMA_VERSION: Final = 3
"""The layout version this code writes and understands."""

SCHEMA_KEY: Final = b"schema_version"
"""Key of the ``SchemaVersion`` record in ``meta``."""

Migration = Callable[["Txn"], None]
"""Moves the layout from the version it is registered under to the next one."""


def _build_indexes(txn: Txn) -> None:
    """1 -> 2: the ``index`` database (state counts and live keys, ``storage.indexes``)."""
    from storage.indexes import build_all

    build_all(txn)


def _pages_database(txn: Txn) -> None:
    """2 -> 3: the ``pages`` database (``storage.proofs``, ADR 0018), opened empty with the
    store. Proofs written whole before stay as they are: ``get_proof`` reads both forms."""


MIGRATIONS: Final[Mapping[int, Migration]] = {1: _build_indexes, 2: _pages_database}
"""The registered migrations, by the version they start from."""
