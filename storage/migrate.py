"""Bringing a store's layout to the version this code expects: stamp it, migrate it, or refuse.

``Store.open`` calls ``ensure_schema`` once the databases are open::

    >>> import tempfile
    >>> from storage.store import Store
    >>> scratch = tempfile.TemporaryDirectory()
    >>> path = scratch.name
    >>> Store.open(path, schema_version=1).close()          # fresh: stamped 1
    >>> def add_index(txn: Txn) -> None: ...                   # what 1 -> 2 would do
    >>> with Store.open(path, schema_version=2, migrations={1: add_index}) as store:
    ...     store.get("meta", SCHEMA_KEY, SchemaVersion)
    SchemaVersion(version=2)
    >>> try:                                               # older code: refused
    ...     Store.open(path, schema_version=1)
    ... except SchemaTooNewError as exc:
    ...     (exc.found, exc.supported)
    (2, 1)
    >>> scratch.cleanup()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from protocol.records import AuditEntry, SchemaVersion
from storage.errors import SchemaMigrationError, SchemaTooNewError
from storage.schema import SCHEMA_KEY, Migration
from storage.txn import Txn

if TYPE_CHECKING:
    from storage.store import Store

log = logging.getLogger("storage.store")


def ensure_schema(store: Store, target: int, migrations: Mapping[int, Migration]) -> int:
    """Make ``store``'s schema version ``target``; return the version it had (``target`` if new).

    No version recorded: a fresh store, stamped ``target``. Older: every migration from the stored
    version up to ``target`` runs, in order, in one write transaction that also records the new
    version and an audit entry; if one raises, nothing changes (``SchemaMigrationError``). Newer:
    ``SchemaTooNewError``.
    """
    stored = store.get("meta", SCHEMA_KEY, SchemaVersion)
    if stored is None:
        store.write(lambda txn: txn.put("meta", SCHEMA_KEY, SchemaVersion(version=target)))
        return target
    found = stored.version
    if found > target:
        raise SchemaTooNewError(store.path, found=found, supported=target)
    if found == target:
        return found
    missing = [v for v in range(found, target) if v not in migrations]
    if missing:
        raise SchemaMigrationError(
            f"store at {store.path} has schema version {found}; no migration registered "
            f"from version {missing[0]} (target {target})"
        )

    def migrate(txn: Txn) -> None:
        for version in range(found, target):
            try:
                migrations[version](txn)
            except Exception as exc:
                raise SchemaMigrationError(
                    f"migration of store at {store.path} from schema version {version} to "
                    f"{version + 1} failed (nothing was changed): {exc!r}"
                ) from exc
        txn.put("meta", SCHEMA_KEY, SchemaVersion(version=target))
        txn.audit(
            AuditEntry(
                ts=time.time(),
                actor="storage",
                action="schema_migrated",
                detail={"from": str(found), "to": str(target)},
            )
        )

    store.write(migrate)
    log.info("store at %s migrated from schema version %d to %d", store.path, found, target)
    return found
