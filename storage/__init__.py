"""storage: the runner's LMDB store (DESIGN.md sections 2 and 5).

    >>> import tempfile
    >>> from protocol.records import Cursor
    >>> with tempfile.TemporaryDirectory() as path, Store.open(path) as store:
    ...     cursor = Cursor(chain="hyperevm", block_number=1, block_hash="0x01")
    ...     store.put("cursors", b"hyperevm", cursor)
    ...     store.count("cursors")
    1

``Store`` (store.py) is the environment and its reads and writes; ``Txn`` (txn.py) one write
transaction; ``Checkpoints`` (checkpoints.py) actor states; ``GroupCommit`` (group_commit.py) the
grouping of concurrent writers and ``Committer`` (committer.py) the transaction that runs a group;
``Gate`` (gate.py) the guard of map resizes; ``DirLock`` (lock.py) one process per directory;
``schema`` the databases, version and migrations, ``migrate`` their application; ``errors`` the
rest.
"""

from storage.checkpoints import Checkpoints
from storage.errors import (
    SchemaMigrationError,
    SchemaTooNewError,
    StorageError,
    StoreClosedError,
    StoredValueError,
    StoreFullError,
    StoreLockedError,
    UnknownDatabaseError,
)
from storage.gate import Gate
from storage.group_commit import GroupCommit
from storage.lock import DirLock
from storage.proofs import StoredProof, get_proof, put_proof
from storage.schema import DATABASES, MIGRATIONS, SCHEMA_VERSION, Database, Migration
from storage.store import Store, StoreStats
from storage.txn import BadValueHandler, Txn

__all__ = [
    "DATABASES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "BadValueHandler",
    "Checkpoints",
    "Database",
    "DirLock",
    "Gate",
    "GroupCommit",
    "Migration",
    "SchemaMigrationError",
    "SchemaTooNewError",
    "StorageError",
    "Store",
    "StoreClosedError",
    "StoreFullError",
    "StoreLockedError",
    "StoreStats",
    "StoredProof",
    "StoredValueError",
    "Txn",
    "UnknownDatabaseError",
    "get_proof",
    "put_proof",
]
