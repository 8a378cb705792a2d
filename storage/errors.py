"""The errors of the store: every one is a ``StorageError`` whose message says what and where.

>>> try:
...     raise SchemaTooNewError("/data", found=3, supported=2)
... except StorageError as exc:
...     print(exc)
store at /data has schema version 3, newer than this code supports (2); upgrade the runner
"""

from __future__ import annotations

from pathlib import Path


class StorageError(Exception):
    """Base of every error raised by ``storage``."""


class StoreLockedError(StorageError):
    """The data directory is already open, by another process or another ``Store`` here."""

    def __init__(self, directory: str | Path, holder_pid: int | None) -> None:
        self.directory = str(directory)
        self.holder_pid = holder_pid
        holder = f"pid {holder_pid}" if holder_pid is not None else "an unknown process"
        super().__init__(f"store at {self.directory} is locked by {holder}")


class SchemaTooNewError(StorageError):
    """The stored schema version is newer than the code knows: refuse rather than guess."""

    def __init__(self, directory: str | Path, *, found: int, supported: int) -> None:
        self.directory = str(directory)
        self.found = found
        self.supported = supported
        super().__init__(
            f"store at {self.directory} has schema version {found}, newer than this code "
            f"supports ({supported}); upgrade the runner"
        )


class SchemaMigrationError(StorageError):
    """A migration is missing or raised; nothing of it was committed."""


class StoredValueError(StorageError):
    """A stored value does not decode; names the database, the key and the codec's reason."""

    def __init__(self, db: str, key: bytes, reason: str) -> None:
        self.db = db
        self.key = key
        self.reason = reason
        super().__init__(f"bad value in {db!r} at key {key!r}: {reason}")


class StoreFullError(StorageError):
    """The map cannot grow any further (``max_map_size`` reached)."""


class StoreClosedError(StorageError):
    """The store was closed; open it again."""


class UnknownDatabaseError(StorageError, ValueError):
    """A database name that is not one of ``storage.DATABASES``."""
