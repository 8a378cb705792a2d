"""Actor checkpoints: one model per registered actor name, in the ``checkpoints`` database.

A restarted actor rebuilds its state from here, never from the dead instance::

    >>> import tempfile
    >>> from protocol.records import AuditEntry, Cursor
    >>> from storage.store import Store
    >>> with tempfile.TemporaryDirectory() as path, Store.open(path) as store:
    ...     checkpoints = Checkpoints(store)
    ...     state = Cursor(chain="hyperevm", block_number=5, block_hash="0x05")
    ...     checkpoints.save("listener:hyperevm", state)
    ...     checkpoints.load("listener:hyperevm", Cursor) == state
    ...     checkpoints.save_with_audit(
    ...         "listener:hyperevm",
    ...         state.model_copy(update={"block_number": 6}),
    ...         AuditEntry(ts=1.0, actor="listener:hyperevm", action="cursor_advanced"),
    ...     )
    True
    1

State models must be registered with the store's codec. Every save is durable before it returns;
saves from many actors at once share fsyncs through the store's group commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar, overload

from pydantic import BaseModel

from protocol.records import AuditEntry
from storage.store import Store
from storage.txn import Txn

M = TypeVar("M", bound=BaseModel)


def checkpoint_key(actor_name: str) -> bytes:
    """The key of ``actor_name``'s checkpoint: its UTF-8 bytes."""
    if not actor_name:
        raise ValueError("an actor name is needed")
    return actor_name.encode()


class Checkpoints:
    """Save and load actor states through ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, actor_name: str, state: BaseModel) -> None:
        """Durably replace ``actor_name``'s checkpoint with ``state``."""
        key = checkpoint_key(actor_name)
        self.store.write(lambda txn: txn.put("checkpoints", key, state))

    def save_with_audit(self, actor_name: str, state: BaseModel, entry: AuditEntry) -> int:
        """Save ``state`` and audit ``entry`` in one transaction; return the entry's seq."""
        key = checkpoint_key(actor_name)

        def both(txn: Txn) -> int:
            txn.put("checkpoints", key, state)
            return txn.audit(entry)

        return self.store.write(both)

    @overload
    def load(self, actor_name: str) -> BaseModel | None: ...
    @overload
    def load(self, actor_name: str, expect: type[M]) -> M | None: ...
    def load(self, actor_name: str, expect: type[M] | None = None) -> BaseModel | None:
        """``actor_name``'s last saved state, or ``None``; ``StoredValueError`` if it is bad."""
        key = checkpoint_key(actor_name)
        if expect is None:
            return self.store.get("checkpoints", key)
        return self.store.get("checkpoints", key, expect)

    def delete(self, actor_name: str) -> bool:
        """Forget ``actor_name``'s checkpoint (e.g. a finished resolver); whether there was one."""
        return self.store.delete("checkpoints", checkpoint_key(actor_name))

    def names(self, prefix: str = "") -> Iterator[str]:
        """Actor names with a checkpoint, in order (e.g. ``prefix="resolver:"`` at recovery)."""
        for key, _ in self.store.items("checkpoints", prefix.encode()):
            yield key.decode()
