"""The registry of names: a message sent to ``resolver:hyperevm:0x..`` reaches whichever
incarnation of that actor is alive now.

Supervisors register each child under its id when they start it and mark it down when it exits.
While a name is down (between a crash and the restart), ``tell`` keeps up to ``buffer`` messages
for it and delivers them, in order, to the next incarnation; ``ask`` waits for the name to come
back, within its timeout. A name its supervisor gave up on drops what was kept::

    registry.tell("scheduler", MarketDiscovered(...))          # never raises; False if dropped
    reply = registry.ask("scheduler", GetState(), timeout=5.0)  # raises NotRegistered on timeout
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pykka

from supervision.errors import NotRegistered

log = logging.getLogger(__name__)


class Status(StrEnum):
    RUNNING = "running"
    DOWN = "down"
    """Exited; its supervisor has not decided yet, or a restart is pending."""
    GONE = "gone"
    """Stopped for good."""


@dataclass
class Entry:
    """What the registry knows of one name; read it through ``Registry.entries()``."""

    name: str
    actor_type: str
    status: Status = Status.DOWN
    ref: pykka.ActorRef[Any] | None = None
    supervisor: pykka.ActorRef[Any] | None = None
    incarnation: int = 0
    restarts: int = 0
    last_error: str = ""
    pending: deque[Any] = field(default_factory=deque)

    def mailbox_depth(self) -> int:
        ref = self.ref
        return ref.actor_inbox.qsize() if ref is not None else len(self.pending)  # type: ignore[attr-defined]


class Registry:
    """Names to live actor refs, with a small buffer for names that are restarting."""

    def __init__(self, buffer: int = 10_000) -> None:
        self._entries: dict[str, Entry] = {}
        self._cond = threading.Condition()
        self._buffer = buffer
        self.dead_letters = 0
        """Messages told to a name that was gone, unknown, or whose buffer was full."""

    # --- supervisors' side ---------------------------------------------------------------

    def expect(self, name: str, actor_type: str, supervisor: pykka.ActorRef[Any] | None) -> None:
        """``name`` is about to start: keep what is told to it until ``register``.

        A supervisor calls this before starting a child, so that a message the child sends
        itself (or is sent) while its ``on_start`` runs is delivered, not dropped.
        """
        with self._cond:
            entry = self._entries.get(name)
            if entry is None:
                entry = self._entries[name] = Entry(name=name, actor_type=actor_type)
            entry.supervisor = supervisor
            if entry.ref is None:
                entry.status = Status.DOWN

    def register(
        self,
        name: str,
        ref: pykka.ActorRef[Any],
        actor_type: str,
        supervisor: pykka.ActorRef[Any] | None,
        incarnation: int,
    ) -> None:
        """Make ``ref`` (incarnation number ``incarnation``) the live actor for ``name``."""
        with self._cond:
            entry = self._entries.get(name)
            if entry is None:
                entry = self._entries[name] = Entry(name=name, actor_type=actor_type)
            elif entry.incarnation > 0:
                entry.restarts += 1
            entry.ref, entry.supervisor, entry.actor_type = ref, supervisor, actor_type
            entry.status = Status.RUNNING
            entry.incarnation = incarnation
            pending, entry.pending = entry.pending, deque()
            self._cond.notify_all()
        for message in pending:
            self._deliver(entry, ref, message)

    def note_error(self, name: str, error: str, actor_type: str = "") -> None:
        """Record ``error`` as the last error of ``name`` (creating its entry if need be)."""
        with self._cond:
            entry = self._entries.get(name)
            if entry is None:
                entry = self._entries[name] = Entry(name=name, actor_type=actor_type)
            entry.last_error = error

    def down(self, name: str, ref: pykka.ActorRef[Any] | None, error: str = "") -> None:
        """``name`` exited (``ref`` is the incarnation that did); keep its messages for now."""
        with self._cond:
            entry = self._entries.get(name)
            if entry is None or (ref is not None and entry.ref is not ref):
                return
            entry.ref = None
            entry.status = Status.DOWN
            if error:
                entry.last_error = error

    def gone(self, name: str) -> None:
        """``name`` will not come back: drop what was kept for it and forget its ref."""
        with self._cond:
            entry = self._entries.get(name)
            if entry is None:
                return
            self.dead_letters += len(entry.pending)
            entry.pending.clear()
            entry.ref = None
            entry.status = Status.GONE
            self._cond.notify_all()

    def forget(self, name: str) -> None:
        """Remove ``name`` entirely (a dynamic child that finished)."""
        with self._cond:
            entry = self._entries.pop(name, None)
            if entry is not None:
                self.dead_letters += len(entry.pending)
            self._cond.notify_all()

    # --- senders' side -------------------------------------------------------------------

    def tell(self, name: str, message: Any) -> bool:
        """Send without waiting; ``False`` when the message could only be dropped."""
        with self._cond:
            entry = self._entries.get(name)
            if entry is None or entry.status is Status.GONE:
                self.dead_letters += 1
                return False
            ref = entry.ref
            if ref is None:
                return self._keep(entry, message)
        return self._deliver(entry, ref, message)

    def ask(self, name: str, message: Any, timeout: float) -> Any:
        """Send and wait for the answer; waits for a restarting name within ``timeout`` too."""
        deadline = time.monotonic() + timeout
        ref = self.whereis(name, timeout=timeout)
        return ref.ask(message, timeout=max(0.0, deadline - time.monotonic()))

    def whereis(self, name: str, timeout: float = 0.0) -> pykka.ActorRef[Any]:
        """The live ref of ``name``, waiting up to ``timeout`` for it to come back."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                entry = self._entries.get(name)
                if entry is not None and entry.ref is not None and entry.ref.is_alive():
                    return entry.ref
                if entry is not None and entry.status is Status.GONE:
                    raise NotRegistered(f"{name} has stopped for good")
                left = deadline - time.monotonic()
                if left <= 0:
                    state = "unknown" if entry is None else entry.status.value
                    raise NotRegistered(f"no live actor named {name!r} ({state})")
                self._cond.wait(min(left, 0.05))

    def entries(self) -> list[Entry]:
        """A snapshot of every name, for the REPL, metrics and tests."""
        with self._cond:
            return list(self._entries.values())

    def entry(self, name: str) -> Entry | None:
        with self._cond:
            return self._entries.get(name)

    # --- internals -----------------------------------------------------------------------

    def _keep(self, entry: Entry, message: Any) -> bool:
        if len(entry.pending) >= self._buffer:
            self.dead_letters += 1
            return False
        entry.pending.append(message)
        return True

    def _deliver(self, entry: Entry, ref: pykka.ActorRef[Any], message: Any) -> bool:
        try:
            ref.tell(message)
            return True
        except pykka.ActorDeadError:
            pass
        # The incarnation died under us (perhaps without telling anyone): keep the message for
        # the next one and let its supervisor look for dead children.
        with self._cond:
            if entry.ref is ref:
                entry.ref = None
                entry.status = Status.DOWN
            kept = entry.status is not Status.GONE and self._keep(entry, message)
            supervisor = entry.supervisor
        if supervisor is not None:
            from protocol.messages import CheckChildren

            with contextlib.suppress(pykka.ActorDeadError):
                supervisor.tell(CheckChildren())
        if not kept:
            self.dead_letters += 1
        return kept
